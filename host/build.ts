// `npm run build` after tsc: the build-time artefacts the host loads.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildMeteredWasm } from './engine/build-wasm.js';
import { buildRuntimeBundle } from './kernel/runtime-bundle.js';

const log = (msg: string) => console.log(msg);
buildMeteredWasm(log);
await buildRuntimeBundle(log);
// tsc writes the CLI without the execute bit; npm links `bin` at install time,
// which on a fresh clone is before this build exists.
fs.chmodSync(fileURLToPath(new URL('./cli/main.js', import.meta.url)), 0o755);
