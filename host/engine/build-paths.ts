// Where the build puts what the host loads at run time. Kept apart from the
// build steps themselves so that running a host never loads binaryen or
// esbuild (tens of megabytes of JavaScript to compile at start-up).
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Compiled to dist/host/engine/; build/ sits beside dist/.
export const BUILD_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'build');
export const METERED_WASM_PATH = path.join(BUILD_DIR, 'quickjs-metered.wasm');
export const RUNTIME_BUNDLE_PATH = path.join(BUILD_DIR, 'vat-runtime.js');
/** specifier -> export names of each built-in vat module, read from the runtime at build time */
export const BUILTIN_EXPORTS_PATH = path.join(BUILD_DIR, 'builtin-modules.json');

export function sha256(bytes: Uint8Array): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}
