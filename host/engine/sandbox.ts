// A sandbox: one QuickJS runtime and context inside one metered wasm
// instance, entered only through evaluate() and call(), reaching the host only
// through one syscall function with a fixed id.
import { GuestError, HostStackOverflow, InstanceDiscarded, NotQuiescent, SnapshotError } from './errors.js';
import { RUNTIME_LAYOUT, STACK_GUARD } from './quickjs-build.js';
import { Ffi, type Ptr } from './ffi.js';
import {
  captureImage,
  imageHash,
  nonZeroPages,
  PAGE_SIZE,
  writePages,
  type SnapshotImage,
} from './snapshot.js';
import { meteredBinary, type WasmBinary } from './wasm-binary.js';
import { isHostStackOverflow, WASM_PAGE, WasmInstance } from './wasm-instance.js';
import { instanceHolding, recycleInstance } from './instance-pool.js';
import { RANDOM_PRELUDE, RESEED_GLOBAL, seedWords } from './random-seed.js';

/** The guest's one door to the host: a string request, a string reply. */
export type SyscallHandler = (request: string) => string;

export interface SandboxOptions {
  /** Hard memory cap in bytes (multiple of 64 KiB). Default 256 MiB. */
  readonly maxMemoryBytes?: number;
  /**
   * QuickJS's own (catchable) stack limit, counting shadow stack and charged
   * native frames; at most STACK_GUARD.hardBytes - 64 KiB so that it trips
   * before the build's native guard. Default 256 KiB.
   */
  readonly stackLimitBytes?: number;
  /** Compute units per evaluate()/call() unless the call says otherwise. */
  readonly defaultBudget?: bigint;
  /** Seeds Math.random; forks of one image diverge only by this. */
  readonly identity?: string;
  /** Which compiled binary to run; only benchmarks pass the unmetered one. */
  readonly binary?: WasmBinary;
}

export interface CallOptions {
  readonly budget?: bigint;
  readonly filename?: string;
}

export const SYSCALL_GLOBAL = '__quickvat_syscall';
const SYSCALL_ID = 1;
const HOST_FUNCTIONS = Object.freeze({ [SYSCALL_GLOBAL]: SYSCALL_ID });
const MIN_MEMORY = 16 * 1024 * 1024;
// Room between QuickJS's limit and the native guard's floor, for the frames
// between two of QuickJS's checks (the parser's deepest step is ~2 KiB).
const MAX_STACK_LIMIT = STACK_GUARD.hardBytes - 64 * 1024;
const DEFAULTS = {
  maxMemoryBytes: 256 * 1024 * 1024,
  stackLimitBytes: 256 * 1024,
  defaultBudget: 2_000_000_000n,
} as const;
interface Resolved {
  readonly maxMemoryBytes: number;
  readonly stackLimitBytes: number;
  readonly defaultBudget: bigint;
  readonly binary: WasmBinary;
}

function resolve(options: SandboxOptions): Resolved {
  const maxMemoryBytes = options.maxMemoryBytes ?? DEFAULTS.maxMemoryBytes;
  if (maxMemoryBytes % WASM_PAGE !== 0 || maxMemoryBytes < MIN_MEMORY) {
    throw new RangeError(`maxMemoryBytes must be a multiple of 64 KiB and at least 16 MiB, got ${maxMemoryBytes}`);
  }
  const stackLimitBytes = options.stackLimitBytes ?? DEFAULTS.stackLimitBytes;
  if (!(stackLimitBytes > 0 && stackLimitBytes <= MAX_STACK_LIMIT)) {
    throw new RangeError(`stackLimitBytes must be in (0, ${MAX_STACK_LIMIT}], got ${stackLimitBytes}`);
  }
  return {
    maxMemoryBytes,
    stackLimitBytes,
    defaultBudget: options.defaultBudget ?? DEFAULTS.defaultBudget,
    binary: options.binary ?? meteredBinary(),
  };
}

export class Sandbox {
  /** The syscall handler; a syscall with none installed throws in the guest. */
  onSyscall: SyscallHandler | null = null;
  /** Compute units the last evaluate()/call() used. */
  lastUsed = 0n;
  private readonly ffi: Ffi;
  /** The image memory was last restored from or captured as: a snapshot compares against it. */
  private origin: SnapshotImage | null = null;
  /**
   * Whether its memory may serve a later restore once disposed: only a
   * restored sandbox's. A created one has usually run big initialisation
   * code (a base image, a cold start) and touched far more pages than a
   * restore needs; reusing its memory would keep them all resident.
   */
  private recyclable = false;
  private disposed = false;

  private constructor(
    private readonly inst: WasmInstance,
    private readonly rt: Ptr,
    private readonly ctx: Ptr,
    private readonly stackBase: number,
    private readonly opts: Resolved,
  ) {
    this.ffi = new Ffi(inst);
    inst.callbacks = {
      callFunction: (ctx, thisPtr, argc, argv, fnId) => this.hostCall(ctx, argc, argv, fnId),
      loadModuleSource: () => 0,
      normalizeModule: () => 0,
    };
  }

  /** A fresh sandbox: new instance, runtime, context, seeded Math.random. */
  static create(options: SandboxOptions = {}): Sandbox {
    const opts = resolve(options);
    const inst = new WasmInstance(opts.binary, { initialBytes: MIN_MEMORY, maxBytes: opts.maxMemoryBytes });
    const stackBase = inst.exports.stackSave();
    const { value } = inst.guard(opts.defaultBudget, () => {
      const x = inst.exports;
      const rt = x.QTS_NewRuntime();
      if (rt === 0) throw new Error('QTS_NewRuntime returned NULL');
      const threshold = new DataView(inst.memory.buffer).getUint32(rt + RUNTIME_LAYOUT.gcThresholdOffset, true);
      if (threshold !== RUNTIME_LAYOUT.initialGcThreshold) {
        throw new Error(`QuickJS runtime layout differs from the pinned build's (GC threshold reads ${threshold}); update RUNTIME_LAYOUT`);
      }
      x.QTS_RuntimeSetMaxStackSize(rt, opts.stackLimitBytes);
      const ctx = x.QTS_NewContext(rt, 0);
      if (ctx === 0) throw new Error('QTS_NewContext returned NULL');
      return { rt, ctx };
    });
    const sandbox = new Sandbox(inst, value.rt, value.ctx, stackBase, opts);
    sandbox.installHostFunctions();
    sandbox.evaluate(RANDOM_PRELUDE, { filename: 'quickvat-prelude.js' });
    sandbox.reseed(options.identity ?? '');
    return sandbox;
  }

  /** A working sandbox from an image (taken in this process or another). */
  static restore(image: SnapshotImage, options: SandboxOptions = {}): Sandbox {
    const opts = resolve(options);
    const h = image.header;
    if (h.wasmSha256 !== opts.binary.sha256) {
      throw new SnapshotError(
        `memory image was taken on wasm ${h.wasmSha256.slice(0, 12)}… (${h.variant}) but this host runs ` +
          `${opts.binary.sha256.slice(0, 12)}… (${opts.binary.variant}); an image only restores on the binary that made it`,
      );
    }
    if (h.memoryBytes > opts.maxMemoryBytes) {
      throw new SnapshotError(`memory image is ${h.memoryBytes} bytes, above this sandbox's cap of ${opts.maxMemoryBytes}`);
    }
    for (const [name, id] of Object.entries(HOST_FUNCTIONS)) {
      if (h.hostFunctions[name] !== id) throw new SnapshotError(`memory image has no host function ${name} with id ${id}`);
    }
    // A spare may hold this image already (instance-pool.ts).
    const inst = instanceHolding(opts.binary, h.memoryBytes, opts.maxMemoryBytes, { key: image, pages: image.pageIndices, write: (mem) => writePages(image, mem) });
    const stackBase = inst.exports.stackSave();
    if (stackBase !== h.stackPointer) {
      throw new SnapshotError(`stack pointer ${stackBase} after restore differs from the image's ${h.stackPointer}`);
    }
    inst.clockMs = h.clockMs;
    const sandbox = new Sandbox(inst, h.runtimePtr, h.contextPtr, stackBase, opts);
    sandbox.origin = image;
    sandbox.recyclable = true;
    if (options.identity !== undefined) sandbox.reseed(options.identity);
    return sandbox;
  }

  /**
   * An independent copy of this sandbox as it is now, at a quiet point: the
   * same memory (so the same heap, clock and Math.random state), in an
   * instance of its own. What snapshot() then restore() would give, without
   * hashing or keeping an image: its non-zero pages are copied straight
   * into a ready instance (~1 ms for a 16 MiB memory, issue 16). Throws
   * NotQuiescent mid-call or with promise jobs pending.
   */
  clone(): Sandbox {
    this.assertQuiet();
    const src = this.inst.bytes();
    const pages = nonZeroPages(src);
    const inst = instanceHolding(this.opts.binary, src.length, this.opts.maxMemoryBytes, {
      pages,
      write: (mem) => {
        for (const p of pages) mem.set(src.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE), p * PAGE_SIZE);
      },
    });
    if (inst.exports.stackSave() !== this.stackBase) throw new SnapshotError(`stack pointer ${inst.exports.stackSave()} of a fresh instance differs from the sandbox's ${this.stackBase}`);
    inst.clockMs = this.inst.clockMs;
    const copy = new Sandbox(inst, this.rt, this.ctx, this.stackBase, this.opts);
    // Any image serves as an origin (capture compares page by page); this
    // one shares most pages with the copy.
    copy.origin = this.origin;
    copy.recyclable = true;
    return copy;
  }

  /** n independent sandboxes from one image, each seeded by its own identity. */
  static fork(image: SnapshotImage, identities: readonly string[], options: SandboxOptions = {}): Sandbox[] {
    return identities.map((identity) => Sandbox.restore(image, { ...options, identity }));
  }

  get alive(): boolean {
    return this.inst.alive;
  }

  get memoryBytes(): number {
    return this.inst.memory.buffer.byteLength;
  }

  /** Lines the guest's C code printed; diagnostics only. */
  get log(): readonly string[] {
    return this.inst.log;
  }

  /** The guest's Date.now(); set it between calls, never from the wall clock. */
  get clockMs(): number {
    return this.inst.clockMs;
  }

  set clockMs(ms: number) {
    if (!Number.isFinite(ms)) throw new RangeError(`clockMs must be finite, got ${ms}`);
    this.inst.clockMs = ms;
  }

  /**
   * Runs a global script, settles any promise it returns, and gives back its
   * completion value as JSON-compatible data (via JSON.stringify in the guest).
   */
  evaluate(source: string, options: CallOptions = {}): unknown {
    const { ffi, ctx } = this;
    return this.enter(options.budget, () => {
      const result = ffi.withCString(source, (code, length) =>
        ffi.withCString(options.filename ?? 'eval.js', (file) => ffi.x.QTS_Eval(ctx, code, length, file, 0, 0)),
      );
      const settled = this.settle(this.checkException(result));
      try {
        return parseDump(ffi.dump(ctx, settled));
      } finally {
        ffi.freeValue(ctx, settled);
      }
    });
  }

  /** Calls globalThis[name](arg); the (settled) result must be a string. */
  call(name: string, arg: string, options: CallOptions = {}): string {
    const { ffi, ctx } = this;
    return this.enter(options.budget, () => {
      const global = ffi.nonNull(ffi.x.QTS_GetGlobalObject(ctx), 'QTS_GetGlobalObject');
      const fn = ffi.getProp(ctx, global, name);
      ffi.freeValue(ctx, global);
      const argVal = ffi.newString(ctx, arg);
      const argv = ffi.nonNull(ffi.x.malloc(4), 'malloc');
      let result: Ptr;
      try {
        if (ffi.typeOf(ctx, fn) !== 'function') throw new GuestError('TypeError', `globalThis.${name} is not a function`, undefined);
        new DataView(this.inst.memory.buffer).setUint32(argv, argVal, true);
        result = ffi.x.QTS_Call(ctx, fn, ffi.x.QTS_GetUndefined(), 1, argv);
      } finally {
        ffi.free(argv);
        ffi.freeValue(ctx, argVal);
        ffi.freeValue(ctx, fn);
      }
      const settled = this.settle(this.checkException(result));
      try {
        const type = ffi.typeOf(ctx, settled);
        if (type !== 'string') throw new GuestError('TypeError', `${name}() returned a ${type}, expected a string`, undefined);
        return ffi.getString(ctx, settled);
      } finally {
        ffi.freeValue(ctx, settled);
      }
    });
  }

  /**
   * Charges `units` of host work to the call in progress (from a syscall
   * handler): if that leaves the budget below zero the call ends in
   * MeterExhausted at the guest's next step. Outside a call it does nothing.
   */
  charge(units: bigint): void {
    if (units < 0n) throw new RangeError(`cannot charge a negative amount (${units})`);
    this.inst.charge(units);
  }

  /** The memory image, at a quiet point only. */
  snapshot(): SnapshotImage {
    this.assertQuiet();
    const header = {
      variant: this.opts.binary.variant,
      wasmSha256: this.opts.binary.sha256,
      memoryBytes: this.memoryBytes,
      runtimePtr: this.rt,
      contextPtr: this.ctx,
      stackPointer: this.stackBase,
      hostFunctions: HOST_FUNCTIONS,
      clockMs: this.inst.clockMs,
    };
    this.origin = captureImage(this.inst.bytes(), header, this.origin);
    return this.origin;
  }

  /** sha256 of the canonical memory image: equal across replicas in the same state. */
  stateHash(): string {
    return imageHash(this.snapshot());
  }

  /**
   * Makes QuickJS run its full collection (reference cycles included) at the
   * guest's next object allocation, normally at the start of the next call.
   * A GC point chosen by the caller, so deterministic: the collection depends
   * only on the heap, which every replica has identical. Without it cycles
   * wait for QuickJS's own trigger (the heap grown by half since the last
   * collection), so a GC point could not see objects dropped since.
   */
  collectAtNextAllocation(): void {
    this.assertUsable();
    new DataView(this.inst.memory.buffer).setUint32(this.rt + RUNTIME_LAYOUT.gcThresholdOffset, 0, true);
  }

  /** Frees nothing inside (the memory goes with the instance) but forbids further use. */
  dispose(): void {
    // Idempotent: a second dispose must not hand the memory to the pool
    // again (two later sandboxes would share it).
    if (this.disposed) return;
    this.disposed = true;
    this.inst.discard('disposed');
    this.inst.callbacks = null;
    this.origin = null;
    if (this.recyclable) recycleInstance(this.inst);
  }

  // A call, not an evaluate: no script to compile on every fork.
  private reseed(identity: string): void {
    this.call(RESEED_GLOBAL, seedWords(identity).join(','));
  }

  // Between calls, with no promise job pending: the memory is all there is.
  private assertQuiet(): void {
    this.assertUsable();
    if (this.inst.exports.QTS_IsJobPending(this.rt)) throw new NotQuiescent('cannot snapshot with promise jobs pending');
    const sp = this.inst.exports.stackSave();
    if (sp !== this.stackBase) throw new NotQuiescent(`cannot snapshot mid-call (stack pointer ${sp}, base ${this.stackBase})`);
  }

  private assertUsable(): void {
    const why = this.inst.deathReason;
    if (why !== null) throw new InstanceDiscarded(why);
  }

  private enter<T>(budget: bigint | undefined, fn: () => T): T {
    let used = 0n;
    const limit = budget ?? this.opts.defaultBudget;
    try {
      const out = this.inst.guard(limit, fn);
      used = out.used;
      return out.value;
    } finally {
      this.lastUsed = used || limit - this.inst.meterRemaining();
    }
  }

  private installHostFunctions(): void {
    const { ffi, ctx } = this;
    this.enter(undefined, () => {
      const fn = ffi.nonNull(
        ffi.withCString(SYSCALL_GLOBAL, (name) => ffi.x.QTS_NewFunction(ctx, name, 1, 0, SYSCALL_ID)),
        'QTS_NewFunction',
      );
      const global = ffi.nonNull(ffi.x.QTS_GetGlobalObject(ctx), 'QTS_GetGlobalObject');
      ffi.setProp(ctx, global, SYSCALL_GLOBAL, fn);
      ffi.freeValue(ctx, global);
      ffi.freeValue(ctx, fn);
    });
  }

  // C -> host. Never lets a host exception unwind through wasm frames: every
  // failure becomes an Error thrown inside the guest.
  private hostCall(ctx: Ptr, argc: number, argv: Ptr, fnId: number): Ptr {
    const { ffi } = this;
    try {
      if (fnId !== SYSCALL_ID) return ffi.throwError(ctx, `unknown host function id ${fnId}`);
      if (argc !== 1) return ffi.throwError(ctx, `syscall takes exactly one string argument, got ${argc}`);
      const arg = ffi.x.QTS_ArgvGetJSValueConstPointer(argv, 0);
      const type = ffi.typeOf(ctx, arg);
      if (type !== 'string') return ffi.throwError(ctx, `syscall takes a string, got a ${type}`);
      const handler = this.onSyscall;
      if (!handler) return ffi.throwError(ctx, 'no syscall handler is installed in this sandbox');
      const reply = handler(ffi.getString(ctx, arg));
      if (typeof reply !== 'string') return ffi.throwError(ctx, 'syscall handler returned a non-string');
      return ffi.newString(ctx, reply);
    } catch (err) {
      // Running out of host stack depends on the host, not the guest: the
      // guest must not see it (it could catch it and commit a different state).
      if (isHostStackOverflow(err)) {
        this.inst.discard('host stack overflow in a syscall');
        throw new HostStackOverflow({ cause: err });
      }
      return ffi.throwError(ctx, `syscall failed: ${(err as Error)?.message ?? String(err)}`);
    }
  }

  /** Takes ownership of result; returns it, or throws the guest's exception as GuestError. */
  private checkException(result: Ptr): Ptr {
    const { ffi, ctx } = this;
    ffi.nonNull(result, 'QuickJS call');
    const error = ffi.x.QTS_ResolveException(ctx, result);
    if (error === 0) return result;
    ffi.freeValue(ctx, result);
    throw this.guestError(error);
  }

  private guestError(error: Ptr): GuestError {
    const { ffi, ctx } = this;
    try {
      const dumped = parseDump(ffi.dump(ctx, error));
      if (dumped && typeof dumped === 'object') {
        const e = dumped as { name?: unknown; message?: unknown; stack?: unknown };
        return new GuestError(String(e.name ?? 'Error'), String(e.message ?? ''), typeof e.stack === 'string' ? e.stack : undefined);
      }
      return new GuestError('Thrown', typeof dumped === 'string' ? dumped : JSON.stringify(dumped), undefined);
    } finally {
      ffi.freeValue(ctx, error);
    }
  }

  private drainJobs(): void {
    const { ffi } = this;
    const ctxOut = ffi.nonNull(ffi.x.malloc(4), 'malloc');
    try {
      while (ffi.x.QTS_IsJobPending(this.rt)) {
        const r = ffi.nonNull(ffi.x.QTS_ExecutePendingJob(this.rt, -1, ctxOut), 'QTS_ExecutePendingJob');
        const jobCtx = new DataView(this.inst.memory.buffer).getUint32(ctxOut, true) || this.ctx;
        const error = ffi.x.QTS_ResolveException(jobCtx, r);
        if (error !== 0) {
          ffi.freeValue(jobCtx, r);
          throw this.guestError(error);
        }
        ffi.freeValue(jobCtx, r);
      }
    } finally {
      ffi.free(ctxOut);
    }
  }

  /** Runs jobs to quiescence; a promise result is replaced by its value or thrown reason. */
  private settle(value: Ptr): Ptr {
    const { ffi, ctx } = this;
    try {
      this.drainJobs();
    } catch (err) {
      ffi.freeValue(ctx, value);
      throw err;
    }
    const state = ffi.x.QTS_PromiseState(ctx, value);
    if (state < 0) return value; // not a promise
    if (state === 0) {
      ffi.freeValue(ctx, value);
      throw new GuestError('Error', 'promise did not settle before the call ended', undefined);
    }
    const inner = ffi.nonNull(ffi.x.QTS_PromiseResult(ctx, value), 'QTS_PromiseResult');
    ffi.freeValue(ctx, value);
    if (state === 2) throw this.guestError(inner);
    return inner;
  }
}

function parseDump(text: string): unknown {
  if (text === 'undefined') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
