// Build step: derive the metered QuickJS wasm from the published one.
//
// QuickJS's interrupt handler is polled too rarely and never inside built-ins
// (a single String.prototype.split can run for seconds unseen), so we count at
// the wasm level instead: binaryen's log-execution pass puts a call at every
// function entry and loop header, and we turn that call into an inlined
// decrement of one exported i64 global that traps (unreachable) below zero.
// Every unit is a function entry or a loop iteration of the wasm itself, so the
// count is deterministic and covers built-ins. This runs at build time only.
import binaryen from 'binaryen';
import fs from 'node:fs';
import { BUILD_DIR, METERED_WASM_PATH, sha256 } from './build-paths.js';
import { EXPORTS, METER, PUBLISHED_WASM_SHA256, publishedWasmPath, STACK_GUARD, VARIANT } from './quickjs-build.js';
import { addStackGuard, stackGuardTarget } from './stack-guard.js';
/** Bump when instrument() changes, so stale builds are redone. */
const INSTRUMENTATION_VERSION = 5;

/**
 * The metered (and, unless options.stackGuard is false, stack-guarded) wasm.
 * Only benchmarks turn the guard off, to measure what it costs.
 */
export function instrument(published: Uint8Array, options: { stackGuard?: boolean } = {}): Uint8Array {
  const mod = binaryen.readBinary(published);
  try {
    // readBinary does not infer features; these are what emscripten emitted
    // (sign-ext, bulk memory, non-trapping float-to-int) plus mutable globals,
    // which exporting the meter needs.
    const F = binaryen.Features;
    mod.setFeatures(F.MVP | F.SignExt | F.BulkMemory | F.BulkMemoryOpt | F.NontrappingFPToInt | F.MutableGlobals);
    // binaryen >= 120 takes one bigint here; its .d.ts still says (low, high).
    const i64 = (v: bigint) => (mod.i64.const as unknown as (v: bigint) => number)(v);
    const stack = stackGuardTarget(
      mod,
      exportedFunction(mod, EXPORTS.stackSave),
      [EXPORTS.stackRestore, EXPORTS.stackAlloc].map((e) => exportedFunction(mod, e)),
    );
    mod.runPasses(['log-execution']);
    const hook = 'log_execution';
    const info = binaryen.getFunctionInfo(mod.getFunction(hook));
    if (info.module === '' || info.module === null) {
      throw new Error(`expected log-execution to add an imported "${hook}" function`);
    }
    mod.removeFunction(hook);
    // Starts high so instantiation (which may run code) never traps; owners set a budget per call.
    mod.addGlobal(METER.remainingGlobal, binaryen.i64, true, i64(1n << 62n));
    mod.addGlobalExport(METER.remainingGlobal, METER.remainingGlobal);
    // The pass passes a site id; we ignore it: every site costs one unit.
    mod.addFunction(
      hook,
      binaryen.createType([binaryen.i32]),
      binaryen.none,
      [],
      mod.block(null, [
        mod.global.set(
          METER.remainingGlobal,
          mod.i64.sub(mod.global.get(METER.remainingGlobal, binaryen.i64), i64(1n)),
        ),
        mod.if(
          mod.i64.lt_s(mod.global.get(METER.remainingGlobal, binaryen.i64), i64(0n)),
          mod.unreachable(),
        ),
      ]),
    );
    binaryen.setAlwaysInlineMaxSize(16);
    binaryen.setOptimizeLevel(2);
    binaryen.setShrinkLevel(0);
    mod.runPasses(['inlining', 'remove-unused-module-elements']);
    if (options.stackGuard !== false) addStackGuard(mod, stack);
    if (!mod.validate()) throw new Error('instrumented wasm failed validation');
    return mod.emitBinary();
  } finally {
    mod.dispose();
  }
}

function exportedFunction(mod: binaryen.Module, exportName: string): string {
  const info = binaryen.getExportInfo(mod.getExport(exportName));
  if (info.kind !== binaryen.ExternalFunction) throw new Error(`export ${exportName} is not a function`);
  return info.value;
}

/** Writes build/quickjs-metered.wasm unless an up-to-date one is already there. */
export function buildMeteredWasm(log: (msg: string) => void = () => {}): string {
  const published = fs.readFileSync(publishedWasmPath());
  const hash = sha256(published);
  if (hash !== PUBLISHED_WASM_SHA256) {
    throw new Error(
      `published QuickJS wasm has sha256 ${hash}, expected ${PUBLISHED_WASM_SHA256} (${VARIANT}); ` +
        'the import/export tables in host/engine/quickjs-build.ts describe only that binary',
    );
  }
  const stampPath = `${METERED_WASM_PATH}.stamp`;
  const stamp = `${hash} v${INSTRUMENTATION_VERSION} ${JSON.stringify(STACK_GUARD)}`;
  if (fs.existsSync(METERED_WASM_PATH) && fs.existsSync(stampPath) && fs.readFileSync(stampPath, 'utf8') === stamp) {
    log(`metered wasm up to date: ${METERED_WASM_PATH}`);
    return METERED_WASM_PATH;
  }
  const metered = instrument(published);
  fs.mkdirSync(BUILD_DIR, { recursive: true });
  // Write then rename so a crashed build never leaves a truncated binary.
  fs.writeFileSync(`${METERED_WASM_PATH}.tmp`, metered);
  fs.renameSync(`${METERED_WASM_PATH}.tmp`, METERED_WASM_PATH);
  fs.writeFileSync(stampPath, stamp);
  log(`wrote ${METERED_WASM_PATH} (${metered.length} bytes, from ${VARIANT})`);
  return METERED_WASM_PATH;
}

