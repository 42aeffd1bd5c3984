// The QuickJS wasm binaries, each read, hashed and compiled once per process.
import fs from 'node:fs';
import { METERED_WASM_PATH, sha256 } from './build-paths.js';
import { EXPORTS, IMPORTS, METER, publishedWasmPath, STACK_GUARD, VARIANT } from './quickjs-build.js';

export interface WasmBinary {
  readonly variant: string;
  readonly metered: boolean;
  /** sha256 of the exact bytes compiled; snapshots record and check it. */
  readonly sha256: string;
  readonly module: WebAssembly.Module;
}

const cache = new Map<string, WasmBinary>();

function load(path: string, metered: boolean, missingHint: string): WasmBinary {
  const hit = cache.get(path);
  if (hit) return hit;
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read QuickJS wasm at ${path}: ${(err as Error).message}. ${missingHint}`);
  }
  const module = new WebAssembly.Module(new Uint8Array(bytes));
  checkShape(module, path, metered);
  const binary: WasmBinary = Object.freeze({ variant: VARIANT, metered, sha256: sha256(bytes), module });
  cache.set(path, binary);
  return binary;
}

// Fail at load, with a message, rather than deep inside a call later.
function checkShape(module: WebAssembly.Module, path: string, metered: boolean): void {
  const exports = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  const imports = new Set(WebAssembly.Module.imports(module).map((i) => i.name));
  const missing = [
    ...Object.entries(EXPORTS).filter(([, n]) => !exports.has(n)).map(([k]) => `export ${k}`),
    ...Object.entries(IMPORTS).filter(([, n]) => !imports.has(n)).map(([k]) => `import ${k}`),
  ];
  if (metered) {
    for (const g of [METER.remainingGlobal, STACK_GUARD.exceededGlobal]) if (!exports.has(g)) missing.push(`export ${g}`);
  }
  if (missing.length > 0) {
    throw new Error(`QuickJS wasm at ${path} does not match ${VARIANT}: missing ${missing.join(', ')}`);
  }
}

/** The binary every vat runs on: the published one with deterministic metering added by the build. */
export function meteredBinary(): WasmBinary {
  return load(METERED_WASM_PATH, true, 'Run `npm run build` to produce it.');
}

/** The published binary without metering; only benchmarks compare against it. */
export function unmeteredBinary(): WasmBinary {
  return load(publishedWasmPath(), false, 'Run `npm install`.');
}
