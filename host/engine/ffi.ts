// Thin, typed helpers over the QTS_* exports: strings in and out of guest
// memory, and ownership of JSValue pointers. Every JSValue* returned by a
// helper here is owned by the caller and must be passed to freeValue.
import { InstanceTrapped } from './errors.js';
import type { WasmInstance } from './wasm-instance.js';

export type Ptr = number;

export class Ffi {
  constructor(private readonly inst: WasmInstance) {}

  get x() {
    return this.inst.exports;
  }

  /** The glue does not check its mallocs; we do, and treat NULL as a trap. */
  nonNull(ptr: Ptr, what: string): Ptr {
    if (ptr === 0) {
      this.inst.discard(`${what} returned NULL (out of memory)`);
      throw new InstanceTrapped(`${what} returned NULL (out of memory)`);
    }
    return ptr;
  }

  /** malloc'd NUL-terminated UTF-8 copy of s; the caller frees it. */
  newCString(s: string): { ptr: Ptr; length: number } {
    // Encoded straight into guest memory; a lone surrogate becomes U+FFFD,
    // as TextEncoder would make it.
    const length = Buffer.byteLength(s, 'utf8');
    const ptr = this.nonNull(this.x.malloc(length + 1), 'malloc');
    const mem = this.inst.buffer();
    mem.write(s, ptr, length, 'utf8');
    mem[ptr + length] = 0;
    return { ptr, length };
  }

  readCString(ptr: Ptr): string {
    return this.inst.cString(ptr);
  }

  free(ptr: Ptr): void {
    this.x.free(ptr);
  }

  withCString<T>(s: string, fn: (ptr: Ptr, length: number) => T): T {
    const { ptr, length } = this.newCString(s);
    try {
      return fn(ptr, length);
    } finally {
      this.x.free(ptr);
    }
  }

  newString(ctx: Ptr, s: string): Ptr {
    return this.nonNull(
      this.withCString(s, (p) => this.x.QTS_NewString(ctx, p)),
      'QTS_NewString',
    );
  }

  /** ToString of a value, as the guest would see it. */
  getString(ctx: Ptr, value: Ptr): string {
    const chars = this.nonNull(this.x.QTS_GetString(ctx, value), 'QTS_GetString');
    try {
      return this.readCString(chars);
    } finally {
      this.x.QTS_FreeCString(ctx, chars);
    }
  }

  typeOf(ctx: Ptr, value: Ptr): string {
    const chars = this.nonNull(this.x.QTS_Typeof(ctx, value), 'QTS_Typeof');
    try {
      return this.readCString(chars);
    } finally {
      this.x.free(chars);
    }
  }

  /** JSON of a value (errors get name/message/stack), or its string form. */
  dump(ctx: Ptr, value: Ptr): string {
    const chars = this.nonNull(this.x.QTS_Dump(ctx, value), 'QTS_Dump');
    try {
      return this.readCString(chars);
    } finally {
      this.x.QTS_FreeCString(ctx, chars);
    }
  }

  freeValue(ctx: Ptr, value: Ptr): void {
    this.x.QTS_FreeValuePointer(ctx, value);
  }

  getProp(ctx: Ptr, obj: Ptr, name: string): Ptr {
    const key = this.newString(ctx, name);
    try {
      return this.nonNull(this.x.QTS_GetProp(ctx, obj, key), 'QTS_GetProp');
    } finally {
      this.freeValue(ctx, key);
    }
  }

  setProp(ctx: Ptr, obj: Ptr, name: string, value: Ptr): void {
    const key = this.newString(ctx, name);
    try {
      this.x.QTS_SetProp(ctx, obj, key, value);
    } finally {
      this.freeValue(ctx, key);
    }
  }

  /** An Error with the given message, thrown: returns the exception marker to hand back to QuickJS. */
  throwError(ctx: Ptr, message: string): Ptr {
    const err = this.nonNull(this.x.QTS_NewError(ctx), 'QTS_NewError');
    try {
      const msg = this.newString(ctx, message);
      this.setProp(ctx, err, 'message', msg);
      this.freeValue(ctx, msg);
      return this.nonNull(this.x.QTS_Throw(ctx, err), 'QTS_Throw');
    } finally {
      this.freeValue(ctx, err);
    }
  }
}
