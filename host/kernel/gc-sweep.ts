// The kernel's GC sweep, incremental (issue #10; break-10c #1 and #5). A
// sweep used to be one crank that read every kernel row: about 4 µs a row,
// so a second or more of a held event loop in a big kernel, paid by no vat.
// Now a sweep is a *cycle* of `gc` run-queue items in the kernel's lane, each
// doing at most `workPerCrank` units of work (a unit: one row visited, or one
// reference marked; a scheduled drop counts DROP_WORK), with its cursor and its marks in the store, so it
// survives a restart and every replica cuts it into the same slices.
//
// A cycle's phases:
// - roots: marks every kref a root row names: an importer's c-list entry
//   (o-N), any vat's c-list entry for a promise, a queued item (target,
//   arguments, result), a message parked on a promise, a reference pinned for
//   the host. A marked resolved promise goes on the gray queue; taking it off
//   marks what its resolution data name. A vat's root object is
//   never dropped (its o+0 entry is skipped below), nor are device objects.
// - sweep: deletes each unmarked resolved promise and schedules a drop
//   (dropExports) for each unmarked kernel object, like the one-crank sweep.
//   Rows allocated after the cycle began are skipped ("allocated black": the
//   next cycle looks at them).
// - clear: deletes the marks. bill: charges the vats whose retires asked for
//   the cycle (below).
//
// THE WRITE BARRIER. Vats keep running between slices, moving references
// from rows not yet scanned into rows already scanned. So while a cycle
// marks (roots and sweep phases), every write of a root row marks the krefs
// it names (KernelState.addClist for imports and promises, parkMessage, a
// promise's resolution data, RunQueue.enqueue, host pins). Then when the
// sweep looks at a kref, every root row naming it either existed, unchanged,
// when the roots phase passed it (an ordered walk cannot skip a key that
// stays) or was written since (and marked it): an unmarked kref is named by
// no root row, and nothing can name it again but its exporter, whose naming
// cancels a pending drop (gc.ts, namedAgain) or, before the sweep reaches
// it, marks it through the row the naming writes. Marks are never removed
// while the cycle marks, so the decision is conservative.
//
// WHO PAYS. Every unit is charged to the block's compute budget
// (GC_UNITS_PER_WORK meter units), so the run policy cuts blocks by it. The
// debt that starts a cycle is recorded per vat (a retired import counts
// RELEASE_WEIGHT for the vat that retired it); when the cycle ends its whole
// work is billed to those vats' counters (VatStats.gcUnits) in proportion
// to their debt. Debt from resolved promises and host releases is the
// kernel's own: the block pays.
import type { Store } from '../store/index.js';
import { allocatedDuring, next, numberOf, pad, rootKrefs, ROOT_TABLES, SWEEP_TABLES, type Cycle, type Mutable } from './gc-cycle.js';
import { GRAY_PREFIX, GrayQueue } from './gc-gray-queue.js';
import { HOST_VAT, type KernelPromise, type KernelState, type RunItem } from './kernel-state.js';
import { isKpid, type Kref, type VatId, type Vref } from './refs.js';

/** Units of sweep work (a row visited or a reference marked; a scheduled drop counts DROP_WORK) one `gc` crank does at most by default (a few ms). */
export const GC_WORK_PER_CRANK = 1000;
/** Block meter units one unit of sweep work is charged (a row read is about a tenth of an upgrade clean-up's delete). */
export const GC_UNITS_PER_WORK = 1_000n;
/** Debt (see addDebt) one retired import or host release adds: enough to sweep at once in a small kernel. */
export const RELEASE_WEIGHT = 256;
/**
 * The least debt that starts a cycle: resolved promises wait for this many in
 * a small kernel (as many as one retired import weighs, so a retire still
 * sweeps at once there). A cycle walks the queued items too, so a cycle per
 * 64 promises cost a trivial delivery in blocks of 100 about 5.8 units of
 * sweep work; per 256, 1.9.
 */
export const MIN_DEBT = RELEASE_WEIGHT;

// Keys written by the one-crank sweep keep their meaning: a store written by
// that build opens and goes on collecting (its queued `gc` item starts a cycle).
const QUEUED = 'k.gc.sweepQueued';
const DEBT = 'k.gc.debt';
const LAST_SIZE = 'k.gc.lastSweepRows';
// New keys.
const CYCLE = 'k.gc.cycle';
const MARKING = 'k.gc.marking';
const MARK = 'k.gc.m.';
const GEN = 'k.gc.gen';
const BY = (gen: number) => `k.gc.by.${pad(gen)}.`;

const CLEAR_TABLES = [MARK, GRAY_PREFIX] as const;
/** Most sweep work a cycle bills a vat per unit of debt it added (a retired import, RELEASE_WEIGHT, thus at most 512 units): the rate at which retires queue cycles. */
const BILLED_WORK_PER_DEBT = 2;
/** Units one scheduled drop counts for: its row, its exporter's c-list entry read, its pending mark and its share of a dropExports item written. */
const DROP_WORK = 4;

/** What the sweep needs from the kernel. */
export interface SweepHost {
  readonly store: Store;
  readonly state: KernelState;
  readonly workPerCrank: number;
  enqueueKernelItem(item: RunItem): void;
  /** Whether the kernel may drop `owner`'s exports (gc.ts, capable). */
  capable(owner: VatId): boolean;
  /** Whether a drop of `ko` is pending (gc.ts). */
  dropping(ko: Kref): boolean;
  scheduleDrops(drops: Map<VatId, [Vref, Kref][]>): void;
  deleteObject(ko: Kref): void;
}

export interface SweepStats {
  /** Cycles finished since the store was created. */
  readonly cycles: number;
  /** The running cycle's phase, 'queued' before its first slice, or null. */
  readonly phase: Cycle['phase'] | 'queued' | null;
  /** Most units of sweep work one crank may do. */
  readonly workPerCrank: number;
  /** Units of sweep work the last crank did, and the most any crank did since this kernel opened. */
  readonly lastCrankWork: number;
  readonly maxCrankWork: number;
  /** Debt waiting for the next cycle. */
  readonly debt: number;
}

export class IncrementalSweep {
  private work = 0;
  /** Owners' GC capability, per slice (a vat's record does not change within a crank of the sweep). */
  private capableOwners = new Map<VatId, boolean>();
  private lastCrankWork = 0;
  private maxCrankWork = 0;
  /**
   * Marks made by the running slice, kept in memory: only a slice that does
   * not finish its cycle writes them to the store (k.gc.m.*), for later
   * slices and the barrier. A small kernel's cycle fits in one slice and
   * then writes (and clears) no mark rows at all.
   */
  private sliceMarks: Set<Kref> | null = null;
  /**
   * Whether the running slice started its cycle: then no mark rows exist in
   * the store yet, and an unmarked kref needs no store lookup.
   */
  private freshCycle = false;
  private readonly gray: GrayQueue;

  constructor(private readonly k: SweepHost) {
    this.gray = new GrayQueue(k.store, k.state, k.workPerCrank, (kref) => this.mark(kref));
  }

  private get store(): Store {
    return this.k.store;
  }

  // ------------------------------------------------------------ when cycles run

  // Each event that may leave garbage adds to a debt (a resolved promise 1, a
  // retired import or a host release RELEASE_WEIGHT), and a cycle is queued
  // once the debt reaches half the rows the last cycle left (at least
  // MIN_DEBT). A cycle visiting R rows thus follows about R/2 units of debt:
  // at most about 2 rows per resolved promise and 512 per retired import,
  // whatever the kernel's size, while garbage stays a bounded fraction of
  // the tables. One cycle runs at a time and takes all the debt there is when
  // it starts, so however much one GC point retires, it adds to at most one
  // cycle (break-10c #1: every GC point used to queue a whole sweep).
  addDebt(units: number, by?: VatId): void {
    // Present from the first debt on, the flag the barrier reads is a cached scalar, not an lmdb miss per queued item.
    if (this.store.get(MARKING) === undefined) this.store.set(MARKING, false);
    const debt = ((this.store.get(DEBT) as number | undefined) ?? 0) + units;
    this.store.set(DEBT, debt);
    if (by !== undefined) {
      const key = BY((this.store.get(GEN) as number | undefined) ?? 0) + by;
      this.store.set(key, ((this.store.get(key) as number | undefined) ?? 0) + units);
    }
    if (debt < this.threshold() || this.store.get(QUEUED)) return;
    this.store.set(QUEUED, true);
    this.k.enqueueKernelItem({ type: 'gc' });
  }

  private threshold(): number {
    return Math.max(MIN_DEBT, Math.floor(((this.store.get(LAST_SIZE) as number | undefined) ?? 0) / 2));
  }

  /** A pending drop was cancelled (its exporter named it again): its rows stay, so the size the last cycle left grows back (break-10c #5). */
  dropCancelled(): void {
    const size = this.store.get(LAST_SIZE) as number | undefined;
    if (size !== undefined) this.store.set(LAST_SIZE, size + 2);
  }

  // ------------------------------------------------------------ the barrier

  /** Whether a cycle is marking or sweeping: writes of root rows must mark what they name. */
  marking(): boolean {
    return this.store.get(MARKING) === true;
  }

  /** Root rows naming `krefs` are being written: while a cycle marks, they are marked (see the file comment). */
  named(krefs: readonly (Kref | null | undefined)[]): void {
    if (krefs.length === 0 || !this.marking()) return;
    for (const kref of krefs) if (kref) this.mark(kref);
  }

  private mark(kref: Kref): void {
    // Allocated during the cycle: the sweep keeps it whatever its mark, so
    // none is written (nor cleared later). A promise allocated during the
    // cycle was unresolved when it began: the barrier marks its resolution
    // when it is made (setPromise). (Until a cycle's first slice is saved
    // there is no record, and every kref is marked: conservative.)
    const c = this.store.get(CYCLE) as Cycle | undefined;
    if (c !== undefined && allocatedDuring(c, kref)) return;
    if (this.marked(kref)) return;
    if (this.sliceMarks) this.sliceMarks.add(kref);
    else this.store.set(MARK + kref, 1);
    if (!isKpid(kref)) return;
    // Its resolution is marked from the gray queue, whose steps count the
    // row's size: decoding it here (a resolution may name thousands of
    // krefs) would be work no budget sees (break-10e #4).
    this.gray.push(kref);
  }

  // ------------------------------------------------------------ one slice

  /** Work done since the last call, in units (kernel.ts charges it to the block); also kept for stats. */
  takeWork(): number {
    const n = this.work;
    this.work = 0;
    this.lastCrankWork = n;
    if (n > this.maxCrankWork) this.maxCrankWork = n;
    return n;
  }

  stats(): SweepStats {
    const c = this.store.get(CYCLE) as Cycle | undefined;
    return {
      cycles: this.k.state.count('gcCycles'),
      phase: c?.phase ?? (this.store.get(QUEUED) ? 'queued' : null),
      workPerCrank: this.k.workPerCrank,
      lastCrankWork: this.lastCrankWork,
      maxCrankWork: this.maxCrankWork,
      debt: (this.store.get(DEBT) as number | undefined) ?? 0,
    };
  }

  private marked(kref: Kref): boolean {
    if (this.sliceMarks?.has(kref)) return true;
    return !(this.sliceMarks && this.freshCycle) && this.store.has(MARK + kref);
  }

  /** Runs one `gc` item: at most workPerCrank units of the current cycle (starting one if none runs); queues the next slice. */
  step(): void {
    this.sliceMarks = new Set();
    this.gray.beginSlice();
    try {
      this.slice();
    } finally {
      this.sliceMarks = null;
      this.gray.endSlice(false);
    }
  }

  private slice(): void {
    this.capableOwners = new Map();
    const saved = this.store.get(CYCLE) as Cycle | undefined;
    this.freshCycle = saved === undefined;
    const c: Mutable<Cycle> = { ...(saved ?? this.start()) };
    let budget = this.k.workPerCrank;
    const spend = () => {
      budget--;
      this.work++;
      c.work++;
    };
    const left = () => budget > 0;
    const drops = new Map<VatId, [Vref, Kref][]>();
    let done = false;
    while (left() && !done) {
      if (c.phase === 'roots' || c.phase === 'sweep') {
        if (!this.gray.drain(spend, () => budget)) break;
        const tables = c.phase === 'roots' ? ROOT_TABLES : SWEEP_TABLES;
        if (c.table < tables.length) {
          const finished = c.phase === 'roots' ? this.rootsTable(c, spend, left) : this.sweepTable(c, spend, left, drops);
          if (finished) next(c, c.table + 1);
          continue;
        }
        if (c.phase === 'roots') {
          next(c, 0, 'sweep');
          continue;
        }
        // Decisions are made: references written from now on need no marks.
        this.store.set(MARKING, false);
        this.store.set(LAST_SIZE, Math.max(0, c.rows - c.freed));
        next(c, 0, 'clear');
      } else if (c.phase === 'clear') {
        // The marks, and the gray queue an abandoned cycle (failed) left.
        if (c.table < CLEAR_TABLES.length) {
          if (this.walk(c, CLEAR_TABLES[c.table], spend, left, (key) => this.store.delete(key))) next(c, c.table + 1);
          continue;
        }
        this.gray.clearCursor();
        next(c, 0, 'bill');
      } else if (this.walk(c, BY(c.gen), spend, left, (key, debt) => this.bill(c, key, debt as number))) {
        done = true;
      }
    }
    if (drops.size > 0) this.k.scheduleDrops(drops);
    // Marks still needed by later slices (and the barrier's checks) go to the store.
    const marks = this.sliceMarks;
    this.sliceMarks = null;
    const goesOn = !done && (c.phase === 'roots' || c.phase === 'sweep');
    if (marks && goesOn) for (const kref of marks) this.store.set(MARK + kref, 1);
    this.gray.endSlice(goesOn);
    if (done) this.finish();
    else {
      this.store.set(CYCLE, c);
      this.k.enqueueKernelItem({ type: 'gc' });
    }
  }

  private start(): Cycle {
    const gen = (this.store.get(GEN) as number | undefined) ?? 0;
    this.store.set(GEN, gen + 1);
    const debt = (this.store.get(DEBT) as number | undefined) ?? 0;
    this.store.delete(DEBT);
    this.store.set(MARKING, true);
    return {
      phase: 'roots',
      table: 0,
      koFrom: (this.store.get('k.next.ko') as number | undefined) ?? 1,
      kpFrom: (this.store.get('k.next.kp') as number | undefined) ?? 1,
      gen,
      debt,
      work: 0,
      rows: 0,
      freed: 0,
    };
  }

  private finish(): void {
    this.store.delete(CYCLE);
    this.k.state.bump('gcCycles');
    // Debt that came while this cycle ran starts the next one now if it is due.
    if (((this.store.get(DEBT) as number | undefined) ?? 0) >= this.threshold()) this.k.enqueueKernelItem({ type: 'gc' });
    else this.store.delete(QUEUED);
  }

  /** A `gc` item failed (a bug, not a vat's doing): the cycle is abandoned without dropping more, its marks are cleared by later slices. */
  failed(): void {
    const c = this.store.get(CYCLE) as Cycle | undefined;
    this.store.set(MARKING, false);
    if (!c) {
      this.store.delete(QUEUED);
      return;
    }
    // Marking or sweeping: abandoned, its marks cleared from the next slice
    // on. Clearing or billing: that phase starts over, but only when new
    // debt queues a slice (a slice failing every time must not take every
    // crank the kernel has, break-rr #1); a new cycle starts only after it,
    // so no cycle takes another's leftover marks for its own (break-gray #1).
    const { after: _a, partial: _p, ...rest } = c;
    const again = c.phase === 'roots' || c.phase === 'sweep';
    this.store.set(CYCLE, { ...rest, phase: c.phase === 'bill' ? 'bill' : 'clear', table: 0 } satisfies Cycle);
    if (again) this.k.enqueueKernelItem({ type: 'gc' });
    else this.store.delete(QUEUED);
  }

  // ------------------------------------------------------------ phases

  /** Marks what the current root table's rows name, from the cursor; true when the table is done. */
  private rootsTable(c: Mutable<Cycle>, spend: () => void, left: () => boolean): boolean {
    const prefix = ROOT_TABLES[c.table];
    for (;;) {
      let jumped = false;
      for (const [key, value] of this.store.entries(prefix, c.after)) {
        if (!left()) return false;
        let from = 0;
        if (c.partial?.[0] === key) from = c.partial[1];
        else {
          spend();
          c.rows++;
        }
        if (prefix === 'k.c.') {
          // k.c.<vat>.k.<kref> -> vref; the k.c.<vat>.v.* half names the same entries: jump over it.
          const dot = key.indexOf('.', 4);
          if (key[dot + 1] === 'v') {
            c.after = `${key.slice(0, dot)}.v/`;
            jumped = true;
            break;
          }
          if (from === 0 && allocatedDuring(c, key.slice(dot + 3))) c.grown = (c.grown ?? 0) + 1;
        }
        const krefs = rootKrefs(prefix, key, value);
        for (; from < krefs.length; from++) {
          if (!left()) {
            c.partial = [key, from];
            return false;
          }
          spend();
          const kref = krefs[from];
          if (!kref) continue;
          if (allocatedDuring(c, kref)) c.grown = (c.grown ?? 0) + 1;
          this.mark(kref);
        }
        delete c.partial;
        c.after = key;
      }
      if (!jumped) return true;
    }
  }

  /** Frees what the current sweep table holds unmarked, from the cursor; true when the table is done. */
  private sweepTable(c: Mutable<Cycle>, spend: () => void, left: () => boolean, drops: Map<VatId, [Vref, Kref][]>): boolean {
    const { store, state } = this.k;
    const prefix = SWEEP_TABLES[c.table];
    // Keys first: a marked promise's row (its resolution data may be large) is not decoded.
    for (const key of store.keys(prefix, c.after)) {
      if (!left()) return false;
      spend();
      c.rows++;
      c.after = key;
      const kref = key.slice(prefix.length);
      if (allocatedDuring(c, kref)) c.grown = (c.grown ?? 0) + 1;
      if (this.marked(kref)) continue;
      if (prefix === 'k.kp.') {
        if (numberOf(kref) >= c.kpFrom || (store.get(key) as KernelPromise).state === 'unresolved') continue;
        store.delete(key);
        c.freed++;
        continue;
      }
      const owner = store.get(key) as VatId;
      if (numberOf(kref) >= c.koFrom || owner === HOST_VAT || !this.capable(owner) || this.k.dropping(kref)) continue;
      const vref = state.vrefFor(owner, kref);
      if (vref === 'o+0') continue;
      if (vref === undefined) {
        this.k.deleteObject(kref);
        c.freed++;
        continue;
      }
      c.freed += 2; // its k.ko row and its exporter's c-list entry, once dropExports runs
      // A drop also writes its pending mark and its share of a dropExports item.
      for (let i = 1; i < DROP_WORK && left(); i++) spend();
      const list = drops.get(owner) ?? [];
      list.push([vref, kref]);
      drops.set(owner, list);
    }
    return true;
  }

  private capable(owner: VatId): boolean {
    let yes = this.capableOwners.get(owner);
    if (yes === undefined) this.capableOwners.set(owner, (yes = this.k.capable(owner)));
    return yes;
  }

  /** Visits (and lets `visit` delete) the rows under `prefix` from the cursor; true when none is left. */
  private walk(c: Mutable<Cycle>, prefix: string, spend: () => void, left: () => boolean, visit: (key: string, value: unknown) => void): boolean {
    for (const [key, value] of this.store.entries(prefix, c.after)) {
      if (!left()) return false;
      spend();
      visit(key, value);
      c.after = key;
    }
    return true;
  }

  private bill(c: Cycle, key: string, debt: number): void {
    this.store.delete(key);
    const vat = key.slice(BY(c.gen).length);
    if (c.debt <= 0 || !this.k.state.hasVat(vat)) return;
    // Debtors pay for walking the tables as they were when the cycle began,
    // not for the rows of objects and promises allocated while it ran
    // (break-10e #2: another vat's churn); that work is the block's.
    const billable = Math.max(0, c.work - (c.grown ?? 0));
    const share = (BigInt(billable) * BigInt(Math.min(debt, c.debt))) / BigInt(c.debt);
    // And never more than its own retires account for: however other vats
    // grow the tables while the cycle runs (break-10f #1), a vat pays at most
    // 512 units of sweep work per import it retired.
    const cap = BigInt(debt) * BigInt(BILLED_WORK_PER_DEBT);
    const units = (share < cap ? share : cap) * GC_UNITS_PER_WORK;
    if (units > 0n) this.k.state.chargeGC(vat, units);
  }
}
