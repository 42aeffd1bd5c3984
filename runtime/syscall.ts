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
}

export function takeSyscall(): Syscall {
  const g = globalThis as any;
  const raw: (request: string) => string = g.__quickvat_syscall;
  if (typeof raw !== 'function') throw Error('quickvat runtime: host syscall function missing');
  delete g.__quickvat_syscall;
  const call = (...request: unknown[]) => reply(raw(JSON.stringify(request)));
  const reply = (text: string) => (text === '' ? undefined : JSON.parse(text));
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
    vatstoreGet: (key: string) => call('vatstoreGet', escapeKey(key)) ?? undefined,
    vatstoreSet: (key: string, value: string) => void call('vatstoreSet', escapeKey(key), value),
    vatstoreDelete: (key: string) => void call('vatstoreDelete', escapeKey(key)),
    vatstoreGetNextKey: (priorKey: string) => {
      const next = call('vatstoreGetNextKey', escapeKey(priorKey));
      return next === undefined ? undefined : unescapeKey(next);
    },
    log: (level: 'log' | 'warn' | 'error', text: string) => void call('log', level, text),
  });
}

// What JSON.stringify gives for capdata from marshal or smallcaps-fast: {body, slots}.
function capdataJson(data: Capdata): string {
  return `{"body":${JSON.stringify(data.body)},"slots":${data.slots.length === 0 ? '[]' : JSON.stringify(data.slots)}}`;
}
