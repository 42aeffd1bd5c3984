// Liveslots: the vat side of the kernel protocol. It names the vat's objects
// and promises with vrefs, turns values into capdata (smallcaps) and back,
// answers deliveries and notifications, and turns eventual sends into syscalls.
//
// vrefs: o+N an object this vat exports, o-N an object it imports;
//        p+N a promise this vat allocated, p-N one the kernel told it about.
import { makeMarshal } from '@endo/marshal';
import { Remotable, passStyleOf } from '@endo/pass-style';
import type { Capdata, Resolution, Syscall } from './syscall.js';

/** Virtual and durable objects, which live outside the heap (vat-data.ts). */
export interface VirtualHooks {
  vrefOf(value: unknown): string | undefined;
  isVirtualVref(vref: string): boolean;
  reanimate(vref: string): object;
}

export interface LiveSlots {
  /** Installs (or, at an upgrade, replaces) the virtual-object layer. */
  setVirtualHooks(hooks: VirtualHooks): void;
  /** vref of a value the vat already knows, without allocating one. */
  knownSlot(value: unknown): string | undefined;
  /** The value for one slot, as unserialize would give it. */
  slotToVal(vref: string): unknown;
  /** Registers the root object as o+0. */
  setRoot(root: unknown): void;
  deliver(target: string, method: string, args: Capdata, result: string | null): void;
  notify(resolutions: Resolution[]): void;
  serialize(value: unknown): Capdata;
  unserialize(data: Capdata): unknown;
  /** Rejects every promise this incarnation decides (used when it is replaced). */
  stats(): { exports: number; imports: number; promises: number };
}

type PromiseRecord = { resolve: (v: unknown) => void; reject: (e: unknown) => void };

export function makeLiveSlots(syscall: Syscall): LiveSlots {
  const valToSlot = new WeakMap<object, string>();
  const slotToVal = new Map<string, any>();
  // Imported promises we still wait on: vpid -> resolvers.
  const importedPromises = new Map<string, PromiseRecord>();
  let nextExport = 1;
  let virtual: VirtualHooks | null = null;
  let nextPromise = 1;

  const allocatePromiseId = () => `p+${nextPromise++}`;

  const register = (slot: string, val: any) => {
    valToSlot.set(val, slot);
    slotToVal.set(slot, val);
  };
  // A settled promise's vpid is dead on both sides; passing the promise again
  // later allocates a fresh one.
  const retire = (vpid: string) => {
    const val = slotToVal.get(vpid);
    if (val !== undefined) valToSlot.delete(val);
    slotToVal.delete(vpid);
  };

  // When this vat exports a promise, it is the decider: report the settlement.
  const followLocalPromise = (vpid: string, p: Promise<unknown>) => {
    p.then(
      (value) => resolveOut(vpid, false, value),
      (reason) => resolveOut(vpid, true, reason),
    );
  };

  const resolveOut = (vpid: string, rejected: boolean, value: unknown) => {
    let data: Capdata;
    try {
      data = m.toCapData(harden(value) as any);
    } catch (err) {
      rejected = true;
      data = m.toCapData(harden(Error(`result for ${vpid} could not be serialized: ${(err as Error).message}`)));
    }
    retire(vpid);
    syscall.resolve([[vpid, rejected, data]]);
  };

  const convertValToSlot = (val: any): string => {
    const known = valToSlot.get(val) ?? virtual?.vrefOf(val);
    if (known !== undefined) return known;
    const style = passStyleOf(val);
    if (style === 'remotable') {
      const slot = `o+${nextExport++}`;
      register(slot, val);
      return slot;
    }
    if (style === 'promise') {
      const vpid = allocatePromiseId();
      register(vpid, val);
      followLocalPromise(vpid, val);
      return vpid;
    }
    throw Error(`cannot pass a ${style} as a reference`);
  };

  const queueMessage = (targetSlot: string, method: string, args: unknown[]) => {
    const resultVpid = allocatePromiseId();
    // The kernel subscribes a sender to its own result; no separate subscribe.
    const p = makeImportedPromise(resultVpid, false);
    syscall.send(targetSlot, method, m.toCapData(harden(args) as any), resultVpid);
    return p;
  };

  const makeImportedPresence = (slot: string) => {
    const handler = {
      applyMethod(_o: unknown, method: unknown, args: unknown[]) {
        if (typeof method !== 'string') throw Error(`method name must be a string, got ${typeof method}`);
        return queueMessage(slot, method, args);
      },
      applyFunction() {
        throw Error(`cannot call presence ${slot} as a function`);
      },
      get(_o: unknown, prop: unknown) {
        throw Error(`cannot get property ${String(prop)} of remote presence ${slot}; send a method instead`);
      },
    };
    let presence: any;
    // eslint-disable-next-line no-new
    new HandledPromise((_res: unknown, _rej: unknown, resolveWithPresence: (h: unknown) => unknown) => {
      presence = Remotable(`Alleged: presence ${slot}`, undefined, resolveWithPresence(handler) as any);
    });
    return presence;
  };

  // A promise the kernel knows by vpid: messages sent to it pipeline to the
  // kernel; it settles when the kernel notifies us.
  const makeImportedPromise = (vpid: string, subscribe = true) => {
    let record!: PromiseRecord;
    const handler = {
      applyMethod(_o: unknown, method: unknown, args: unknown[]) {
        if (typeof method !== 'string') throw Error(`method name must be a string, got ${typeof method}`);
        return queueMessage(vpid, method, args);
      },
    };
    const p = new HandledPromise((resolve: any, reject: any) => {
      record = { resolve, reject };
    }, handler);
    // Silence unhandled-rejection noise; the kernel reports failures to senders.
    p.catch(() => {});
    importedPromises.set(vpid, record);
    register(vpid, p);
    if (subscribe) syscall.subscribe(vpid);
    return p;
  };

  const convertSlotToVal = (slot: string): any => {
    const known = slotToVal.get(slot);
    if (known !== undefined) return known;
    if (virtual?.isVirtualVref(slot)) return virtual.reanimate(slot);
    if (/^o-\d+$/.test(slot)) {
      const presence = makeImportedPresence(slot);
      register(slot, presence);
      return presence;
    }
    if (/^p[+-]\d+$/.test(slot)) return makeImportedPromise(slot);
    throw Error(`vat has no object for reference ${slot}`);
  };

  const m = makeMarshal(convertValToSlot, convertSlotToVal, {
    serializeBodyFormat: 'smallcaps',
    errorTagging: 'off',
    marshalSaveError: () => {},
  });

  return harden({
    setVirtualHooks(hooks: VirtualHooks) {
      virtual = hooks;
    },
    slotToVal: (vref: string) => convertSlotToVal(vref),
    knownSlot: (value: unknown) => (typeof value === 'object' && value !== null ? valToSlot.get(value) ?? virtual?.vrefOf(value) : undefined),
    setRoot(root: unknown) {
      if (passStyleOf(root) !== 'remotable') throw Error('buildRootObject must return a Far object');
      register('o+0', root);
    },
    deliver(target, method, args, result) {
      let res: Promise<unknown>;
      try {
        const t = slotToVal.get(target) ?? (virtual?.isVirtualVref(target) ? virtual.reanimate(target) : undefined);
        if (t === undefined) throw Error(`no object ${target} in this vat (it may have been dropped by an upgrade)`);
        const decoded = m.fromCapData(args);
        if (!Array.isArray(decoded)) throw Error('message arguments must be an array');
        if (typeof t === 'object' && t !== null && (t as Record<string, unknown>)[method] === undefined) throw TypeError(noSuchMethod(t, method));
        res = HandledPromise.applyMethod(t, method, decoded);
      } catch (err) {
        res = Promise.reject(err);
      }
      if (result !== null) {
        register(result, res);
        followLocalPromise(result, res);
      } else {
        res.catch(() => {});
      }
    },
    notify(resolutions) {
      for (const [vpid, rejected, data] of resolutions) {
        const record = importedPromises.get(vpid);
        if (!record) continue;
        importedPromises.delete(vpid);
        retire(vpid);
        let value: unknown;
        try {
          value = m.fromCapData(data);
        } catch (err) {
          record.reject(err);
          continue;
        }
        if (rejected) record.reject(value);
        else record.resolve(value);
      }
    },
    serialize: (value: unknown) => m.toCapData(harden(value) as any),
    unserialize: (data: Capdata) => m.fromCapData(data),
    stats: () => ({ exports: nextExport, imports: slotToVal.size, promises: importedPromises.size }),
  } satisfies LiveSlots);
}

// Endo's own message lists every method name, internals such as
// __getMethodNames__ included; callers (and CLI users) see only the API.
function noSuchMethod(target: object, method: string): string {
  const names = new Set<string>();
  for (let o: object | null = target; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const key of Object.getOwnPropertyNames(o)) {
      if (key !== 'constructor' && !key.startsWith('__') && typeof Object.getOwnPropertyDescriptor(o, key)?.value === 'function') names.add(key);
    }
  }
  const tag = (target as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag];
  const what = typeof tag === 'string' ? tag.replace(/^Alleged: /, '') : 'the target';
  return `${what} has no method ${JSON.stringify(method)}; its methods: ${[...names].sort().join(', ') || 'none'}`;
}
