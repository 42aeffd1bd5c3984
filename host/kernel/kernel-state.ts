// The kernel's tables, kept in the store so that each crank's changes commit
// (or vanish) together with the vat's own. Keys are namespaced by table; all
// iteration is in key order, never in insertion or hash order.
import type { Store } from '../store/index.js';
import { ImageStore } from './image-store.js';
import { isKpid, type Capdata, type Kref, type VatId, type Vref } from './refs.js';

export interface Message {
  readonly method: string;
  readonly args: Capdata; // slots are krefs
  readonly result: Kref | null;
}

export type RunItem =
  | { readonly type: 'send'; readonly target: Kref; readonly msg: Message }
  | { readonly type: 'notify'; readonly vat: VatId; readonly kpid: Kref }
  /** Moves messages parked on a settled promise back to the run queue, a bounded number per crank. */
  | { readonly type: 'release'; readonly kpid: Kref; readonly from: number; readonly to: number }
  /** An upgrade a device (an admin capability held by a vat) asked for: a crank of its own. */
  | { readonly type: 'upgrade'; readonly vat: VatId; readonly bundleId: string; readonly exits: Record<string, unknown>; readonly note: unknown; readonly result: Kref | null }
  /** A GC point of one vat (gc.ts). */
  | { readonly type: 'bringOutYourDead'; readonly vat: VatId }
  /** One slice of a kernel GC sweep cycle, after vats retired imports (gc-sweep.ts). */
  | { readonly type: 'gc' }
  /** Tells one exporter that nobody holds these exports any more: a crank of its own, at most DROPS_PER_DELIVERY of them (gc.ts). */
  | { readonly type: 'dropExports'; readonly vat: VatId; readonly drops: readonly (readonly [Vref, Kref])[] };

/** A message waiting on an unresolved promise, and whose share it counts against. */
export interface ParkedMessage {
  readonly msg: Message;
  readonly sender: { readonly vat: VatId; readonly dest: string } | null;
}

/**
 * A kernel promise's row. `shared`: false from its allocation until it is
 * named somewhere beyond its own message's round trip (in capdata, as a send
 * target, by a host pin, by a subscription made once it had settled), then
 * true: only the GC sweep may free it. A row written before this was tracked
 * has none, and counts as shared (break-priv #1). `privateTo`: at its
 * resolution nothing but its one subscribing vat still named it; the row is
 * freed when that vat is notified (run-items.ts, private promises).
 */
export type KernelPromise =
  /** `parked`: how many messages were sent to it while unresolved (kept under k.pq.<kp>.<n>). */
  | { readonly state: 'unresolved'; readonly decider: VatId | null; readonly subscribers: readonly VatId[]; readonly parked: number; readonly shared?: boolean }
  | { readonly state: 'fulfilled' | 'rejected'; readonly data: Capdata; readonly shared?: boolean; readonly privateTo?: VatId };

export interface VatRecord {
  readonly name: string;
  /** Image the vat's memory is restored from (base, zygote, or its own snapshot). */
  readonly imageId: string;
  /**
   * Set when the image is shared (base, zygote): Math.random is reseeded with
   * this identity after restoring. Null for the vat's own snapshot.
   */
  readonly identity: string | null;
  /** 1 for a new vat, +1 for every successful upgrade. */
  readonly incarnation: number;
  /** 'root' (buildRootObject), 'zygote' (an installation's image source), 'contract' (an instance). */
  readonly role: 'root' | 'zygote' | 'contract';
  /** Transcript position the image corresponds to. */
  readonly snapshotPos: number;
  readonly transcriptLength: number;
  readonly budget: string; // bigint as decimal text
  readonly snapshotEvery: number;
  /** Snapshot after the deliveries since the last one used this many meter units (bigint as text). */
  readonly snapshotEveryUnits?: string;
  /** Meter units used by deliveries since the last snapshot (bigint as text). */
  readonly unitsSinceSnapshot?: string;
  /** Delete transcript entries replay no longer needs at each snapshot (KernelOptions.keepTranscripts false). */
  readonly pruneTranscript?: true;
  /** Transcript entries from the methods-used index's start up to here were pruned. */
  readonly transcriptPrunedTo?: number;
  /** kref of the vat's root object, once started. */
  readonly root?: Kref;
  /**
   * The distributed-GC protocol of the runtime in the vat's image (gc.ts,
   * GC_PROTOCOL). Absent for vats started by builds whose liveslots could
   * forget what virtual data names: they get no GC deliveries until upgraded.
   */
  readonly gc?: number;
}

/** Per-vat counters an operator reads to find a runaway (issue #10). */
export interface VatStats {
  readonly deliveries: number;
  /** Meter units used by all deliveries, failed ones included (bigint as text). */
  readonly computeUsed: string;
  /** Deliveries that were aborted (meter exhaustion, traps, illegal syscalls, throws at start). */
  readonly aborted: number;
  /** Of those, how many exhausted their meter. */
  readonly meterFaults: number;
  /** Meter faults since its last delivery that did not exhaust the meter (any number of blocks). */
  readonly faultsInARow?: number;
  /** Block meter units of kernel GC sweep work billed to the vat's retired imports (gc-sweep.ts; bigint as text). */
  readonly gcUnits?: string;
}

export interface TranscriptEntry {
  readonly d: unknown; // the delivery as the vat saw it
  /** Syscalls made: request, reply, and the meter units charged for it (text). */
  readonly sc: readonly (readonly [string, string, string?])[];
}

const pad = (n: number) => String(n).padStart(12, '0');

export const HOST_VAT: VatId = 'host';

export class KernelState {
  /** Memory images, page-shared; the vat records' images are what keeps them. */
  readonly images: ImageStore;

  /**
   * Told of the krefs a root row being written names (an import or promise
   * c-list entry, a parked message, a promise's resolution data): the GC's
   * write barrier (gc-sweep.ts).
   */
  onNamed: (krefs: readonly (Kref | null)[]) => void = () => {};

  constructor(private readonly store: Store) {
    this.images = new ImageStore(store, () => this.vatIds().map((id) => this.vat(id).imageId));
  }

  private counter(name: string): number {
    const key = `k.next.${name}`;
    const n = (this.store.get(key) as number | undefined) ?? 1;
    this.store.set(key, n + 1);
    return n;
  }

  // --- vats
  allocateVatId(): VatId {
    return `v${this.counter('vat')}`;
  }
  /**
   * Every vat, in creation order. Ids are allocated in sequence and a vat is
   * added in the crank that allocates its id, so they are v1 up to the
   * counter. (A list rewritten at every addVat made each fork write O(vats)
   * bytes: 0.2 ms per fork at 300 vats, and growing.)
   */
  vatIds(): VatId[] {
    const next = (this.store.get('k.next.vat') as number | undefined) ?? 1;
    const ids: VatId[] = [];
    for (let n = 1; n < next; n++) if (this.hasVat(`v${n}`)) ids.push(`v${n}`);
    return ids;
  }
  addVat(id: VatId, record: VatRecord): void {
    // Stores written before vatIds() counted kept the list here.
    if (this.store.has('k.vats')) this.store.delete('k.vats');
    this.setVat(id, record);
  }
  vat(id: VatId): VatRecord {
    const r = this.vatSettings(id);
    const length = this.store.get(`k.tlen.${id}`) as number | undefined;
    // Stores written before the position had keys of its own keep it in the record.
    if (length === undefined) return r;
    return { ...r, transcriptLength: length, unitsSinceSnapshot: this.store.get(`k.tunits.${id}`) as string };
  }
  /**
   * The record as stored, without assembling the transcript position (which
   * may be stale in it): for the settings a delivery reads (budget, GC
   * protocol, snapshot policy) without vat()'s copy.
   */
  vatSettings(id: VatId): VatRecord {
    const r = this.store.get(`k.vat.${id}`) as VatRecord | undefined;
    if (!r) throw new Error(`no vat ${id}`);
    return r;
  }
  /** Deliveries in the vat's transcript, and the meter units used since its snapshot. */
  transcriptPosition(id: VatId): { readonly length: number; readonly units: bigint } {
    const length = this.store.get(`k.tlen.${id}`) as number | undefined;
    if (length === undefined) {
      const r = this.vatSettings(id);
      return { length: r.transcriptLength, units: BigInt(r.unitsSinceSnapshot ?? '0') };
    }
    return { length, units: BigInt(this.store.get(`k.tunits.${id}`) as string) };
  }
  hasVat(id: VatId): boolean {
    return this.store.has(`k.vat.${id}`);
  }
  setVat(id: VatId, record: VatRecord): void {
    const { transcriptLength, unitsSinceSnapshot, ...rest } = record;
    this.store.set(`k.vat.${id}`, rest);
    this.setTranscriptPosition(id, transcriptLength, unitsSinceSnapshot ?? '0');
  }
  // The transcript position changes with every delivery and the rest of the
  // record almost never: as scalars of their own, a delivery rewrites two
  // numbers and the record stays decoded in the store's cache (issue #10).
  private setTranscriptPosition(id: VatId, length: number, units: string): void {
    this.store.set(`k.tlen.${id}`, length);
    this.store.set(`k.tunits.${id}`, units);
  }

  // --- transcripts
  appendTranscript(id: VatId, entry: TranscriptEntry, used: bigint): void {
    const { length, units } = this.transcriptPosition(id);
    this.store.set(`k.t.${id}.${pad(length)}`, entry, { once: true });
    this.setTranscriptPosition(id, length + 1, String(units + used));
  }

  /**
   * Deletes the entries replay no longer needs (before the vat's snapshot
   * position) if the vat prunes. Entries before the methods-used index began
   * (`k.muFrom`) are kept: a store older than the index knows its clients'
   * methods only from them. Bounded by the deliveries since the last prune.
   */
  pruneTranscript(id: VatId): void {
    const r = this.vat(id);
    if (!r.pruneTranscript) return;
    const indexFrom = this.store.get(`k.muFrom.${id}`) as number | undefined;
    const from = Math.max(r.transcriptPrunedTo ?? 0, indexFrom ?? 0);
    if (from >= r.snapshotPos) return;
    for (let pos = from; pos < r.snapshotPos; pos++) this.store.delete(`k.t.${id}.${pad(pos)}`);
    this.setVat(id, { ...r, transcriptPrunedTo: r.snapshotPos });
  }

  // --- methods clients used, per exported object (pre-flight's method-removed
  // check, issue 13): kept as deliveries happen so that asking costs the same
  // however long the transcript. `k.muFrom.<vat>` is the transcript position
  // the index starts at; deliveries before it (stores older than the index)
  // are found in the transcript.
  noteMethodUsed(id: VatId, vref: string, method: string): void {
    const key = `k.mu.${id}.${vref}`;
    const known = (this.store.get(key) as string[] | undefined) ?? [];
    if (known.includes(method)) return;
    if (!this.store.has(`k.muFrom.${id}`)) this.store.set(`k.muFrom.${id}`, this.vat(id).transcriptLength);
    this.store.set(key, [...known, method].sort());
  }
  /** GC dropped the export `vref`: nobody can call it any more, so its methods are not kept (break-11b #5). */
  forgetMethodsUsed(id: VatId, vref: string): void {
    this.store.delete(`k.mu.${id}.${vref}`);
  }
  /** vref -> methods delivered to it, from the index and the transcript before it. */
  methodsUsed(id: VatId): Map<string, Set<string>> {
    const used = new Map<string, Set<string>>();
    const add = (vref: string, method: string) => used.set(vref, (used.get(vref) ?? new Set<string>()).add(method));
    const from = this.store.get(`k.muFrom.${id}`) as number | undefined;
    const before = from ?? this.vat(id).transcriptLength;
    for (let pos = 0; pos < before; pos++) {
      const d = (this.store.get(`k.t.${id}.${pad(pos)}`) as TranscriptEntry | undefined)?.d as unknown[] | undefined;
      if (d?.[0] === 'deliver') add(d[1] as string, d[2] as string);
    }
    const prefix = `k.mu.${id}.`;
    for (const [key, methods] of this.store.entries(prefix)) for (const m of methods as string[]) add(key.slice(prefix.length), m);
    return used;
  }

  // --- suspension (issue #10): a suspended vat's deliveries wait in its lane
  suspendedVats(): VatId[] {
    return (this.store.get('k.suspended') as VatId[] | undefined) ?? [];
  }
  suspensionReason(id: VatId): string | undefined {
    return this.store.get(`k.suspended.${id}`) as string | undefined;
  }
  setSuspended(id: VatId, reason: string | null): void {
    const now = this.suspendedVats().filter((v) => v !== id);
    if (reason === null) this.store.delete(`k.suspended.${id}`);
    else {
      now.push(id);
      this.store.set(`k.suspended.${id}`, reason);
    }
    this.store.set('k.suspended', now);
  }

  // --- per-vat counters
  vatStats(id: VatId): VatStats {
    return (this.store.get(`k.vstat.${id}`) as VatStats | undefined) ?? { deliveries: 0, computeUsed: '0', aborted: 0, meterFaults: 0 };
  }
  resetFaultsInARow(id: VatId): void {
    const s = this.vatStats(id);
    if (s.faultsInARow) this.store.set(`k.vstat.${id}`, { ...s, faultsInARow: 0 } satisfies VatStats);
  }

  /** Counts a delivery; returns how many meter faults in a row the vat has now. */
  recordDelivery(id: VatId, used: bigint, failure: 'none' | 'aborted' | 'meter'): number {
    const s = this.vatStats(id);
    const faultsInARow = failure === 'meter' ? (s.faultsInARow ?? 0) + 1 : failure === 'none' ? 0 : (s.faultsInARow ?? 0);
    this.store.set(`k.vstat.${id}`, {
      ...s,
      deliveries: s.deliveries + 1,
      computeUsed: String(BigInt(s.computeUsed) + used),
      aborted: s.aborted + (failure === 'none' ? 0 : 1),
      meterFaults: s.meterFaults + (failure === 'meter' ? 1 : 0),
      faultsInARow,
    } satisfies VatStats);
    return faultsInARow;
  }
  /** Bills `units` of kernel GC work to the vat whose retires caused it (gc-sweep.ts). */
  chargeGC(id: VatId, units: bigint): void {
    const s = this.vatStats(id);
    this.store.set(`k.vstat.${id}`, { ...s, gcUnits: String(BigInt(s.gcUnits ?? '0') + units) } satisfies VatStats);
  }
  transcriptEntry(id: VatId, pos: number): TranscriptEntry {
    const e = this.store.get(`k.t.${id}.${pad(pos)}`) as TranscriptEntry | undefined;
    if (!e) throw new Error(`vat ${id} transcript has no entry ${pos}`);
    return e;
  }

  // --- bundles
  putBundle(id: string, bundle: unknown): void {
    if (!this.store.has(`k.bundle.${id}`)) this.store.set(`k.bundle.${id}`, bundle);
  }
  bundle(id: string): unknown {
    const b = this.store.get(`k.bundle.${id}`);
    if (b === undefined) throw new Error(`bundle ${id} is missing from the store`);
    return b;
  }

  // --- kernel objects and promises
  allocateObject(owner: VatId): Kref {
    const ko = `ko${this.counter('ko')}`;
    this.store.set(`k.ko.${ko}`, owner);
    return ko;
  }
  objectOwner(ko: Kref): VatId | undefined {
    return this.store.get(`k.ko.${ko}`) as VatId | undefined;
  }
  allocatePromise(decider: VatId | null, subscribers: VatId[] = []): Kref {
    const kp = `kp${this.counter('kp')}`;
    this.setPromise(kp, { state: 'unresolved', decider, subscribers, parked: 0, shared: false }, true);
    return kp;
  }
  promise(kp: Kref): KernelPromise {
    const p = this.store.get(`k.kp.${kp}`) as KernelPromise | undefined;
    if (!p) throw new Error(`no kernel promise ${kp}`);
    return p;
  }
  hasPromise(kp: Kref): boolean {
    return this.store.has(`k.kp.${kp}`);
  }
  /** `fresh`: the promise is new (no row yet), see Store.set. */
  setPromise(kp: Kref, p: KernelPromise, fresh = false): void {
    this.store.set(`k.kp.${kp}`, p, { fresh });
    if (p.state !== 'unresolved') this.namedInData(p.data.slots);
  }
  /** These krefs are written in capdata (a resolution, a parked message's arguments, what the host is handed): the GC's write barrier sees them, and the promises among them are shared. */
  namedInData(slots: readonly Kref[]): void {
    this.onNamed(slots);
    this.markShared(slots);
  }
  /** Deletes a settled promise's row: only for one nothing can name any more (run-items.ts, private promises). */
  deletePromise(kp: Kref): void {
    this.store.delete(`k.kp.${kp}`);
  }
  /** These krefs are named in capdata, as a send target or by a host pin: the promises among them may be freed by the GC sweep only. */
  markShared(krefs: readonly (Kref | null | undefined)[]): void {
    for (const kref of krefs) {
      if (!kref || !isKpid(kref)) continue;
      const key = `k.kp.${kref}`;
      const p = this.store.get(key) as KernelPromise | undefined;
      if (p?.shared === false) this.store.set(key, { ...p, shared: true });
    }
  }

  /** Parks a message sent to an unresolved promise (O(1): one key per message). */
  parkMessage(kp: Kref, parked: ParkedMessage): void {
    const p = this.promise(kp);
    if (p.state !== 'unresolved') throw new Error(`cannot park a message on settled ${kp}`);
    this.store.set(`k.pq.${kp}.${pad(p.parked)}`, parked);
    this.onNamed([parked.msg.result]);
    this.setPromise(kp, { ...p, parked: p.parked + 1 });
    this.namedInData(parked.msg.args.slots);
  }
  /** Takes parked message `n` of a settled promise out of the store. */
  takeParked(kp: Kref, n: number): ParkedMessage {
    const key = `k.pq.${kp}.${pad(n)}`;
    const m = this.store.get(key) as ParkedMessage | undefined;
    if (!m) throw new Error(`${kp} has no parked message ${n}`);
    this.store.delete(key);
    return m;
  }

  /** A kernel object whose vat discarded it (non-durable, lost in an upgrade). */
  orphanObject(ko: Kref, reason: string): void {
    this.store.set(`k.orphan.${ko}`, reason);
  }
  orphanReason(ko: Kref): string | undefined {
    return this.store.get(`k.orphan.${ko}`) as string | undefined;
  }

  // --- deferred deletion of old incarnations' data (resumable, in key order)
  /** The last key the head cleanup deleted: the next step starts after it, not over its deletes again. */
  cleanupCursor(): string | undefined {
    return this.store.get('k.cleanup.after') as string | undefined;
  }
  setCleanupCursor(after: string | undefined): void {
    if (after === undefined) this.store.delete('k.cleanup.after');
    else this.store.set('k.cleanup.after', after);
  }
  queueCleanup(vat: VatId, prefix: string): void {
    // Nothing to delete (e.g. a vat whose state is all durable): queueing it
    // would only grow this list, rewritten whole, with every upgrade.
    if (this.store.getNextKey(prefix) === undefined) return;
    this.store.set('k.cleanup', [...this.pendingCleanup(), [vat, prefix]]);
  }
  pendingCleanup(): [VatId, string][] {
    return (this.store.get('k.cleanup') as [VatId, string][] | undefined) ?? [];
  }
  finishCleanup(vat: VatId, prefix: string): void {
    this.store.set('k.cleanup', this.pendingCleanup().filter(([v, p]) => v !== vat || p !== prefix));
  }

  // --- c-lists
  krefFor(vat: VatId, vref: Vref): Kref | undefined {
    return this.store.get(`k.c.${vat}.v.${vref}`) as Kref | undefined;
  }
  vrefFor(vat: VatId, kref: Kref): Vref | undefined {
    return this.store.get(`k.c.${vat}.k.${kref}`) as Vref | undefined;
  }
  /** `fresh`: neither reference is in the vat's c-list yet (the caller looked, or just allocated them), see Store.set. */
  addClist(vat: VatId, vref: Vref, kref: Kref, fresh = false): void {
    this.store.set(`k.c.${vat}.v.${vref}`, kref, { fresh });
    this.store.set(`k.c.${vat}.k.${kref}`, vref, { fresh });
    // An exporter's own entry holds nothing (its new objects are allocated after any running sweep began).
    if (!vref.startsWith('o+')) this.onNamed([kref]);
  }
  removeClist(vat: VatId, vref: Vref, kref: Kref): void {
    this.store.delete(`k.c.${vat}.v.${vref}`);
    this.store.delete(`k.c.${vat}.k.${kref}`);
  }
  allocateImportVref(vat: VatId, kind: 'o' | 'p'): Vref {
    return `${kind}-${this.counter(`${vat}.${kind}`)}`;
  }

  /** The vref allocateImportVref would give after `ahead` more allocations, allocating nothing. */
  peekImportVref(vat: VatId, kind: 'o' | 'p', ahead: number): Vref {
    return `${kind}-${((this.store.get(`k.next.${vat}.${kind}`) as number | undefined) ?? 1) + ahead}`;
  }

  // --- vatstore
  vatstoreKey(vat: VatId, key: string): string {
    return `k.vs.${vat}.${key}`;
  }

  // --- counters the host reports
  bump(name: string): number {
    const key = `k.count.${name}`;
    const n = ((this.store.get(key) as number | undefined) ?? 0) + 1;
    this.store.set(key, n);
    return n;
  }
  count(name: string): number {
    return (this.store.get(`k.count.${name}`) as number | undefined) ?? 0;
  }
}
