// Distributed garbage collection, kernel side (issue #11; Agoric's design in
// SwingSet's garbage-collection.md, done differently: a mark-and-sweep over the
// kernel tables at GC points instead of incremental refcounts).
//
// - Vats report imports they no longer reach or recognise (dropImports,
//   retireImports) from their bring-out-your-dead deliveries. A retired
//   import's c-list entry is deleted at once, and a sweep is queued. A
//   dropped import a vat still recognises (a weak key) keeps its c-list
//   entry, and so keeps the object at its exporter: the kernel does not yet
//   tell an exporter "dropped but recognised" apart (Agoric does, and lets
//   the exporter retire it when its heap lets go); keeping it is the safe
//   side: the importer's weak entry is found again whenever the object
//   comes back.
// - A sweep (a run-queue item of the kernel's own, so a crank of its own)
//   marks every kref still named by: an importer's c-list entry, a c-list
//   entry of any vat for a promise, a queued item (target, arguments,
//   result), a message queued on an unresolved promise, the resolution data
//   of a marked promise, a vat's root object, a reference the host was given
//   and has not released (host.release; a promise the host was given is
//   kept only until the host has its settlement).
//   Each unmarked kernel object is dropped: the sweep queues, in each
//   exporter's lane, dropExports items of at most DROPS_PER_DELIVERY exports
//   (reachable and recognisable counts are both zero, so one stands for
//   dropExports + retireExports). Each item is a crank of its own: a vat
//   that fails it (meter, bug, hostile guest) rolls back only its own
//   delivery, and the kernel then forgets the objects anyway (the vat merely
//   keeps what it was told it may free), so no vat's failure blocks anyone
//   else's GC, and a failed GC delivery is not counted as a meter fault
//   towards suspension. Until its item runs an object is "dropping"
//   (k.gc.dropping.<ko>): later sweeps skip it, and if the exporter names it
//   again in a syscall meanwhile (exportNamed) it is kept after all. Each
//   unmarked resolved promise's row is deleted at once. Device objects
//   (owned by the host) are never swept.
// - Vats get a bring-out-your-dead delivery every `gcEvery` deliveries and
//   before each snapshot: points the kernel chooses from its inputs alone, so
//   every replica collects at the same points and ends in the same state.
//   Each is a crank of its own in the vat's lane; a due snapshot waits for
//   it (the GC point's crank takes it), so a GC point that fails never fails
//   an ordinary delivery.
import type { Store } from '../store/index.js';
import { HOST_VAT, type KernelPromise, type KernelState, type ParkedMessage, type RunItem, type VatRecord } from './kernel-state.js';
import { assertVref, isKpid, SyscallError, type Kref, type VatId, type Vref } from './refs.js';

/** What the GC needs from the kernel: its tables and a way to queue its own work. */
export interface GCHost {
  readonly store: Store;
  readonly state: KernelState;
  enqueueKernelItem(item: RunItem): void;
  enqueueVatItem(vat: VatId, item: RunItem): void;
}

/**
 * The GC protocol of this build's runtime, recorded in the records of the vats
 * it starts (created, forked from a zygote it started, or upgraded). Vats
 * whose runtime predates it get no bring-out-your-dead and no dropExports:
 * their liveslots forgot ordinary objects virtual data still named (issue
 * #11's hostile review), and a vat keeps its runtime until it is upgraded.
 */
export const GC_PROTOCOL = 2;

/** Most exports one dropExports delivery names (Agoric bounds GC actions per crank too); the rest go in later items. */
export const DROPS_PER_DELIVERY = 500;

/** Debt (see addDebt) one retired import or host release adds: enough to sweep at once in a small kernel. */
const RELEASE_WEIGHT = 256;
/** The least debt that queues a sweep: resolved promises wait for this many in a small kernel. */
const MIN_DEBT = 64;

const SWEEP_QUEUED = 'k.gc.sweepQueued';
const DEBT = 'k.gc.debt';
const LAST_SIZE = 'k.gc.lastSweepRows';
const DROPPING = 'k.gc.dropping.';
const HOST_REF = 'k.gc.hostref.';
const SINCE = (vat: VatId) => `k.gc.since.${vat}`;
const BOYD_QUEUED = (vat: VatId) => `k.gc.boydQueued.${vat}`;

export class KernelGC {
  constructor(
    private readonly k: GCHost,
    /** Deliveries to a vat between its GC points; 0 turns periodic GC points off. */
    readonly gcEvery: number,
  ) {}

  // ------------------------------------------------------------ syscalls

  /** Validates a dropImports/retireImports list: imports (o-N) the vat holds. */
  private importsOf(vat: VatId, list: unknown, what: string): [Vref, Kref][] {
    if (!Array.isArray(list) || list.length === 0 || list.length > 10_000) throw new SyscallError(`${what} needs a list of 1 to 10000 imports`);
    return list.map((v, i) => {
      const vref = assertVref(v, `${what}[${i}]`);
      const kref = this.k.state.krefFor(vat, vref);
      if (!vref.startsWith('o-') || kref === undefined) throw new SyscallError(`${what}[${i}] ${vref} is not an import the vat holds`);
      return [vref, kref];
    });
  }

  /** syscall.dropImports: checked; the retire that follows does the work. */
  dropImports(vat: VatId, list: unknown): void {
    this.importsOf(vat, list, 'dropImports');
  }

  /** syscall.retireImports: the vat forgets these imports; a sweep will see whether anyone else holds them. */
  retireImports(vat: VatId, list: unknown): void {
    const retired = this.importsOf(vat, list, 'retireImports');
    for (const [vref, kref] of retired) this.k.state.removeClist(vat, vref, kref);
    this.addDebt(retired.length * RELEASE_WEIGHT);
  }

  /** A kernel promise was resolved: its row may soon be named by nobody (gc.ts, "When sweeps run"). */
  promiseResolved(): void {
    this.addDebt(1);
  }

  // When sweeps run: each event that may leave garbage adds to a debt (a
  // resolved promise 1, a retired import or a host release RELEASE_WEIGHT),
  // and a sweep is queued once the debt reaches half the rows the last sweep
  // left (at least MIN_DEBT). A sweep reading R rows thus follows
  // roughly R/2 units of debt: about two row reads per resolved promise
  // whatever the kernel's size (an eighth made sweeps 13% of a trivial
  // delivery's time in block mode, issue #10), while garbage (resolved
  // promise rows included) stays a bounded fraction of the tables. In a
  // small kernel (up to 2 * RELEASE_WEIGHT rows) one retire sweeps at once;
  // in a big one R/512 retires do, as with an eighth and a weight of 64.
  private addDebt(units: number): void {
    const debt = ((this.k.store.get(DEBT) as number | undefined) ?? 0) + units;
    const lastSize = (this.k.store.get(LAST_SIZE) as number | undefined) ?? 0;
    if (debt < Math.max(MIN_DEBT, Math.floor(lastSize / 2)) || this.k.store.get(SWEEP_QUEUED)) {
      this.k.store.set(DEBT, debt);
      return;
    }
    this.k.store.delete(DEBT);
    this.k.store.set(SWEEP_QUEUED, true);
    this.k.enqueueKernelItem({ type: 'gc' });
  }

  /** Rows the last sweep read, for the block meter (kernel.ts charges them to the block, not to a vat); reset by reading. */
  takeWork(): number {
    const n = this.work;
    this.work = 0;
    return n;
  }
  private work = 0;

  // ------------------------------------------------------------ GC points

  /** Whether `vat` runs a runtime whose GC this kernel may drive (GC_PROTOCOL). */
  capable(vat: VatId): boolean {
    return ((this.k.state.vat(vat) as VatRecord).gc ?? 0) >= GC_PROTOCOL;
  }

  /** Whether `vat` gets GC points: GC is on and its runtime is capable. */
  collects(vat: VatId): boolean {
    return this.gcEvery > 0 && this.capable(vat);
  }

  /**
   * Counts a delivery to `vat`; every `gcEvery` deliveries queues a
   * bring-out-your-dead delivery in the vat's lane (one at a time).
   */
  afterDelivery(vat: VatId): void {
    if (!this.collects(vat)) return;
    const n = ((this.k.store.get(SINCE(vat)) as number | undefined) ?? 0) + 1;
    if (n < this.gcEvery || this.k.store.get(BOYD_QUEUED(vat))) {
      this.k.store.set(SINCE(vat), n);
      return;
    }
    this.queueGCPoint(vat);
  }

  /** Queues a bring-out-your-dead delivery in `vat`'s lane, unless one waits there already. */
  queueGCPoint(vat: VatId): void {
    this.k.store.set(SINCE(vat), 0);
    if (this.k.store.get(BOYD_QUEUED(vat))) return;
    this.k.store.set(BOYD_QUEUED(vat), true);
    this.k.enqueueVatItem(vat, { type: 'bringOutYourDead', vat });
  }

  /** A bring-out-your-dead delivery is being made to `vat` now. */
  boydStarted(vat: VatId): void {
    this.k.store.delete(BOYD_QUEUED(vat));
    this.k.store.set(SINCE(vat), 0);
  }

  /**
   * A GC item failed and was rolled back: let the next one be queued. A
   * failed dropExports still ends with the kernel forgetting the objects.
   */
  itemFailed(item: RunItem): void {
    if (item.type === 'gc') this.k.store.delete(SWEEP_QUEUED);
    if (item.type === 'bringOutYourDead') this.boydStarted(item.vat);
    if (item.type === 'dropExports') this.finishDrop(item.vat, this.takeDrops(item));
  }

  /** Whether a failure of `item` is the vat's own meter fault (GC deliveries are the kernel's idea, not the vat's). */
  static chargesVat(item: RunItem): boolean {
    return item.type !== 'dropExports' && item.type !== 'bringOutYourDead';
  }

  /** The exporter named `ko` again (translate.ts): a pending drop of it is cancelled. */
  exportNamed(ko: Kref): void {
    if (this.k.store.has(DROPPING + ko)) this.k.store.delete(DROPPING + ko);
  }

  /** Queues dropExports items for what a sweep found, in each exporter's lane. */
  scheduleDrops(drops: Map<VatId, [Vref, Kref][]>): void {
    for (const [vat, list] of drops) {
      for (let i = 0; i < list.length; i += DROPS_PER_DELIVERY) {
        const chunk = list.slice(i, i + DROPS_PER_DELIVERY);
        for (const [, ko] of chunk) this.k.store.set(DROPPING + ko, true);
        this.k.enqueueVatItem(vat, { type: 'dropExports', vat, drops: chunk });
      }
    }
  }

  /** The drops of `item` still to be made (not named again since), no longer pending. */
  takeDrops(item: RunItem & { type: 'dropExports' }): [Vref, Kref][] {
    const live: [Vref, Kref][] = [];
    for (const [vref, ko] of item.drops) {
      if (!this.k.store.has(DROPPING + ko)) continue;
      this.k.store.delete(DROPPING + ko);
      if (this.k.state.vrefFor(item.vat, ko) === vref) live.push([vref, ko]);
    }
    return live;
  }

  /** The host was handed these references: they are not swept until it releases them. */
  pinForHost(slots: readonly Kref[]): void {
    for (const kref of slots) if (!this.k.store.has(HOST_REF + kref)) this.k.store.set(HOST_REF + kref, true);
  }

  /** Whether `kref` is pinned for the host. */
  pinnedForHost(kref: Kref): boolean {
    return this.k.store.has(HOST_REF + kref);
  }

  /** The host releases these references (host.release): the next sweep drops those nothing else holds. Returns how many were pinned. */
  unpinForHost(krefs: readonly Kref[]): number {
    let n = 0;
    let debt = 0;
    for (const kref of krefs) {
      if (!this.k.store.has(HOST_REF + kref)) continue;
      this.k.store.delete(HOST_REF + kref);
      n++;
      // A promise's row was counted when it was resolved (promiseResolved).
      if (!isKpid(kref)) debt += RELEASE_WEIGHT;
    }
    if (debt > 0) this.addDebt(debt);
    return n;
  }

  // ------------------------------------------------------------ the sweep

  /**
   * Marks what is still referenced and returns, per exporting vat, the
   * exports nobody else holds (to be dropped by `finishDrop`); deletes
   * unreferenced resolved promises and ownerless objects at once.
   */
  sweep(): Map<VatId, [Vref, Kref][]> {
    const { store, state } = this.k;
    store.delete(SWEEP_QUEUED);
    const marked = new Set<Kref>();
    const promises = new Map<Kref, KernelPromise>();
    let rows = 0;
    for (const [key, p] of store.entries('k.kp.')) promises.set(key.slice('k.kp.'.length), p as KernelPromise);
    rows += promises.size;
    const work: Kref[] = [];
    const mark = (kref: Kref | null | undefined) => {
      if (kref && !marked.has(kref)) {
        marked.add(kref);
        work.push(kref);
      }
    };
    // c-lists: an object is held by its importers; a promise by anyone.
    for (const [key] of store.entries('k.c.')) {
      rows++;
      const m = /^k\.c\.([^.]+)\.k\.(.+)$/.exec(key);
      if (m && (isKpid(m[2]) || state.objectOwner(m[2]) !== m[1])) mark(m[2]);
    }
    for (const [, queued] of store.entries('k.rq.i.')) rows++, markItem((queued as { item: RunItem }).item, mark);
    for (const [kp, p] of promises) if (p.state === 'unresolved') mark(kp);
    // Messages parked on promises (queued or not yet released) hold what they name.
    for (const [, parked] of store.entries('k.pq.')) {
      rows++;
      const { msg } = parked as ParkedMessage;
      msg.args.slots.forEach(mark);
      mark(msg.result);
    }
    for (const vat of state.vatIds()) mark((state.vat(vat) as VatRecord).root);
    for (const [key] of store.entries(HOST_REF)) mark(key.slice(HOST_REF.length));
    // Resolution data of a held promise holds what it names.
    while (work.length > 0) {
      const kref = work.pop()!;
      const p = promises.get(kref);
      if (p && p.state !== 'unresolved') p.data.slots.forEach(mark);
    }
    // What stays after this sweep and its drops: the size later debts are measured against.
    let live = rows;
    for (const [kp, p] of promises) {
      if (p.state !== 'unresolved' && !marked.has(kp)) {
        store.delete(`k.kp.${kp}`);
        live--;
      }
    }
    const drops = new Map<VatId, [Vref, Kref][]>();
    for (const [key, owner] of store.entries('k.ko.')) {
      rows++;
      const ko = key.slice('k.ko.'.length);
      if (marked.has(ko) || owner === HOST_VAT || !this.capable(owner as VatId) || store.has(DROPPING + ko)) continue;
      const vref = state.vrefFor(owner as VatId, ko);
      if (vref === undefined || vref === 'o+0') {
        if (vref === undefined) this.deleteObject(ko);
        continue;
      }
      live -= 3; // its k.ko row and its exporter's c-list entry (two rows)
      const list = drops.get(owner as VatId) ?? [];
      list.push([vref, ko]);
      drops.set(owner as VatId, list);
    }
    store.set(LAST_SIZE, Math.max(0, live));
    this.work += rows;
    return drops;
  }

  /** After the exporter was told (dropExports): forget the objects. */
  finishDrop(vat: VatId, dropped: [Vref, Kref][]): void {
    for (const [vref, ko] of dropped) {
      this.k.state.removeClist(vat, vref, ko);
      this.k.state.forgetMethodsUsed(vat, vref);
      this.deleteObject(ko);
    }
  }

  private deleteObject(ko: Kref): void {
    this.k.store.delete(`k.ko.${ko}`);
    this.k.store.delete(`k.orphan.${ko}`);
  }
}

function markItem(item: RunItem, mark: (kref: Kref | null | undefined) => void): void {
  switch (item.type) {
    case 'send':
      mark(item.target);
      item.msg.args.slots.forEach(mark);
      mark(item.msg.result);
      return;
    case 'notify':
      mark(item.kpid);
      return;
    case 'upgrade':
      mark(item.result);
      return;
    case 'release':
      mark(item.kpid);
      return;
    default:
  }
}
