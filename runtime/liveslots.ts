// Liveslots: the vat side of the kernel protocol. It names the vat's objects
// and promises with vrefs, turns values into capdata (smallcaps) and back,
// answers deliveries and notifications, and turns eventual sends into syscalls.
//
// vrefs: o+N an object this vat exports, o-N an object it imports;
//        p+N a promise this vat allocated, p-N one the kernel told it about.
import { makeMarshal } from '@endo/marshal';
import { Remotable, passStyleOf } from '@endo/pass-style';
import { answerBody, fromCapDataFast, toCapDataFast } from './smallcaps-fast.js';
import type { Capdata, Resolution, Syscall } from './syscall.js';
import { makeImportTracker } from './import-tracker.js';
import { makeSlotRefs } from './slot-refs.js';
import { makeIdCounter } from './id-counter.js';
import { noSuchMethod } from './no-such-method.js';

/** Virtual and durable objects, which live outside the heap (vat-data.ts). */
export interface VirtualHooks {
  vrefOf(value: unknown): string | undefined;
  isVirtualVref(vref: string): boolean;
  reanimate(vref: string): object;
  /** A virtual or durable object crossed to the kernel: it is exported until the kernel drops it. */
  exported(vref: string): void;
  /** The kernel dropped an exported virtual or durable object. */
  unexported(vref: string): void;
  /** Deletes virtual and durable objects nothing refers to any more (a GC point). */
  collect(): { deleted: number; more: boolean };
  /** True while a weak collection (a weak store or the heap WeakMap/WeakSet) has `vref` as a key. */
  recognizes(vref: string): boolean;
  /** The object `vref` named is gone: weak collection entries keyed by it go too. */
  forgetKey(vref: string): void;
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
  /**
   * Delivers a message. Returns false when the target is an object without
   * that method (the result is rejected as usual): the kernel then does not
   * count the name among the methods clients use (break-10c #3).
   */
  deliver(target: string, method: string, args: Capdata, result: string | null): boolean;
  notify(resolutions: Resolution[]): void;
  serialize(value: unknown): Capdata;
  /** serialize, for capdata that goes to the kernel (its references become known there). */
  toKernel(value: unknown): Capdata;
  unserialize(data: Capdata): unknown;
  /**
   * Called when an incarnation starts: continues the vat's promise and object
   * ID counters from the vatstore, so no ID the kernel still maps is reused
   * (issue #11: an upgraded vat's first send used to collide with a pending p+1).
   * `imports` are the imports the kernel's c-list still holds for the vat
   * (after an upgrade: those of earlier incarnations); the next GC point
   * releases those this incarnation does not reach again.
   */
  startIncarnation(imports?: readonly string[]): void;
  /**
   * Stored data (virtual or durable) now names `vref` once more (delta 1) or
   * once less (delta -1): a promise stays readable by its vpid after it
   * settles, an import stays imported and an ordinary export stays exported
   * while any stored data names it (slot-refs.ts).
   */
  refSlot(vref: string, delta: 1 | -1, durable: boolean): void;
  /** A weak key naming `vref` was removed: the next GC point checks whether the import is still recognised. */
  slotReleased(vref: string): void;
  /** The vpid of a promise, known to the kernel afterwards: a new local one is subscribed to, so an upgrade's disconnection reaches the next incarnation. */
  exportPromise(p: Promise<unknown>): string;
  /**
   * A GC point (Agoric's bring-out-your-dead): imports the program no longer
   * holds are reported to the kernel (dropImports, retireImports), then
   * unreachable virtual and durable objects are deleted. The kernel chooses
   * when; the engine's collection is deterministic, so every replica drops
   * the same references at the same point.
   */
  bringOutYourDead(): { droppedImports: number; deletedVirtual: number; more: boolean };
  /** The kernel says nobody imports these exports any more (dropExports + retireExports). */
  dropExports(vrefs: string[]): void;
  stats(): { exports: number; imports: number; promises: number };
}

type PromiseRecord = { resolve: (v: unknown) => void; reject: (e: unknown) => void };

/** One settled promise whose then() queues a reaction job (cheaper than a new promise per delivery). */
const SETTLED = Promise.resolve();
/** The arguments of a call with none ("#[]"), shared: a direct call spreads them, so nothing can tell. */
const NO_ARGS = Object.freeze([]) as unknown as unknown[];

export function makeLiveSlots(syscall: Syscall): LiveSlots {
  const valToSlot = new WeakMap<object, string>();
  // Exports and promises are held strongly; imports (o-N) weakly, so the
  // program's dropping a presence can be noticed at a GC point.
  const slotToVal = new Map<string, any>();
  // What stored data names, and the imports' reachability (GC points).
  const slotRefs = makeSlotRefs(syscall);
  const imports = makeImportTracker(syscall, slotRefs);
  // Ordinary exports (o+N) the kernel holds (sent and not yet dropped): one
  // is forgotten once neither the kernel nor stored data names it.
  const kernelExports = new Set<string>();
  // An ordinary export only weak stores name as a key is held weakly
  // (break-11b #9): it keeps its vref while the program holds it, so its
  // entries are found again, and once it is gone a GC point deletes them.
  const weakOnly = new Map<string, WeakRef<object>>();
  const forgetExport = (vref: string) => {
    const val = slotToVal.get(vref);
    slotToVal.delete(vref);
    if (val === undefined) return;
    if (virtual?.recognizes(vref)) weakOnly.set(vref, new WeakRef(val));
    else valToSlot.delete(val);
  };
  /** An ordinary export is named strongly again (sent, or stored): held strongly again. */
  const strengthen = (vref: string) => {
    const val = weakOnly.get(vref)?.deref();
    if (val === undefined) return;
    weakOnly.delete(vref);
    slotToVal.set(vref, val);
  };
  /** A GC point: weak-store entries keyed by ordinary objects the program let go are deleted (at most `limit`). */
  const collectWeakOnly = (limit: number) => {
    let n = 0;
    for (const [vref, ref] of weakOnly) {
      if (n >= limit) break;
      if (ref.deref() !== undefined) continue;
      weakOnly.delete(vref);
      virtual?.forgetKey(vref);
      n++;
    }
  };
  // Imported promises we still wait on: vpid -> resolvers.
  const importedPromises = new Map<string, PromiseRecord>();
  let virtual: VirtualHooks | null = null;
  // vpids the kernel knows (they crossed a syscall); only those are resolved
  // through the kernel. A promise only ever stored in virtual data is not.
  const kernelKnows = new Set<string>();
  // Settled vpids virtual data still names: their value stays in slotToVal
  // until the last stored reference goes.
  const settledButStored = new Set<string>();
  // The promise E() hands the program for a send is eventual-send's own
  // (returnedP), forwarded to ours; it names the same vpid, so passing it on
  // passes the kernel promise itself, not a new one this vat would decide.
  const aliases = new Map<string, object>();

  const promiseIds = makeIdCounter(syscall, 'ls.nextPromise');
  const exportIds = makeIdCounter(syscall, 'ls.nextExport');

  const allocatePromiseId = () => `p+${promiseIds.allocate()}`;

  const register = (slot: string, val: any) => {
    valToSlot.set(val, slot);
    slotToVal.set(slot, val);
  };
  // A settled promise's vpid is dead on both sides; passing the promise again
  // later allocates a fresh one.
  const retire = (vpid: string) => {
    const val = slotToVal.get(vpid);
    if (val !== undefined) valToSlot.delete(val);
    const alias = aliases.get(vpid);
    if (alias !== undefined) {
      valToSlot.delete(alias);
      aliases.delete(vpid);
    }
    kernelKnows.delete(vpid);
    if (slotRefs.held(vpid)) settledButStored.add(vpid);
    else slotToVal.delete(vpid);
  };
  const knownRemotable = (v: object) => valToSlot.get(v) ?? virtual?.vrefOf(v);
  // Capdata for the kernel: every promise in it becomes known to the kernel.
  const toKernel = (value: unknown): Capdata => {
    // Scalars and arrays of them (most arguments and answers) skip marshal,
    // whose pass-style checks cost ~60 us per value inside QuickJS.
    // An array of scalars is hardened by freezing it (its prototype is
    // hardened by lockdown), and a scalar needs nothing: harden itself costs
    // 6-17 us inside QuickJS.
    // Records and arrays of them and of remotables the vat already named
    // (a contract's kit, most answers that carry references) skip it too.
    const data = toCapDataFast(value, (v) => m.toCapData(harden(v) as any), knownRemotable);
    for (const slot of data.slots) {
      if (slot[0] === 'p') kernelKnows.add(slot);
      else if (virtual?.isVirtualVref(slot)) virtual.exported(slot);
      else if (slot.startsWith('o+') && slot !== 'o+0') {
        kernelExports.add(slot);
        strengthen(slot);
      }
    }
    return data;
  };

  // When this vat exports a promise, it is the decider: report the
  // settlement (and settle `awaited`, this vat's own promise for the vpid).
  const followLocalPromise = (vpid: string, p: Promise<unknown>, awaited?: PromiseRecord) => {
    p.then(
      (value) => (resolveOut(vpid, false, value), awaited?.resolve(value)),
      (reason) => (resolveOut(vpid, true, reason), awaited?.reject(reason)),
    );
  };

  const resolveOut = (vpid: string, rejected: boolean, value: unknown) => {
    if (!kernelKnows.has(vpid)) {
      // Never exported: nobody outside the vat waits on it.
      retire(vpid);
      return;
    }
    let data: Capdata;
    try {
      data = toKernel(value);
    } catch (err) {
      rejected = true;
      data = toKernel(Error(`result for ${vpid} could not be serialized: ${(err as Error).message}`));
    }
    retire(vpid);
    syscall.resolve([[vpid, rejected, data]]);
  };

  const convertValToSlot = (val: any): string => {
    const known = valToSlot.get(val) ?? virtual?.vrefOf(val);
    if (known !== undefined) return known;
    const style = passStyleOf(val);
    if (style === 'remotable') {
      const slot = `o+${exportIds.allocate()}`;
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

  const queueMessage = (targetSlot: string, method: string, args: unknown[], returnedP?: unknown) => {
    const resultVpid = allocatePromiseId();
    if (typeof returnedP === 'object' && returnedP !== null && !valToSlot.has(returnedP)) {
      valToSlot.set(returnedP, resultVpid);
      aliases.set(resultVpid, returnedP);
    }
    // The kernel subscribes a sender to its own result; no separate subscribe.
    const p = makeImportedPromise(resultVpid, false);
    kernelKnows.add(resultVpid);
    syscall.send(targetSlot, method, toKernel(args), resultVpid);
    return p;
  };

  const makeImportedPresence = (slot: string) => {
    const handler = {
      applyMethod(_o: unknown, method: unknown, args: unknown[], returnedP?: unknown) {
        if (typeof method !== 'string') throw Error(`method name must be a string, got ${typeof method}`);
        return queueMessage(slot, method, args, returnedP);
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
      applyMethod(_o: unknown, method: unknown, args: unknown[], returnedP?: unknown) {
        if (typeof method !== 'string') throw Error(`method name must be a string, got ${typeof method}`);
        return queueMessage(vpid, method, args, returnedP);
      },
    };
    const p = new HandledPromise((resolve: any, reject: any) => {
      record = { resolve, reject };
    }, handler);
    // Silence unhandled-rejection noise; the kernel reports failures to senders.
    p.catch(() => {});
    importedPromises.set(vpid, record);
    register(vpid, p);
    kernelKnows.add(vpid);
    if (subscribe) syscall.subscribe(vpid);
    return p;
  };

  const convertSlotToVal = (slot: string): any => {
    const known = slotToVal.get(slot) ?? weakOnly.get(slot)?.deref();
    if (known !== undefined) return known;
    if (virtual?.isVirtualVref(slot)) return virtual.reanimate(slot);
    if (/^o-\d+$/.test(slot)) {
      const held = imports.presence(slot);
      if (held !== undefined) return held;
      const presence = makeImportedPresence(slot);
      valToSlot.set(presence, slot);
      imports.remember(slot, presence);
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
      // A presence as the root would make o+0 an alias of another vat's
      // object (Agoric's liveslots refuses it as well).
      const known = valToSlot.get(root as object);
      if (known !== undefined && !known.startsWith('o+')) {
        throw Error(`buildRootObject must return an ephemeral Far object of this vat, not a presence (${known}) of an object another vat exports`);
      }
      // The root is o+0 in every incarnation: a virtual or durable object
      // already has a vref of its own, and after an upgrade o+0 would name a
      // different record (issue #11; Agoric's liveslots requires the same).
      const vref = virtual?.vrefOf(root);
      if (vref !== undefined) {
        const which = vref.startsWith('o+d') ? 'durable' : 'virtual';
        throw Error(`buildRootObject must return an ephemeral Far object, not a ${which} object (${vref})`);
      }
      register('o+0', root);
    },
    startIncarnation(priorImports: readonly string[] = []) {
      promiseIds.start();
      exportIds.start();
      imports.seen(priorImports);
    },
    refSlot(vref: string, delta: 1 | -1, durable: boolean) {
      slotRefs.adjust(vref, delta, durable);
      if (delta > 0) strengthen(vref);
      if (delta > 0 || slotRefs.held(vref)) return;
      if (vref[0] === 'p' && settledButStored.delete(vref)) slotToVal.delete(vref);
      else if (vref.startsWith('o+') && vref !== 'o+0' && !kernelExports.has(vref)) forgetExport(vref);
    },
    slotReleased(vref: string) {
      imports.consider(vref);
      // An ordinary export now named only as a weak key: held weakly.
      if (vref.startsWith('o+') && vref !== 'o+0' && !virtual?.isVirtualVref(vref) && !kernelExports.has(vref) && !slotRefs.held(vref)) forgetExport(vref);
    },
    bringOutYourDead() {
      // Virtual objects first: deleting one may release the imports its state named.
      const { deleted: deletedVirtual, more } = virtual ? virtual.collect() : { deleted: 0, more: false };
      const droppedImports = imports.collect((vref) => virtual?.recognizes(vref) ?? false);
      collectWeakOnly(1000);
      // `more`: the bounded GC point left work; the kernel gives another one soon.
      return { droppedImports, deletedVirtual, more: more || imports.pending() };
    },
    dropExports(vrefs: string[]) {
      for (const vref of vrefs) {
        if (vref === 'o+0') continue;
        if (virtual?.isVirtualVref(vref)) {
          virtual.unexported(vref);
          continue;
        }
        kernelExports.delete(vref);
        // Virtual data naming it keeps it (Agoric's remotable refcount).
        if (!slotRefs.held(vref)) forgetExport(vref);
      }
    },
    exportPromise(p: Promise<unknown>) {
      const vpid = convertValToSlot(p);
      if (!kernelKnows.has(vpid)) {
        kernelKnows.add(vpid);
        syscall.subscribe(vpid);
      }
      return vpid;
    },
    deliver(target, method, args, result) {
      imports.seen(args.slots);
      // A message this vat sent came back to it (sent to a promise that
      // resolved to one of its own objects): it decides the result it awaits,
      // and the kernel does not notify a vat of its own resolutions.
      const awaited = result !== null ? importedPromises.get(result) : undefined;
      if (awaited) importedPromises.delete(result!);
      let res: Promise<unknown>;
      let found = true;
      try {
        const t = slotToVal.get(target) ?? (virtual?.isVirtualVref(target) ? virtual.reanimate(target) : undefined);
        if (t === undefined) throw Error(`no object ${target} in this vat (it may have been dropped by an upgrade)`);
        const decoded = args.slots.length === 0 && args.body === '#[]' ? NO_ARGS : fromCapDataFast(args, (d) => m.fromCapData(d));
        if (!Array.isArray(decoded)) throw Error('message arguments must be an array');
        const fn = typeof t === 'object' && t !== null ? (t as Record<string, unknown>)[method] : undefined;
        if (typeof t === 'object' && t !== null && fn === undefined) {
          found = false;
          throw TypeError(noSuchMethod(t, method));
        }
        // An object's own method is called now rather than a turn later
        // through eventual-send (~140 us inside QuickJS): the delivery starts
        // on an empty job queue, so the syscalls come in the same order (the
        // method sees a shallower stack, nothing else differs). Promises and
        // thenables keep eventual-send's queueing.
        if (typeof fn === 'function' && typeof (t as { then?: unknown }).then !== 'function') {
          let value: unknown;
          try {
            value = Reflect.apply(fn, t, decoded);
          } catch (err) {
            value = Promise.reject(err);
          }
          if (value === null || (typeof value !== 'object' && typeof value !== 'function')) {
            // A scalar answer settles the result a turn later, as a promise
            // for it would (its reaction queued at this same point), without
            // making and registering that promise: nothing can name the
            // result vpid before then.
            if (result !== null) {
              // Most answers: undefined, a string, number, boolean or null,
              // for a result nothing in the vat awaits. Its capdata is known now,
              // and nothing can have registered the vpid, so the reaction
              // sends one prebuilt request (issue #10: ~40% of a trivial
              // delivery's guest work was the general path).
              const body = awaited ? undefined : answerBody(value);
              if (body !== undefined) {
                void SETTLED.then(() => syscall.resolveScalar(result, body));
                return true;
              }
              kernelKnows.add(result);
              void SETTLED.then(() => {
                resolveOut(result, false, value);
                awaited?.resolve(value);
              });
            }
            return true;
          }
          // A fresh promise that follows the answer, as eventual-send's was:
          // Promise.resolve would hand back an answered promise itself, and
          // registering it as the result would rename that promise.
          res = new Promise((resolve) => resolve(value));
        } else {
          res = HandledPromise.applyMethod(t, method, decoded === NO_ARGS ? harden([]) : decoded);
        }
      } catch (err) {
        res = Promise.reject(err);
      }
      if (result !== null) {
        kernelKnows.add(result);
        // Hardened: the vat may be handed this very promise in a message
        // (break-rr #3). An awaiting promise stays the one the vpid names.
        if (!awaited) register(result, harden(res));
        followLocalPromise(result, res, awaited);
      } else {
        res.catch(() => {});
      }
      return found;
    },
    notify(resolutions) {
      for (const [, , data] of resolutions) imports.seen(data.slots);
      // The kernel sends the settlement of every settled promise the data
      // names in the same notify (Agoric's rule), so promises that name each
      // other settle together: make each one first (no subscription: it is
      // settled), decode every value, then retire and settle them all.
      for (const [vpid] of resolutions) if (!importedPromises.has(vpid) && !slotToVal.has(vpid)) makeImportedPromise(vpid, false);
      const decoded = resolutions.map(([vpid, rejected, data]) => {
        try {
          return { vpid, rejected, value: fromCapDataFast(data, (d) => m.fromCapData(d)) };
        } catch (err) {
          return { vpid, rejected: true, value: err as unknown };
        }
      });
      for (const { vpid, rejected, value } of decoded) {
        const record = importedPromises.get(vpid);
        if (!record) continue;
        importedPromises.delete(vpid);
        retire(vpid);
        if (rejected) record.reject(value);
        else record.resolve(value);
      }
    },
    serialize: (value: unknown) => m.toCapData(harden(value) as any),
    toKernel,
    unserialize: (data: Capdata) => m.fromCapData(data),
    stats: () => ({ exports: exportIds.value, imports: slotToVal.size, promises: importedPromises.size }),
  } satisfies LiveSlots);
}
