// `npm run build` after tsc: the build-time artefacts the host loads.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildMeteredWasm } from './engine/build-wasm.js';
import { buildRuntimeBundle, writeBuiltinExports } from './kernel/runtime-bundle.js';

const log = (msg: string) => console.log(msg);
buildMeteredWasm(log);
await buildRuntimeBundle(log);
writeBuiltinExports(log);
// tsc writes files without the execute bit; the `quickvat` bin (run through
// node_modules/.bin or npx from a clone) needs it.
fs.chmodSync(fileURLToPath(new URL('./cli/main.js', import.meta.url)), 0o755);
