// The one QuickJS WebAssembly build quickvat runs on, pinned byte for byte.
//
// We drive the wasm directly instead of through the emscripten glue so that
// every import (clock, timezone, environment, heap growth) is ours to pin, and
// so that a restored memory image needs no JS-side glue state. The glue is
// minified, so its import and export names are single letters; the tables
// below name them. They are only valid for the exact binary whose hash is
// recorded here: the build step refuses any other (see build-wasm.ts).
//
// Variant choice (bellard over quickjs-ng): on the same CPU-bound workload
// bellard ran 1.4x faster (bench/variant.bench.ts), marshal round trips are
// cheaper there, and its only clock import is emscripten_date_now (quickjs-ng
// also reads WASI clock_time_get and leaves clock bytes on its stack).
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

export const VARIANT = '@jitl/quickjs-wasmfile-release-sync@0.32.0';

/** sha256 of the published, uninstrumented wasm this file describes. */
export const PUBLISHED_WASM_SHA256 =
  '105c3bed22d457e43e3d1c3c1c6959fda62a8fe06f0fc8a985303c3a2be72232';

export function publishedWasmPath(): string {
  const pkgJson = require.resolve('@jitl/quickjs-wasmfile-release-sync/package.json');
  return path.join(path.dirname(pkgJson), 'dist', 'emscripten-module.wasm');
}

/** Import field names (module "a") by role. */
export const IMPORTS = {
  memory: 'a',
  assertFail: 'b',
  fdWrite: 'c',
  fdClose: 'd',
  environGet: 'e',
  environSizesGet: 'f',
  normalizeModule: 'g',
  loadModuleSource: 'h',
  shouldInterrupt: 'i',
  setTimer: 'j',
  resizeHeap: 'k',
  keepaliveClear: 'l',
  localtime: 'm',
  tzset: 'n',
  fdSeek: 'o',
  dateNow: 'p',
  abort: 'q',
  procExit: 'r',
  callFunction: 's',
  freeHostRef: 't',
} as const;

/** Export names by C symbol. */
export const EXPORTS = {
  wasmCallCtors: 'u',
  malloc: 'v',
  QTS_Throw: 'w',
  QTS_NewError: 'x',
  QTS_RuntimeSetMaxStackSize: 'D',
  QTS_GetUndefined: 'E',
  QTS_GetNull: 'F',
  QTS_GetFalse: 'G',
  QTS_GetTrue: 'H',
  QTS_NewRuntime: 'K',
  QTS_FreeRuntime: 'L',
  free: 'M',
  QTS_NewContext: 'N',
  QTS_FreeContext: 'O',
  QTS_FreeValuePointer: 'P',
  QTS_FreeCString: 'S',
  QTS_DupValuePointer: 'T',
  QTS_NewObject: 'U',
  QTS_NewFloat64: 'Y',
  QTS_GetFloat64: 'Z',
  QTS_NewString: '_',
  QTS_GetString: '$',
  QTS_IsJobPending: 'fa',
  QTS_ExecutePendingJob: 'ga',
  QTS_GetProp: 'ha',
  QTS_SetProp: 'ja',
  QTS_Call: 'ma',
  QTS_ResolveException: 'na',
  QTS_Dump: 'oa',
  QTS_Eval: 'pa',
  QTS_Typeof: 'ra',
  QTS_GetGlobalObject: 'ua',
  QTS_PromiseState: 'wa',
  QTS_PromiseResult: 'xa',
  QTS_NewFunction: 'Da',
  QTS_ArgvGetJSValueConstPointer: 'Ea',
  QTS_RuntimeEnableModuleLoader: 'Ha',
  stackRestore: 'Ma',
  stackAlloc: 'Na',
  stackSave: 'Oa',
} as const;

/** Names the metering step adds to the instrumented binary. */
export const METER = {
  /** Exported i64 global: units left in the current budget; a trap fires below zero. */
  remainingGlobal: 'quickvat_meter_remaining',
} as const;

/**
 * The native stack guard the build adds (see stack-guard.ts). Sizes in bytes.
 * Build constants: every replica must run the same ones (they are part of the
 * wasm, so of its hash, which snapshots record).
 */
export const STACK_GUARD = {
  /** Exported i32 global, set to 1 just before the guard traps. */
  exceededGlobal: 'quickvat_stack_exceeded',
  /**
   * Charged per wasm frame, plus bytesPerLocal per param or local: bounds
   * V8's frame for that function in both tiers (Liftoff, TurboFan). Measured
   * on Node 20 / x64: at the floor, V8 had used at most ~85% of what was
   * charged (docs/operators-guide.md, "Native stack budget").
   */
  frameFixedBytes: 64,
  bytesPerLocal: 8,
  /**
   * Below the stack pointer's initial value (shadow stack plus charged
   * frames): an entry that would go further traps with StackLimitExceeded.
   * So a guest entry needs at most this much V8 stack for wasm frames.
   */
  hardBytes: 320 * 1024,
} as const;

/**
 * Where the pinned QuickJS (PUBLISHED_WASM_SHA256) keeps `malloc_gc_threshold`
 * in its JSRuntime (wasm32 layout: 16 bytes of malloc functions, 16 of malloc
 * state, then rt_info, the atom table, the class table and four list heads).
 * QuickJS runs its cycle collector at an object allocation that takes the heap
 * over this threshold; zeroing it makes the next allocation collect. That is
 * the only way to ask the published build for a full collection (JS_RunGC is
 * not exported). Sandbox.create checks the offset against QuickJS's initial
 * value, so a different build fails loudly instead of writing a wrong field.
 */
export const RUNTIME_LAYOUT = {
  gcThresholdOffset: 108,
  initialGcThreshold: 256 * 1024,
} as const;
