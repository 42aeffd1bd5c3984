// Reference syntax and validation of everything a vat hands the kernel.
// A vat's syscall arguments are untrusted: each is checked here before the
// kernel looks at it, and a failure names the value and why it is wrong.

/** Capdata as it crosses a boundary: a smallcaps body and the references it names. */
export interface Capdata {
  readonly body: string;
  readonly slots: readonly string[];
}

export type VatId = string;
export type Kref = string; // ko<N> | kp<N>
export type Vref = string; // o+N | o-N | p+N | p-N

export class SyscallError extends Error {
  override name = 'SyscallError';
}

// Plain ids, plus virtual/durable objects o+d<kind>/<n>[:facet] and o+v… .
const VREF = /^(?:[op][+-](?:0|[1-9]\d{0,14})|o\+[dv](?:0|[1-9]\d{0,9})\/(?:0|[1-9]\d{0,14})(?::\d{1,4})?)$/;
const MAX_STRING = 1 << 20;
const MAX_SLOTS = 10_000;

export const isExportVref = (v: Vref) => v.startsWith('o+');
export const isObjectVref = (v: Vref) => v[0] === 'o';
export const isPromiseVref = (v: Vref) => v[0] === 'p';
export const isKpid = (k: Kref) => k.startsWith('kp');

export function assertVref(value: unknown, what: string): Vref {
  if (typeof value !== 'string' || !VREF.test(value)) {
    throw new SyscallError(`${what} must be a vat reference like o-3 or p+7, got ${describe(value)}`);
  }
  return value;
}

export function assertString(value: unknown, what: string, max = MAX_STRING): string {
  if (typeof value !== 'string') throw new SyscallError(`${what} must be a string, got ${describe(value)}`);
  if (value.length > max) throw new SyscallError(`${what} is ${value.length} characters, above the limit of ${max}`);
  return value;
}

export function assertCapdata(value: unknown, what: string): Capdata {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SyscallError(`${what} must be capdata {body, slots}, got ${describe(value)}`);
  }
  const { body, slots } = value as Record<string, unknown>;
  assertString(body, `${what}.body`);
  if (!(body as string).startsWith('#')) throw new SyscallError(`${what}.body must be smallcaps (start with "#"), got ${describe(body)}`);
  if (!Array.isArray(slots)) throw new SyscallError(`${what}.slots must be an array, got ${describe(slots)}`);
  if (slots.length > MAX_SLOTS) throw new SyscallError(`${what}.slots has ${slots.length} entries, above ${MAX_SLOTS}`);
  slots.forEach((s, i) => assertVref(s, `${what}.slots[${i}]`));
  if (Object.keys(value).length !== 2) throw new SyscallError(`${what} must have exactly the keys body and slots`);
  return { body: body as string, slots: slots as string[] };
}

export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value === null) return 'null';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}
