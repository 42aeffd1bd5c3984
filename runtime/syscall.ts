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
}

/**
 * Values a delivery's cache keeps at most; beyond it the cache starts over.
 * Bounded so that a delivery touching many keys does not leave them all in
 * the heap (and the next snapshot).
 */
const READ_CACHE_LIMIT = 256;

export function takeSyscall(): Syscall {
  const g = globalThis as any;
  const raw: (request: string) => string = g.__quickvat_syscall;
  if (typeof raw !== 'function') throw Error('quickvat runtime: host syscall function missing');
  delete g.__quickvat_syscall;
  const call = (...request: unknown[]) => reply(raw(JSON.stringify(request)));
  const reply = (text: string) => (text === '' ? undefined : JSON.parse(text));
  // Vatstore values this delivery read or wrote (undefined: absent), so a
  // key read again costs no syscall (a fork's start-up read a dozen keys
  // twice, issue 16). Every vatstore write of this vat goes through here and
  // the kernel writes a vat's vatstore only between deliveries, so within one
  // delivery the copy cannot go stale; it is dropped when the next starts.
  // A syscall that throws aborts the crank, sandbox included.
  const cache = new Map<string, string | undefined>();
  const remember = (key: string, value: string | undefined) => {
    if (cache.size >= READ_CACHE_LIMIT && !cache.has(key)) cache.clear();
    cache.set(key, value);
  };
  return harden({
    // The two syscalls of nearly every delivery build their JSON by hand: a
    // generic JSON.stringify of the nested request costs ~2,200 meter units
    // inside QuickJS, the concatenation ~850.
    send: (target: string, method: string, args: Capdata, result: string) =>
      void reply(raw(`["send",${JSON.stringify(target)},${JSON.stringify(method)},${capdataJson(args)},${JSON.stringify(result)}]`)),
    subscribe: (vpid: string) => void call('subscribe', vpid),
    resolve: (resolutions: Resolution[]) => {
      const parts = resolutions.map(([vpid, rejected, data]) => `[${JSON.stringify(vpid)},${rejected === true},${capdataJson(data)}]`);
      void reply(raw(`["resolve",[${parts.join(',')}]]`));
    },
    dropImports: (vrefs: string[]) => void call('dropImports', vrefs),
    retireImports: (vrefs: string[]) => void call('retireImports', vrefs),
    // Keys are escaped so the store's order is JavaScript's (key-order.ts).
    vatstoreGet: (key: string) => {
      if (cache.has(key)) return cache.get(key);
      const value: string | undefined = call('vatstoreGet', escapeKey(key)) ?? undefined;
      remember(key, value);
      return value;
    },
    vatstoreSet: (key: string, value: string) => {
      call('vatstoreSet', escapeKey(key), value);
      remember(key, value);
    },
    vatstoreDelete: (key: string) => {
      call('vatstoreDelete', escapeKey(key));
      remember(key, undefined);
    },
    vatstoreGetNextKey: (priorKey: string) => {
      const next = call('vatstoreGetNextKey', escapeKey(priorKey));
      return next === undefined ? undefined : unescapeKey(next);
    },
    log: (level: 'log' | 'warn' | 'error', text: string) => void call('log', level, text),
    newDelivery: () => cache.clear(),
  });
}

// What JSON.stringify gives for capdata from marshal or smallcaps-fast: {body, slots}.
function capdataJson(data: Capdata): string {
  return `{"body":${JSON.stringify(data.body)},"slots":${data.slots.length === 0 ? '[]' : JSON.stringify(data.slots)}}`;
}
