// The guest side of the one door to the host. The raw host function is taken
// off the global object before any contract code exists, so only this module
// can reach it; every request and reply is a JSON string.
import { escapeKey, unescapeKey } from './key-order.js';

export type Capdata = { body: string; slots: string[] };
export type Resolution = [vpid: string, rejected: boolean, data: Capdata];

export interface Syscall {
  send(target: string, method: string, args: Capdata, result: string): void;
  subscribe(vpid: string): void;
  resolve(resolutions: Resolution[]): void;
  /** resolve([[vpid, false, { body: `#${body}`, slots: [] }]]) for the smallcaps body of an answer that is not an object (answerBody), the same request built in one step. */
  resolveScalar(vpid: string, body: string): void;
  /** The vat no longer reaches these imports (a GC point found them dropped). */
  dropImports(vrefs: string[]): void;
  /** ... nor can recognise them: the kernel may forget them for this vat. */
  retireImports(vrefs: string[]): void;
  vatstoreGet(key: string): string | undefined;
  vatstoreSet(key: string, value: string): void;
  vatstoreDelete(key: string): void;
  vatstoreGetNextKey(priorKey: string): string | undefined;
  /** Diagnostics only: goes to the host's log, never into state. */
  log(level: 'log' | 'warn' | 'error', text: string): void;
  /** A delivery starts: forgets the vatstore values read or written by earlier ones. */
  newDelivery(): void;
  /**
   * From now on vatstore writes are held and sent together, in one
   * vatstoreWrites syscall, by endBatch, by any other syscall but a read, or
   * every MAX_BATCH writes: a start-up delivery makes dozens (issue 16).
   */
  startBatch(): void;
  /** Sends the held writes (or, for a delivery that failed and is rolled back anyway, drops them); writes go out at once again. */
  endBatch(send: boolean): void;
}

/**
 * What a delivery's read cache keeps at most: entries, and characters of
 * values (a value longer than READ_CACHE_VALUE_CHARS is never kept); beyond
 * either it starts over. Bounded in size, since the cache is still in the
 * heap when the delivery's snapshot is taken, and the heap never shrinks
 * (break-16c #1: 256 values of 60 kB grew a vat by 9 MiB).
 */
const READ_CACHE_LIMIT = 256;
const READ_CACHE_CHARS = 64 * 1024;
const READ_CACHE_VALUE_CHARS = 4 * 1024;
/** Writes (and characters of keys and values) held before they are sent; the kernel takes at most 256 writes per syscall. */
const MAX_BATCH = 256;
const MAX_BATCH_CHARS = 512 * 1024;

export function takeSyscall(): Syscall {
  const g = globalThis as any;
  const raw: (request: string) => string = g.__quickvat_syscall;
  if (typeof raw !== 'function') throw Error('quickvat runtime: host syscall function missing');
  delete g.__quickvat_syscall;
  // Held vatstore writes (null: a delete), sent before any syscall but a
  // read, so the kernel never sees the vatstore without them; a read of a
  // held key is answered from here.
  const held = new Map<string, string | null>();
  let heldChars = 0;
  let batching = false;
  const flush = () => {
    if (held.size === 0) return;
    const writes = [...held].map(([key, value]) => [escapeKey(key), value]);
    held.clear();
    heldChars = 0;
    reply(raw(JSON.stringify(['vatstoreWrites', writes])));
  };
  const out = (request: string) => {
    flush();
    return reply(raw(request));
  };
  const call = (...request: unknown[]) => out(JSON.stringify(request));
  const reply = (text: string) => (text === '' ? undefined : JSON.parse(text));
  const write = (key: string, value: string | undefined) => {
    if (!batching) {
      if (value === undefined) call('vatstoreDelete', escapeKey(key));
      else call('vatstoreSet', escapeKey(key), value);
    } else {
      held.set(key, value ?? null);
      heldChars += key.length + (value?.length ?? 0);
    }
    remember(key, value);
    if (held.size >= MAX_BATCH || heldChars >= MAX_BATCH_CHARS) flush();
  };
  // Vatstore values this delivery read or wrote (undefined: absent), so a
  // key read again costs no syscall (a fork's start-up read a dozen keys
  // twice, issue 16). Every vatstore write of this vat goes through here and
  // the kernel writes a vat's vatstore only between deliveries, so within one
  // delivery the copy cannot go stale; it is dropped when the next starts.
  // A syscall that throws aborts the crank, sandbox included.
  const cache = new Map<string, string | undefined>();
  let cacheChars = 0;
  const remember = (key: string, value: string | undefined) => {
    const size = key.length + (value?.length ?? 0);
    if (value !== undefined && value.length > READ_CACHE_VALUE_CHARS) {
      // Not kept; an older copy must not answer for it.
      cache.delete(key);
      return;
    }
    if (cache.size >= READ_CACHE_LIMIT || cacheChars + size > READ_CACHE_CHARS) {
      cache.clear();
      cacheChars = 0;
    }
    cache.set(key, value);
    cacheChars += size;
  };
  return harden({
    // The two syscalls of nearly every delivery build their JSON by hand: a
    // generic JSON.stringify of the nested request costs ~2,200 meter units
    // inside QuickJS, the concatenation ~850.
    send: (target: string, method: string, args: Capdata, result: string) =>
      void out(`["send",${JSON.stringify(target)},${JSON.stringify(method)},${capdataJson(args)},${JSON.stringify(result)}]`),
    subscribe: (vpid: string) => void call('subscribe', vpid),
    resolve: (resolutions: Resolution[]) => {
      const parts = resolutions.map(([vpid, rejected, data]) => `[${JSON.stringify(vpid)},${rejected === true},${capdataJson(data)}]`);
      void out(`["resolve",[${parts.join(',')}]]`);
    },
    resolveScalar: (vpid: string, body: string) => void out(`["resolve",[[${JSON.stringify(vpid)},false,{"body":${JSON.stringify(`#${body}`)},"slots":[]}]]]`),
    dropImports: (vrefs: string[]) => void call('dropImports', vrefs),
    retireImports: (vrefs: string[]) => void call('retireImports', vrefs),
    // Keys are escaped so the store's order is JavaScript's (key-order.ts).
    // A read needs no flush: a key with a held write is answered here.
    vatstoreGet: (key: string) => {
      const mine = held.get(key);
      if (mine !== undefined) return mine ?? undefined;
      if (cache.has(key)) return cache.get(key);
      const value: string | undefined = reply(raw(JSON.stringify(['vatstoreGet', escapeKey(key)]))) ?? undefined;
      remember(key, value);
      return value;
    },
    vatstoreSet: (key: string, value: string) => write(key, value),
    vatstoreDelete: (key: string) => write(key, undefined),
    vatstoreGetNextKey: (priorKey: string) => {
      const next = call('vatstoreGetNextKey', escapeKey(priorKey));
      return next === undefined ? undefined : unescapeKey(next);
    },
    log: (level: 'log' | 'warn' | 'error', text: string) => void call('log', level, text),
    newDelivery: () => {
      cache.clear();
      cacheChars = 0;
      held.clear();
      heldChars = 0;
      batching = false;
    },
    startBatch: () => {
      batching = true;
    },
    endBatch: (send: boolean) => {
      if (send) flush();
      held.clear();
      heldChars = 0;
      batching = false;
    },
  });
}

// What JSON.stringify gives for capdata from marshal or smallcaps-fast: {body, slots}.
function capdataJson(data: Capdata): string {
  return `{"body":${JSON.stringify(data.body)},"slots":${data.slots.length === 0 ? '[]' : JSON.stringify(data.slots)}}`;
}
