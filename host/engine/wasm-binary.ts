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
  const binary = compile(bytes, path, metered ? [METER.remainingGlobal, STACK_GUARD.exceededGlobal] : []);
  cache.set(path, binary);
  return binary;
}

function compile(bytes: Uint8Array, where: string, requiredGlobals: readonly string[]): WasmBinary {
  const module = new WebAssembly.Module(new Uint8Array(bytes));
  checkShape(module, where, requiredGlobals);
  return Object.freeze({ variant: VARIANT, metered: requiredGlobals.length > 0, sha256: sha256(bytes), module });
}

// Fail at load, with a message, rather than deep inside a call later.
function checkShape(module: WebAssembly.Module, path: string, requiredGlobals: readonly string[]): void {
  const exports = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  const imports = new Set(WebAssembly.Module.imports(module).map((i) => i.name));
  const missing = [
    ...Object.entries(EXPORTS).filter(([, n]) => !exports.has(n)).map(([k]) => `export ${k}`),
    ...Object.entries(IMPORTS).filter(([, n]) => !imports.has(n)).map(([k]) => `import ${k}`),
  ];
  for (const g of requiredGlobals) if (!exports.has(g)) missing.push(`export ${g}`);
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

/**
 * A variant built in memory (build-wasm.ts `instrument` with other options);
 * only benchmarks use it, to price one instrumentation against another.
 */
export function benchBinary(label: string, bytes: Uint8Array): WasmBinary {
  return compile(bytes, label, [METER.remainingGlobal]);
}
