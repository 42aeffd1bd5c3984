// Distributed garbage collection, kernel side (issue #11; Agoric's design in
// SwingSet's garbage-collection.md, done differently: a mark-and-sweep over the
// kernel tables instead of reference counts, incremental since issue #10:
// gc-sweep.ts).
//
// - Vats report imports they no longer reach or recognise (dropImports,
//   retireImports) from their bring-out-your-dead deliveries. A retired
//   import's c-list entry is deleted at once, and adds to the debt that
//   starts a sweep cycle. A dropped import a vat still recognises (a weak
//   key) keeps its c-list entry, and so keeps the object at its exporter: the
//   kernel does not yet tell an exporter "dropped but recognised" apart
//   (Agoric does, and lets the exporter retire it when its heap lets go);
//   keeping it is the safe side: the importer's weak entry is found again
//   whenever the object comes back.
// - A sweep cycle (gc-sweep.ts: a run-queue item of the kernel's own, cut in
//   slices of bounded work, one crank each) marks every kref still named by a
//   root (an importer's c-list entry, a c-list entry of any vat for a promise,
//   a queued item, a message parked on a promise, a reference the host was
//   given and has not released (host.release; a promise the host was given is
//   kept only until the host has its settlement), and the resolution data of
//   a marked promise), under a write barrier for references that move while
//   it runs. Each unmarked kernel object is dropped: the sweep queues, in each
//   exporter's lane, dropExports items of at most DROPS_PER_DELIVERY exports
//   (reachable and recognisable counts are both zero, so one stands for
//   dropExports + retireExports). Each item is a crank of its own: a vat
//   that fails it (meter, bug, hostile guest) rolls back only its own
//   delivery, and the kernel then forgets the objects anyway (the vat merely
//   keeps what it was told it may free), so no vat's failure blocks anyone
//   else's GC, and a failed GC delivery is not counted as a meter fault
//   towards suspension. Until its item runs an object is "dropping"
//   (k.gc.dropping.<ko>): later sweeps skip it, and if the exporter names it
//   again in a syscall meanwhile (namedAgain) it is kept after all. Each
//   unmarked resolved promise's row is deleted. A vat's root object and
//   device objects (owned by the host) are never swept.
// - Vats get a bring-out-your-dead delivery every `gcEvery` deliveries and
//   before each snapshot: points the kernel chooses from its inputs alone, so
//   every replica collects at the same points and ends in the same state.
//   Each is a crank of its own in the vat's lane; a due snapshot waits for
//   it (the GC point's crank takes it), so a GC point that fails never fails
//   an ordinary delivery.
import type { Store } from '../store/index.js';
import type { KernelState, RunItem } from './kernel-state.js';
import { assertVref, isKpid, SyscallError, type Kref, type VatId, type Vref } from './refs.js';
import { itemKrefs } from './gc-cycle.js';
import { IncrementalSweep, RELEASE_WEIGHT, type SweepStats } from './gc-sweep.js';

/** What the GC needs from the kernel: its tables and a way to queue its own work. */
export interface GCHost {
  readonly store: Store;
  readonly state: KernelState;
  enqueueKernelItem(item: RunItem): void;
  enqueueVatItem(vat: VatId, item: RunItem): void;
  /** Most units of sweep work one crank does (KernelOptions.gcWorkPerCrank). */
  readonly workPerCrank: number;
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

const DROPPING = 'k.gc.dropping.';
const HOST_REF = 'k.gc.hostref.';
const SINCE = (vat: VatId) => `k.gc.since.${vat}`;
const BOYD_QUEUED = (vat: VatId) => `k.gc.boydQueued.${vat}`;

export class KernelGC {
  /** The sweep cycles (gc-sweep.ts). */
  private readonly sweep: IncrementalSweep;

  constructor(
    private readonly k: GCHost,
    /** Deliveries to a vat between its GC points; 0 turns periodic GC points off. */
    readonly gcEvery: number,
  ) {
    this.sweep = new IncrementalSweep({
      store: k.store,
      state: k.state,
      workPerCrank: k.workPerCrank,
      enqueueKernelItem: (item) => k.enqueueKernelItem(item),
      capable: (vat) => this.capable(vat),
      dropping: (ko) => k.store.has(DROPPING + ko),
      scheduleDrops: (drops) => this.scheduleDrops(drops),
      deleteObject: (ko) => this.deleteObject(ko),
    });
  }

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

  /** syscall.retireImports: the vat forgets these imports; a sweep will see whether anyone else holds them (the vat is billed for it). */
  retireImports(vat: VatId, list: unknown): void {
    const retired = this.importsOf(vat, list, 'retireImports');
    for (const [vref, kref] of retired) this.k.state.removeClist(vat, vref, kref);
    this.sweep.addDebt(retired.length * RELEASE_WEIGHT, vat);
  }

  /** A kernel promise was resolved: its row may soon be named by nobody (gc-sweep.ts, "when cycles run"). */
  promiseResolved(count = 1): void {
    this.sweep.addDebt(count);
  }


  /** Root rows naming `krefs` are being written (the sweep's write barrier). */
  named(krefs: readonly (Kref | null | undefined)[]): void {
    this.sweep.named(krefs);
  }

  /** An item is being queued: while a cycle marks, what it names is marked (its krefs listed only then). */
  itemQueued(item: RunItem): void {
    if (this.sweep.marking()) this.sweep.named(itemKrefs(item));
  }

  /** One slice of the current sweep cycle (a `gc` item). */
  step(): void {
    this.sweep.step();
  }

  /** Units of sweep work since the last call, for the block meter (kernel.ts charges them to the block); reset by reading. */
  takeWork(): number {
    return this.sweep.takeWork();
  }

  /** The sweep's counters: cycles, phase, work per crank (the kernel's stats). */
  stats(): SweepStats {
    return this.sweep.stats();
  }

  // ------------------------------------------------------------ GC points

  /** Whether `vat` runs a runtime whose GC this kernel may drive (GC_PROTOCOL). */
  capable(vat: VatId): boolean {
    return (this.k.state.vatSettings(vat).gc ?? 0) >= GC_PROTOCOL;
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
    if (item.type === 'gc') this.sweep.failed();
    if (item.type === 'bringOutYourDead') this.boydStarted(item.vat);
    if (item.type === 'dropExports') this.finishDrop(item.vat, this.takeDrops(item));
  }

  /** Whether a failure of `item` is the vat's own meter fault (GC deliveries are the kernel's idea, not the vat's). */
  static chargesVat(item: RunItem): boolean {
    return item.type !== 'dropExports' && item.type !== 'bringOutYourDead';
  }

  /** The exporter (translate.ts) or the host (host-inputs.ts) named `ko` again: a pending drop of it is cancelled. */
  namedAgain(ko: Kref): void {
    if (!this.k.store.has(DROPPING + ko)) return;
    this.k.store.delete(DROPPING + ko);
    this.sweep.dropCancelled();
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
    this.k.state.namedInData(slots);
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
      // A settled promise's row counted once when it settled; the host
      // letting go may be what leaves it unnamed, after a cycle took that
      // debt (break-rr #2), so it counts again.
      debt += isKpid(kref) ? 1 : RELEASE_WEIGHT;
    }
    if (debt > 0) this.sweep.addDebt(debt);
    return n;
  }

  // ------------------------------------------------------------ drops

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
