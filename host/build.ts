// `npm run build` after tsc: the build-time artefacts the host loads.
import { buildMeteredWasm } from './engine/build-wasm.js';
import { buildRuntimeBundle, writeBuiltinExports } from './kernel/runtime-bundle.js';

const log = (msg: string) => console.log(msg);
buildMeteredWasm(log);
await buildRuntimeBundle(log);
writeBuiltinExports(log);
