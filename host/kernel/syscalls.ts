// The one door from a vat into the kernel. Every argument is untrusted and
// checked here; every reply is a string. Host work per syscall is bounded and
// charged to the vat's meter: a fixed cost per call, a cost per byte that
// crosses, and a cost per committed key an ordered read steps over (issue #10:
// host work must be proportional to what the guest pays).
import type { Store } from '../store/index.js';
import type { KernelState, Message, RunItem } from './kernel-state.js';
import { assertCapdata, assertString, assertVref, isKpid, SyscallError, type Capdata, type Kref, type VatId } from './refs.js';
import type { Translator } from './translate.js';

export const MAX_VATSTORE_KEY = 1024;

const LONE_SURROGATE = /\p{Cs}/u;

/**
 * A vatstore key, checked in the vat's own terms (never the kernel's store
 * key): a string of at most MAX_VATSTORE_KEY bytes of UTF-8, without lone
 * surrogates. Throws SyscallError. Trial vats (host/upgrade/trial-vat.ts) use
 * this very check, so pre-flight refuses exactly what the kernel refuses.
 */
export function checkVatstoreKey(value: unknown): string {
  const key = assertString(value, 'vatstore key', MAX_VATSTORE_KEY);
  if (LONE_SURROGATE.test(key)) throw new SyscallError('a vatstore key must not contain lone surrogates');
  if (Buffer.byteLength(key, 'utf8') > MAX_VATSTORE_KEY) throw new SyscallError(`a vatstore key must be at most ${MAX_VATSTORE_KEY} bytes of UTF-8`);
  return key;
}

/** Meter units charged per syscall, per byte of request and reply, per key a getNextKey steps over, and per write of a vatstoreWrites. */
export const SYSCALL_COST = Object.freeze({ perCall: 2_000n, perByte: 20n, perScanStep: 2_000n, perWrite: 500n });

/** Writes one vatstoreWrites syscall carries at most (the guest flushes at this many). */
export const MAX_VATSTORE_WRITES = 256;

/**
 * The writes of a vatstoreWrites syscall, checked as vatstoreSet and
 * vatstoreDelete check theirs: [key, value] sets, [key, null] deletes, in
 * order. Throws SyscallError. Trial vats use this very check.
 */
export function checkVatstoreWrites(value: unknown): [string, string | null][] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_VATSTORE_WRITES) {
    throw new SyscallError(`vatstoreWrites takes a list of 1 to ${MAX_VATSTORE_WRITES} writes`);
  }
  return value.map((w: unknown, i) => {
    if (!Array.isArray(w) || w.length !== 2) throw new SyscallError(`vatstore write ${i} must be [key, value or null]`);
    const key = checkVatstoreKey(w[0]);
    return [key, w[1] === null ? null : assertString(w[1], `vatstore value for ${JSON.stringify(key.slice(0, 80))}`)];
  });
}

/** A syscall's reply and the host work beyond its bytes, in meter units. */
export type SyscallReply = readonly [reply: string, extraUnits: bigint];

/** What the syscalls need from the kernel. */
export interface SyscallHost {
  readonly store: Store;
  readonly state: KernelState;
  readonly translator: Translator;
  /** Queues a send `vat` made; false (nothing queued) when the vat is over its run-queue share. */
  enqueueFromVat(vat: VatId, item: RunItem & { type: 'send' }): string | null;
  enqueueNotify(vat: VatId, kp: Kref): void;
  resolveKernelPromise(kp: Kref, rejected: boolean, data: Capdata): void;
  /** Distributed GC (gc.ts): the vat no longer reaches / recognises these imports. */
  dropImports(vat: VatId, vrefs: unknown): void;
  retireImports(vat: VatId, vrefs: unknown): void;
  log(vat: VatId, level: string, text: string): void;
}

/** Meter units for one syscall that crossed `bytes` and did `extra` units of further host work. */
export function syscallCost(bytes: number, extra: bigint): bigint {
  return SYSCALL_COST.perCall + SYSCALL_COST.perByte * BigInt(bytes) + extra;
}

export function handleSyscall(k: SyscallHost, vat: VatId, request: unknown): SyscallReply {
  if (!Array.isArray(request) || typeof request[0] !== 'string') throw new SyscallError('the vat made a malformed syscall');
  const [op, ...a] = request;
  const { state, store } = k;
  switch (op) {
    case 'send': {
      const target = k.translator.krefFromVat(vat, assertVref(a[0], 'send target'), false);
      const method = assertString(a[1], 'method name', 1000);
      const args = k.translator.fromVat(vat, assertCapdata(a[2], 'send arguments'));
      const resultVref = assertVref(a[3], 'send result');
      if (!resultVref.startsWith('p+') || state.krefFor(vat, resultVref) !== undefined) {
        throw new SyscallError(`the vat named result ${resultVref}, which must be a new promise of its own (p+N)`);
      }
      const result = state.allocatePromise(null, [vat]);
      state.addClist(vat, resultVref, result, true);
      const msg: Message = { method, args, result };
      const refused = k.enqueueFromVat(vat, { type: 'send', target, msg });
      if (refused !== null) k.resolveKernelPromise(result, true, errorData(refused, 'RangeError'));
      return ['', 0n];
    }
    case 'subscribe': {
      // A vat may subscribe to a new promise of its own (a durable watch):
      // the kernel then knows it, with the vat as decider.
      const target = assertVref(a[0], 'subscribe target');
      const kp = k.translator.krefFromVat(vat, target, target.startsWith('p+'));
      if (!isKpid(kp)) throw new SyscallError(`the vat subscribed to ${String(a[0])}, which is not a promise`);
      const p = state.promise(kp);
      if (p.state !== 'unresolved') k.enqueueNotify(vat, kp);
      else if (!p.subscribers.includes(vat)) state.setPromise(kp, { ...p, subscribers: [...p.subscribers, vat] });
      return ['', 0n];
    }
    case 'resolve': {
      if (!Array.isArray(a[0]) || a[0].length === 0) throw new SyscallError('resolve needs a non-empty list');
      if (a[0].length > 10_000) throw new SyscallError(`resolve lists ${a[0].length} resolutions, above 10000`);
      for (const [i, r] of (a[0] as unknown[]).entries()) {
        if (!Array.isArray(r) || r.length !== 3 || typeof r[1] !== 'boolean') {
          throw new SyscallError(`resolution ${i} must be [vpid, rejected, capdata]`);
        }
        const vpid = assertVref(r[0], `resolution ${i} promise`);
        const kp = k.translator.krefFromVat(vat, vpid, false);
        const p = isKpid(kp) ? state.promise(kp) : undefined;
        if (!p || p.state !== 'unresolved' || p.decider !== vat) {
          throw new SyscallError(`the vat tried to resolve ${vpid}, which it does not decide`);
        }
        const data = k.translator.fromVat(vat, assertCapdata(r[2], `resolution ${i} data`));
        state.removeClist(vat, vpid, kp);
        k.resolveKernelPromise(kp, r[1], data);
      }
      return ['', 0n];
    }
    case 'vatstoreGet': {
      const v = store.get(state.vatstoreKey(vat, checkVatstoreKey(a[0])));
      return [v === undefined ? '' : JSON.stringify(v), 0n];
    }
    case 'vatstoreSet': {
      const key = checkVatstoreKey(a[0]);
      store.set(state.vatstoreKey(vat, key), assertString(a[1], `vatstore value for ${JSON.stringify(key.slice(0, 80))}`));
      return ['', 0n];
    }
    case 'vatstoreDelete': {
      store.delete(state.vatstoreKey(vat, checkVatstoreKey(a[0])));
      return ['', 0n];
    }
    case 'vatstoreWrites': {
      const writes = checkVatstoreWrites(a[0]);
      for (const [key, value] of writes) {
        if (value === null) store.delete(state.vatstoreKey(vat, key));
        else store.set(state.vatstoreKey(vat, key), value);
      }
      return ['', SYSCALL_COST.perWrite * BigInt(writes.length)];
    }
    case 'vatstoreGetNextKey': {
      const prefix = state.vatstoreKey(vat, '');
      const prior = a[0] === '' ? '' : checkVatstoreKey(a[0]);
      const next = store.getNextKey(prefix, prefix + prior);
      const extra = SYSCALL_COST.perScanStep * BigInt(store.lastScanSteps);
      return [next === undefined ? '' : JSON.stringify(next.slice(prefix.length)), extra];
    }
    case 'dropImports':
      k.dropImports(vat, a[0]);
      return ['', 0n];
    case 'retireImports':
      k.retireImports(vat, a[0]);
      return ['', 0n];
    case 'log': {
      const level = assertString(a[0], 'log level', 10);
      if (!/^[a-z]+$/.test(level)) throw new SyscallError('a log level is a lower-case word (log, warn, error)');
      const text = assertString(a[1], 'log text', 10_000);
      k.log(vat, level, text);
      return ['', 0n];
    }
    default:
      throw new SyscallError(`the vat made an unknown syscall ${JSON.stringify(op).slice(0, 40)}`);
  }
}

/** Smallcaps capdata for an Error (errors cross boundaries as name + message only). */
export function errorData(message: string, name = 'Error'): Capdata {
  return { body: `#${JSON.stringify({ '#error': message, name })}`, slots: [] };
}
