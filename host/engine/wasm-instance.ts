// One instantiated QuickJS wasm: its memory, its exports, and the imports we
// pin for determinism. Nothing here knows about JS values; see ffi.ts.
//
// Determinism: the only inputs a guest can observe from the host are the ones
// wired below. The clock is a logical one the owner sets; the timezone is UTC;
// the environment is empty; stdout/stderr go to a bounded host-side log that is
// never fed back. Heap growth depends only on the requested size.
import { EXPORTS, IMPORTS, METER, STACK_GUARD } from './quickjs-build.js';
import {
  EngineError,
  HostStackOverflow,
  InstanceDiscarded,
  InstanceTrapped,
  MeterExhausted,
  StackLimitExceeded,
} from './errors.js';
import type { WasmBinary } from './wasm-binary.js';

export const WASM_PAGE = 65536;

type ExportFn = (...args: number[]) => number;
export type Exports = { [K in keyof typeof EXPORTS]: ExportFn };

/** The C -> host callbacks QuickJS makes; a sandbox fills them in. */
export interface GuestCallbacks {
  callFunction(ctx: number, thisPtr: number, argc: number, argv: number, fnId: number): number;
  loadModuleSource(rt: number, ctx: number, name: string): number;
  normalizeModule(rt: number, ctx: number, base: string, name: string): number;
}

export interface InstanceOptions {
  /** Initial memory size in bytes (a multiple of 64 KiB). */
  initialBytes: number;
  /** Hard cap; the guest sees a catchable out-of-memory beyond it. */
  maxBytes: number;
  /**
   * A memory to run in instead of a new one (exactly initialBytes long,
   * created with maxBytes as its maximum). Its old contents stay wherever
   * instantiation does not write: the caller overwrites them.
   */
  memory?: WebAssembly.Memory;
}

/** V8's "Maximum call stack size exceeded", from JS or wasm frames. */
export function isHostStackOverflow(err: unknown): boolean {
  return err instanceof RangeError && /call stack size/i.test(err.message);
}

/** Thrown by our own trapping imports; caught by guard() and turned into InstanceTrapped. */
class HostTrap extends Error {}

const LOG_LIMIT = 64;

export class WasmInstance {
  readonly memory: WebAssembly.Memory;
  readonly exports: Exports;
  readonly binary: WasmBinary;
  readonly maxBytes: number;
  /** Milliseconds since the epoch as the guest's Date sees them; set by the owner. */
  clockMs = 0;
  callbacks: GuestCallbacks | null = null;
  /** Last lines the guest's C code printed (diagnostics only; never read back into the guest). */
  readonly log: string[] = [];
  private readonly meterGlobal: WebAssembly.Global | null;
  private readonly stackExceeded: WebAssembly.Global | null;
  private dead: string | null = null;
  private depth = 0;
  private budget = 0n;
  private lineBuffer: number[] = [];

  constructor(binary: WasmBinary, options: InstanceOptions) {
    this.binary = binary;
    this.maxBytes = options.maxBytes;
    if (options.memory && options.memory.buffer.byteLength !== options.initialBytes) {
      throw new EngineError(`a reused memory must be ${options.initialBytes} bytes, got ${options.memory.buffer.byteLength}`);
    }
    this.memory =
      options.memory ??
      new WebAssembly.Memory({
        initial: options.initialBytes / WASM_PAGE,
        maximum: options.maxBytes / WASM_PAGE,
      });
    const instance = new WebAssembly.Instance(binary.module, { a: this.imports() });
    this.exports = {} as Exports;
    for (const [symbol, name] of Object.entries(EXPORTS)) {
      (this.exports as Record<string, ExportFn>)[symbol] = instance.exports[name] as ExportFn;
    }
    this.meterGlobal = binary.metered ? (instance.exports[METER.remainingGlobal] as WebAssembly.Global) : null;
    this.stackExceeded = (instance.exports[STACK_GUARD.exceededGlobal] as WebAssembly.Global | undefined) ?? null;
    this.setMeter(1n << 40n);
    this.exports.wasmCallCtors();
  }

  get alive(): boolean {
    return this.dead === null;
  }

  /** Why this instance is unusable, or null. */
  get deathReason(): string | null {
    return this.dead;
  }

  bytes(): Uint8Array {
    return new Uint8Array(this.memory.buffer);
  }

  /**
   * The memory as one Buffer, made again only when the memory grew (growing
   * detaches the old one): strings cross the boundary through it with no
   * view or copy of their own.
   */
  buffer(): Buffer {
    const ab = this.memory.buffer;
    if (this.view?.buffer !== ab) this.view = Buffer.from(ab);
    return this.view;
  }
  private view: Buffer | null = null;

  /**
   * The NUL-terminated UTF-8 string at `ptr`. No NUL before the end of
   * memory means the guest's memory is corrupt: the instance is discarded
   * (InstanceTrapped), not read as a shorter string (break-perf L1).
   */
  cString(ptr: number): string {
    const mem = this.buffer();
    const end = mem.indexOf(0, ptr);
    if (end < 0) {
      this.discard(`string at ${ptr} runs past the end of memory (corrupt memory)`);
      throw new InstanceTrapped(this.dead!);
    }
    return mem.toString('utf8', ptr, end);
  }

  /** Marks the instance unusable; later guarded calls throw InstanceDiscarded. */
  discard(why: string): void {
    if (this.dead === null) this.dead = why;
  }

  /**
   * Runs fn as one top-level entry into the guest with a compute budget.
   * Any trap poisons the instance for good: the memory may be mid-update.
   * Nested entries (from host callbacks) share the outer budget.
   */
  guard<T>(budget: bigint, fn: () => T): { value: T; used: bigint } {
    if (this.dead !== null) throw new InstanceDiscarded(this.dead);
    const outer = this.depth === 0;
    if (outer) {
      this.budget = budget;
      this.setMeter(budget);
    }
    this.depth++;
    try {
      const value = fn();
      if (outer) this.checkNullPage();
      return { value, used: outer ? this.budget - this.meterRemaining() : 0n };
    } catch (err) {
      // Our own typed errors are raised between wasm calls, with memory
      // consistent; anything else came out of (or through) the wasm.
      if (!outer || err instanceof EngineError) throw err;
      throw this.classify(err);
    } finally {
      this.depth--;
    }
  }

  /** Deducts host work done for the guest (e.g. a syscall); below zero, the guest's next step traps. */
  charge(units: bigint): void {
    if (this.meterGlobal && this.depth > 0) this.meterGlobal.value = (this.meterGlobal.value as bigint) - units;
  }

  meterRemaining(): bigint {
    return this.meterGlobal ? (this.meterGlobal.value as bigint) : this.budget;
  }

  private setMeter(units: bigint): void {
    if (this.meterGlobal) this.meterGlobal.value = units;
  }

  private classify(err: unknown): Error {
    const remaining = this.meterRemaining();
    if (this.meterGlobal && remaining < 0n) {
      this.discard('compute budget exhausted');
      return new MeterExhausted(this.budget, this.budget - remaining);
    }
    if (this.stackExceeded && this.stackExceeded.value !== 0) {
      this.discard('native stack budget exceeded');
      return new StackLimitExceeded(STACK_GUARD.hardBytes);
    }
    if (isHostStackOverflow(err)) {
      this.discard('host stack overflow');
      return new HostStackOverflow({ cause: err });
    }
    const reason =
      err instanceof HostTrap
        ? err.message
        : err instanceof WebAssembly.RuntimeError
            ? `wasm trap: ${err.message}`
            : `host exception inside a guest call: ${(err as Error)?.message ?? String(err)}`;
    this.discard(reason);
    return new InstanceTrapped(reason, { cause: err });
  }

  // The glue's own mallocs do not check for NULL; near the memory cap it can
  // write through address 0. Static data starts at 1024, so anything non-zero
  // below that means memory is corrupt.
  private checkNullPage(): void {
    // 32-bit words: a 64-bit view would make a BigInt of every word read.
    const low = new Int32Array(this.memory.buffer, 0, 256);
    for (let i = 0; i < 256; i++) {
      if (low[i] !== 0) {
        this.discard('write through a NULL pointer (allocation failure near the memory cap)');
        throw new InstanceTrapped(this.dead!);
      }
    }
  }

  private imports(): WebAssembly.ModuleImports {
    const trap = (what: string) => {
      throw new HostTrap(what);
    };
    const view = () => new DataView(this.memory.buffer);
    const imports: WebAssembly.ModuleImports = {
      [IMPORTS.memory]: this.memory,
      [IMPORTS.assertFail]: (cond: number, file: number, line: number, func: number) =>
        trap(`assertion failed in QuickJS: ${this.cString(cond)} at ${this.cString(file)}:${line} (${func ? this.cString(func) : '?'})`),
      [IMPORTS.abort]: () => trap('QuickJS called abort()'),
      [IMPORTS.procExit]: (code: number) => trap(`QuickJS called exit(${code})`),
      [IMPORTS.fdWrite]: (fd: number, iov: number, iovcnt: number, pnum: number) => {
        const dv = view();
        const bytes = this.bytes();
        let written = 0;
        for (let i = 0; i < iovcnt; i++) {
          const ptr = dv.getUint32(iov + i * 8, true);
          const len = dv.getUint32(iov + i * 8 + 4, true);
          for (let j = 0; j < len; j++) this.logByte(fd, bytes[ptr + j]);
          written += len;
        }
        dv.setUint32(pnum, written, true);
        return 0;
      },
      [IMPORTS.fdClose]: () => 52, // ENOSYS
      [IMPORTS.fdSeek]: () => 70, // ESPIPE
      // An empty environment: nothing about the host process leaks in.
      [IMPORTS.environSizesGet]: (countPtr: number, sizePtr: number) => {
        const dv = view();
        dv.setUint32(countPtr, 0, true);
        dv.setUint32(sizePtr, 0, true);
        return 0;
      },
      [IMPORTS.environGet]: () => 0,
      [IMPORTS.dateNow]: () => this.clockMs,
      // localtime in UTC, whatever the host's TZ.
      [IMPORTS.localtime]: (time: bigint, tm: number) => {
        const d = new Date(Number(time) * 1000);
        const dv = view();
        const fields = [
          d.getUTCSeconds(),
          d.getUTCMinutes(),
          d.getUTCHours(),
          d.getUTCDate(),
          d.getUTCMonth(),
          d.getUTCFullYear() - 1900,
          d.getUTCDay(),
          Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86400000),
          0, // tm_isdst
          0, // tm_gmtoff
        ];
        fields.forEach((v, i) => dv.setInt32(tm + i * 4, v, true));
      },
      [IMPORTS.tzset]: (timezone: number, daylight: number, stdName: number, dstName: number) => {
        const dv = view();
        dv.setUint32(timezone, 0, true);
        dv.setInt32(daylight, 0, true);
        const bytes = this.bytes();
        for (const p of [stdName, dstName]) bytes.set([0x55, 0x54, 0x43, 0], p); // "UTC\0"
      },
      [IMPORTS.setTimer]: () => 0, // no timers in a vat
      [IMPORTS.keepaliveClear]: () => {},
      [IMPORTS.resizeHeap]: (requested: number) => this.grow(requested >>> 0),
      [IMPORTS.shouldInterrupt]: () => 0,
      [IMPORTS.callFunction]: (ctx: number, thisPtr: number, argc: number, argv: number, fnId: number) =>
        this.requireCallbacks().callFunction(ctx, thisPtr, argc, argv, fnId),
      [IMPORTS.loadModuleSource]: (rt: number, ctx: number, name: number) =>
        this.requireCallbacks().loadModuleSource(rt, ctx, this.cString(name)),
      [IMPORTS.normalizeModule]: (rt: number, ctx: number, base: number, name: number) =>
        this.requireCallbacks().normalizeModule(rt, ctx, this.cString(base), this.cString(name)),
      [IMPORTS.freeHostRef]: () => {},
    };
    return imports;
  }

  private requireCallbacks(): GuestCallbacks {
    if (!this.callbacks) throw new HostTrap('guest called into the host before callbacks were installed');
    return this.callbacks;
  }

  // Grows by at least a quarter of the current size (fewer, larger growths),
  // never past the cap. Only the requested size decides, so replicas agree.
  private grow(requested: number): number {
    const current = this.memory.buffer.byteLength;
    if (requested <= current) return 1;
    if (requested > this.maxBytes) return 0;
    const target = Math.min(this.maxBytes, Math.max(requested, current + Math.floor(current / 4)));
    const pages = Math.ceil((target - current) / WASM_PAGE);
    try {
      this.memory.grow(pages);
      return 1;
    } catch {
      return 0;
    }
  }

  private logByte(fd: number, byte: number): void {
    if (byte === 10) {
      const line = `${fd === 1 ? 'out' : 'err'}: ${Buffer.from(this.lineBuffer).toString('utf8')}`;
      this.lineBuffer = [];
      this.log.push(line);
      if (this.log.length > LOG_LIMIT) this.log.shift();
    } else if (this.lineBuffer.length < 4096) {
      this.lineBuffer.push(byte);
    }
  }
}
