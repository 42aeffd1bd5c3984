// The kernel: c-lists, kernel objects and promises, a deterministic run
// queue, and cranks run in blocks.
//
// THE CRANK CONTRACT
// - A crank takes one item from the run queue (round-robin over the lanes of
//   vats that may run, FIFO within a lane; see run-queue.ts) and does at most
//   one delivery to one vat. All its store writes (kernel tables, the vat's
//   vatstore and transcript, a snapshot that fell due) form one savepoint.
// - If the delivery fails (meter exhausted, trap, illegal syscall, dispatch
//   error) the savepoint is rolled back, the vat's sandbox is dropped (it is
//   rebuilt from image + transcript when next needed) and a second crank
//   consumes the item and rejects its result promise. Nothing else in the
//   block is undone.
// - Cranks run in blocks (run-policy.ts): a block ends when nothing is
//   runnable or the policy's crank count or compute budget is reached, and
//   commits in ONE store transaction. The host learns results (its promises
//   settle) only after that commit, so a crash loses at most the uncommitted
//   block and nothing anyone was told about.
// - Host operations (create, start, upgrade, suspend) are cranks of their own
//   and commit at once; host sends are queued with the next block.
// - Error text a vat can read names things in that vat's own terms (its
//   vrefs, the method) and never kernel numbers or other vats' counters.
import { HostStackOverflow, MeterExhausted, type SandboxOptions } from '../engine/index.js';
import type { Store } from '../store/index.js';
import { baseImage, type StoredImage } from './base-image.js';
import { HOST_VAT, KernelState, type Message, type RunItem, type VatRecord, type VatStats } from './kernel-state.js';
import { isKpid, type Capdata, type Kref, type VatId, type Vref } from './refs.js';
import { BlockMeter, resolveRunPolicy, type BlockReport, type RunPolicy } from './run-policy.js';
import { KERNEL_LANE, PROMISES, promiseLane, RunQueue, type Lane, type Sender } from './run-queue.js';
import { errorData, handleSyscall, type SyscallHost } from './syscalls.js';
import { Translator } from './translate.js';
import { ReplayDiverged, VatManager, type LiveSyscall, type RecordedSyscall } from './vat-manager.js';
import { describeFailure, presenceSlot } from './failures.js';
import { Upgrader, type UpgradeOptions } from './upgrader.js';
import { KernelGC } from './gc.js';

export { errorData } from './syscalls.js';
export type { UpgradeOptions } from './upgrader.js';

/** What the host does with a send to one of its device objects. */
export type DeviceAction =
  | { readonly rejected: boolean; readonly data: Capdata }
  | { readonly upgrade: { vat: VatId; bundleId: string; bundle: VatBundle; exits: Record<string, unknown>; note: unknown } };
export type DeviceHandler = (target: Kref, method: string, args: Capdata) => DeviceAction;

/** Something fed each committed delivery of one vat (a shadow, SPEC §5.6). */
export interface DeliveryObserver {
  observe(delivery: unknown, syscalls: readonly RecordedSyscall[]): void;
}

export interface KernelOptions {
  /** Snapshot a vat after this many deliveries since its last snapshot. Default 200. */
  readonly snapshotEvery?: number;
  /** ...or once its deliveries since the last snapshot used this many meter units. Default 1e9. */
  readonly snapshotEveryUnits?: bigint;
  /** Compute budget per delivery, in meter units. Default 500,000,000. */
  readonly deliveryBudget?: bigint;
  readonly sandbox?: SandboxOptions;
  /** How many vats keep a live sandbox; the least recently used beyond this are unloaded. Default 32. */
  readonly maxLoadedVats?: number;
  /** Host sends that may wait at once (queued or parked on promises); more are refused. Default 100,000. */
  readonly maxQueueLength?: number;
  /**
   * Messages one vat may have waiting for one destination (a vat, or promises:
   * queued or parked on an unresolved one); its sends beyond it are rejected.
   * Default 1,000.
   */
  readonly maxQueuedPerVat?: number;
  /** The image new vats start from; tests substitute a hostile guest runtime here. */
  readonly baseImage?: () => StoredImage;
  /**
   * Deliveries to a vat between its bring-out-your-dead GC points (also one
   * before every snapshot); 0 turns GC off. Default 0 (opt-in: see the
   * operator's guide, "Garbage collection", for the known problems).
   */
  readonly gcEvery?: number;
}

export interface VatBundle {
  readonly entry: string;
  readonly modules: Readonly<Record<string, { readonly source: string; readonly imports: Readonly<Record<string, string>> }>>;
}

/** Resolution of a kernel promise the host waits on. */
export type HostWaiter = (rejected: boolean, data: Capdata) => void;

const RELEASE_PER_CRANK = 100;
/** Block-budget units one deleted key of an upgrade's clean-up counts for. */
const CLEANUP_UNITS_PER_KEY = 10_000n;
/** Most settled promises one notify carries; the rest are imported and notified later. */
const NOTIFY_BATCH = 1000;
// Off by default: a hostile review found that GC can still forget objects
// virtual data names (ordinary Far objects stored in virtual collections, one
// facet of a multi-facet object dropped while another is held). Until those
// are fixed, distributed GC is opt-in, and a host that never collects loses
// nothing (issue #11 stays open).
const DEFAULT_GC_EVERY = 0;
const DEFAULTS = { snapshotEvery: 200, deliveryBudget: 500_000_000n, maxLoadedVats: 32, maxQueueLength: 100_000, maxQueuedPerVat: 1_000 };

export class Kernel {
  readonly state: KernelState;
  readonly queue: RunQueue;
  readonly translator: Translator;
  private readonly vats = new Map<VatId, VatManager>();
  private readonly hostWaiters = new Map<Kref, HostWaiter[]>();
  private pendingHost: [Kref, boolean, Capdata][] = [];
  private afterCommit: (() => void)[] = [];
  private readonly upgrader: Upgrader;
  /** Distributed garbage collection (gc.ts). */
  readonly gc: KernelGC;
  private readonly syscallHost: SyscallHost;
  readonly limits: typeof DEFAULTS;
  private inCrank = false;
  /** Answers sends to host-owned kernel objects (set by the host). */
  deviceHandler: DeviceHandler | null = null;
  /** Told, inside the crank, about an upgrade a device enacted (the host records it). */
  onDeviceUpgrade: ((vat: VatId, bundleId: string, note: unknown) => void) | null = null;
  /** Observers attached to live vats (shadows); fed after each committed delivery. */
  readonly shadows = new Map<VatId, DeliveryObserver>();
  /** Recent lines vats wrote through a granted console exit, and operator diagnostics. */
  readonly vatLog: string[] = [];

  constructor(
    readonly store: Store,
    private readonly options: KernelOptions = {},
  ) {
    this.state = new KernelState(store);
    this.queue = new RunQueue(store);
    this.translator = new Translator(this.state);
    this.limits = {
      snapshotEvery: options.snapshotEvery ?? DEFAULTS.snapshotEvery,
      deliveryBudget: options.deliveryBudget ?? DEFAULTS.deliveryBudget,
      maxLoadedVats: options.maxLoadedVats ?? DEFAULTS.maxLoadedVats,
      maxQueueLength: options.maxQueueLength ?? DEFAULTS.maxQueueLength,
      maxQueuedPerVat: options.maxQueuedPerVat ?? DEFAULTS.maxQueuedPerVat,
    };
    for (const [name, v] of Object.entries(this.limits)) {
      if (typeof v === 'number' && !(Number.isSafeInteger(v) && v > 0)) throw new RangeError(`${name} must be a positive integer, got ${v}`);
      if (typeof v === 'bigint' && v <= 0n) throw new RangeError(`${name} must be a positive number of meter units, got ${v}`);
    }
    if (options.snapshotEveryUnits !== undefined && !(typeof options.snapshotEveryUnits === 'bigint' && options.snapshotEveryUnits > 0n)) {
      throw new RangeError(`snapshotEveryUnits must be a positive bigint (meter units), got ${String(options.snapshotEveryUnits)}`);
    }
    const gcEvery = options.gcEvery ?? DEFAULT_GC_EVERY;
    if (!(Number.isSafeInteger(gcEvery) && gcEvery >= 0)) throw new RangeError(`gcEvery must be a non-negative integer, got ${gcEvery}`);
    this.gc = new KernelGC(
      {
        store,
        state: this.state,
        enqueueKernelItem: (item) => this.queue.enqueue(item, KERNEL_LANE),
        enqueueVatItem: (vat, item) => this.queue.enqueue(item, vat),
      },
      gcEvery,
    );
    this.syscallHost = this.makeSyscallHost();
    this.upgrader = new Upgrader(this);
  }

  // ---------------------------------------------------------------- vats

  /** The vat's manager, marked most recently used. */
  manager(vat: VatId): VatManager {
    let m = this.vats.get(vat);
    if (!m) {
      if (!this.state.hasVat(vat)) throw new Error(`no vat ${vat}`);
      m = new VatManager(vat, this.state, this.options.sandbox ?? {}, (d) => this.expandDelivery(d));
    }
    this.vats.delete(vat);
    this.vats.set(vat, m);
    return m;
  }

  forgetManager(vat: VatId): void {
    this.vats.get(vat)?.drop();
    this.vats.delete(vat);
  }

  // Every vat's state is in the store (image + transcript), so an idle vat's
  // sandbox (16 MiB or more) can be dropped and rebuilt when next needed.
  private evictIdleSandboxes(): void {
    if (this.vats.size <= this.limits.maxLoadedVats) return;
    let loaded = 0;
    for (const m of this.vats.values()) if (m.loaded) loaded++;
    for (const m of this.vats.values()) {
      if (loaded <= this.limits.maxLoadedVats) break;
      if (m.loaded && !this.shadows.has(m.id)) {
        m.drop();
        loaded--;
      }
    }
  }

  // Transcripts name bundles by id; the guest gets the bundle itself.
  private expandDelivery(d: unknown): unknown {
    const arr = d as unknown[];
    if (arr[0] === 'startVat') return ['startVat', this.state.bundle(arr[1] as string), arr[2]];
    return d;
  }

  /** The image new vats and new incarnations start from. */
  baseImage(): StoredImage {
    return (this.options.baseImage ?? baseImage)();
  }

  newVatRecord(name: string, imageId: string, role: VatRecord['role'], budget?: bigint): VatRecord {
    return {
      name,
      imageId,
      identity: null,
      incarnation: 1,
      role,
      snapshotPos: 0,
      transcriptLength: 0,
      budget: String(budget ?? this.limits.deliveryBudget),
      snapshotEvery: this.limits.snapshotEvery,
      ...(this.options.snapshotEveryUnits ? { snapshotEveryUnits: String(this.options.snapshotEveryUnits) } : {}),
    };
  }

  /**
   * Runs `fn` as a host operation: a crank of its own, committed at once on
   * success and rolled back alone on failure (earlier cranks of an open block
   * are kept). Called inside another operation, it joins that crank, so a
   * host operation and the kernel's commit together or not at all.
   */
  operation<T>(fn: () => T, onFailure?: () => void): T {
    if (this.inCrank) {
      // Joins the crank already open (e.g. host.install around createVat).
      try {
        return fn();
      } catch (err) {
        onFailure?.();
        throw err;
      }
    }
    this.evictIdleSandboxes();
    this.beginCrank();
    let out: T;
    try {
      out = fn();
    } catch (err) {
      this.abortCrank();
      onFailure?.();
      throw err;
    }
    this.endCrank();
    this.commit();
    return out;
  }

  /** Creates a vat from a bundle and starts it (one crank). Returns the root object's kref. */
  createVat(
    bundleId: string,
    bundle: VatBundle,
    options: { name?: string; vatParameters?: Capdata; budget?: bigint; role?: 'root' | 'zygote'; exits?: Record<string, unknown>; record?: (vat: VatId) => void } = {},
  ) {
    let vat: VatId = '';
    return this.operation(
      () => {
        vat = this.upgrader.createVat(bundleId, bundle, options);
        const out = this.upgrader.startCreatedVat(vat, bundleId, options);
        options.record?.(vat);
        return out;
      },
      () => this.forgetManager(vat),
    );
  }

  /**
   * Forks a new contract instance from a zygote vat's image: the zygote's
   * vatstore (its installation baggage) is copied, not shared. Returns the
   * new vat and its kit (facet name -> kref).
   */
  startInstance(
    zygote: VatId,
    options: { name?: string; context: Capdata; privateArgs: Capdata; budget?: bigint; record?: (vat: VatId, kit: Capdata) => void },
  ): { vat: VatId; kit: Capdata } {
    let vat: VatId = '';
    return this.operation(
      () => {
        const out = this.upgrader.startInstance(zygote, options, (v) => (vat = v));
        this.gc.pinForHost(out.kit.slots);
        options.record?.(out.vat, out.kit);
        return out;
      },
      () => this.forgetManager(vat),
    );
  }

  /**
   * Replaces a vat's code, atomically (see upgrader.ts). `record` runs inside
   * the upgrade's crank, so the host's records commit with it or not at all.
   */
  upgradeVat(vat: VatId, bundleId: string, bundle: VatBundle, options: UpgradeOptions & { record?: () => void } = {}): { incarnation: number } {
    return this.operation(() => {
      const out = this.upgrader.upgrade(vat, bundleId, bundle, options);
      options.record?.();
      return out;
    });
  }

  /** Deletes up to `limit` keys of data an upgrade left behind; part of the current crank. */
  pendingCleanupKeys(): number {
    return this.upgrader.pendingCleanupKeys();
  }

  // ---------------------------------------------------------------- suspension

  /**
   * Suspends a vat: its deliveries stay queued in its lane and are not run
   * until resumeVat. It can still be upgraded (the repair path). Survives
   * restart. Idempotent.
   */
  suspendVat(vat: VatId, reason = 'suspended by the host'): void {
    this.operation(() => {
      this.state.vat(vat);
      if (typeof reason !== 'string' || reason.length > 1000) throw new TypeError('a suspension reason must be a string of at most 1000 characters');
      if (this.state.suspensionReason(vat) !== reason) this.state.setSuspended(vat, reason);
    });
  }

  /** Resumes a suspended vat; its count of meter faults in a row starts again from zero. */
  resumeVat(vat: VatId): void {
    this.operation(() => {
      this.state.vat(vat);
      this.state.setSuspended(vat, null);
      this.state.resetFaultsInARow(vat);
    });
  }

  suspensionOf(vat: VatId): string | undefined {
    return this.state.suspensionReason(vat);
  }

  vatStats(vat: VatId): VatStats & { queued: number; queueShare: number; suspended: boolean } {
    this.state.vat(vat);
    return { ...this.state.vatStats(vat), queued: this.queue.laneLength(vat), queueShare: this.queue.totalShare(vat), suspended: !!this.state.suspensionReason(vat) };
  }

  // ---------------------------------------------------------------- devices

  /** A kernel object the host itself answers (an admin capability, a bundlecap); `record` joins its crank. */
  allocateDeviceObject(record?: (ko: Kref) => void): Kref {
    return this.operation(() => {
      const ko = this.state.allocateObject(HOST_VAT);
      record?.(ko);
      return ko;
    });
  }

  // A send to a device is answered in its crank, or (an upgrade) becomes a
  // crank of its own, so that a failed upgrade rolls back only itself.
  private deliverToDevice(msg: Message, target: Kref): void {
    if (!this.deviceHandler) return this.resolveResult(msg, true, errorData('that object has no handler'));
    const action = this.deviceHandler(target, msg.method, msg.args);
    if ('upgrade' in action) {
      const u = action.upgrade;
      this.state.putBundle(u.bundleId, u.bundle);
      this.queue.enqueue({ type: 'upgrade', vat: u.vat, bundleId: u.bundleId, exits: u.exits, note: u.note, result: msg.result }, KERNEL_LANE);
      return;
    }
    this.resolveResult(msg, action.rejected, action.data);
  }

  // ---------------------------------------------------------------- host inputs

  /**
   * Queues a message from outside any vat; it runs in the next block, and
   * `waiter` hears its result after that block commits. Throws (queueing
   * nothing) for an unknown target or argument, or a full run queue.
   */
  queueToKref(target: Kref, method: string, args: Capdata, waiter?: HostWaiter): Kref {
    this.assertIdle();
    const known = (k: Kref) => !!this.state.objectOwner(k) || (isKpid(k) && this.state.hasPromise(k));
    if (!known(target)) throw new Error(`no kernel object or promise ${target}`);
    for (const slot of args.slots) if (!known(slot)) throw new Error(`argument references unknown kernel object ${slot}`);
    // Vats' traffic never fills the host's room: its sends have a share of their own.
    if (this.queue.totalShare(HOST_VAT) >= this.limits.maxQueueLength) {
      throw new RangeError(`the run queue is full (${this.limits.maxQueueLength} host messages waiting); the send of ${method.slice(0, 80)} was refused, try again later`);
    }
    this.beginCrank();
    const result = this.state.allocatePromise(null, [HOST_VAT]);
    this.enqueueSend({ type: 'send', target, msg: { method, args, result } }, HOST_VAT);
    this.state.bump('inputs');
    this.endCrank();
    if (waiter) this.addWaiter(result, waiter);
    return result;
  }

  /** Calls back when a kernel promise settles (at once if it already has). */
  waitFor(kp: Kref, waiter: HostWaiter): void {
    const p = this.state.promise(kp);
    if (p.state !== 'unresolved') return waiter(p.state === 'rejected', p.data);
    if (!p.subscribers.includes(HOST_VAT)) {
      this.assertIdle();
      this.beginCrank();
      this.state.setPromise(kp, { ...p, subscribers: [...p.subscribers, HOST_VAT] });
      this.endCrank();
    }
    this.addWaiter(kp, waiter);
  }

  private addWaiter(kp: Kref, waiter: HostWaiter): void {
    const list = this.hostWaiters.get(kp) ?? [];
    list.push(waiter);
    this.hostWaiters.set(kp, list);
  }

  // ---------------------------------------------------------------- blocks and cranks

  /** True while some queued item may run now (not only suspended vats' work). */
  hasRunnableWork(): boolean {
    const suspended = new Set(this.state.suspendedVats());
    return this.queue.lanes().some((lane) => !suspended.has(lane));
  }

  /**
   * Runs one block: cranks until nothing is runnable or the policy stops it,
   * then commits once and tells the host about settled promises.
   */
  runBlock(policy?: RunPolicy): BlockReport {
    const meter = new BlockMeter(resolveRunPolicy(policy));
    let stoppedBy: BlockReport['stoppedBy'] = 'idle';
    for (;;) {
      const limit = meter.limitReached();
      if (limit) {
        stoppedBy = limit;
        break;
      }
      if (!this.crank(meter)) break;
    }
    this.commit();
    return { cranks: meter.cranks, computeUsed: meter.computeUsed, queueLength: this.queue.length(), stoppedBy, suspended: meter.suspended };
  }

  /** Runs blocks until nothing is runnable. Returns how many cranks ran. For tests and tools; hosts use host.run(). */
  run(policy?: RunPolicy): number {
    let n = 0;
    for (;;) {
      const r = this.runBlock(policy);
      n += r.cranks;
      if (r.stoppedBy === 'idle') return n;
    }
  }

  /** One crank of the open block. False when nothing is runnable. */
  crank(meter: BlockMeter = new BlockMeter(resolveRunPolicy())): boolean {
    this.assertIdle();
    this.evictIdleSandboxes();
    const suspended = new Set(this.state.suspendedVats());
    const mayRun = (lane: Lane) => !suspended.has(lane);
    this.beginCrank();
    const next = this.queue.dequeue(mayRun);
    if (!next) {
      this.abortCrank();
      return false;
    }
    meter.cranks++;
    this.state.bump('cranks');
    const delivered = { vat: null as VatId | null, used: 0n };
    try {
      this.process(next.item, next.sender, delivered);
      meter.recordWork(BigInt(this.upgrader.cleanupStep()) * CLEANUP_UNITS_PER_KEY);
      if (delivered.vat) {
        this.state.recordDelivery(delivered.vat, delivered.used, 'none');
        meter.recordWork(delivered.used);
      }
      this.endCrank();
    } catch (err) {
      this.abortCrank();
      // A vat that cannot be rebuilt from its transcript must not be run on:
      // the host stops instead of diverging quietly.
      if (err instanceof ReplayDiverged || (err as Error)?.cause instanceof ReplayDiverged) throw err;
      // The host's stack, not the input, ended this crank: never commit that as
      // its outcome. The item stays queued; the caller retries from a fresh stack.
      if (err instanceof HostStackOverflow || (err as Error)?.cause instanceof HostStackOverflow) throw new HostStackOverflow({ cause: err });
      this.failItem(mayRun, err as Error, delivered.vat, meter);
    }
    return true;
  }

  /** Queues a send, counting it against `from`'s share for its destination. */
  private enqueueSend(item: RunItem & { type: 'send' }, from: VatId | null): void {
    const sender = from === null ? null : { vat: from, dest: this.destOf(item.target) };
    this.queue.enqueue(item, isKpid(item.target) ? promiseLane(from) : this.laneOf(item.target), sender);
  }

  /** Which of a sender's shares a send to `target` counts against: the receiving vat, or promises. */
  private destOf(target: Kref): string {
    return isKpid(target) ? PROMISES : this.laneOf(target);
  }

  private laneOf(target: Kref): Lane {
    if (isKpid(target)) return KERNEL_LANE;
    const owner = this.state.objectOwner(target);
    return owner === undefined || owner === HOST_VAT ? KERNEL_LANE : owner;
  }

  private process(item: RunItem, sender: Sender | null, delivered: { vat: VatId | null; used: bigint }): void {
    if (item.type === 'notify') return this.deliverNotify(item.vat, item.kpid, delivered);
    if (item.type === 'release') return this.releaseParked(item);
    if (item.type === 'bringOutYourDead') {
      delivered.vat = item.vat;
      this.gc.boydStarted(item.vat);
      return this.deliverTo(item.vat, ['bringOutYourDead'], delivered);
    }
    if (item.type === 'gc') return this.dropUnreferenced(delivered);
    if (item.type === 'upgrade') {
      delivered.vat = item.vat;
      const { incarnation } = this.upgrader.upgrade(item.vat, item.bundleId, this.state.bundle(item.bundleId) as VatBundle, { exits: item.exits });
      this.onDeviceUpgrade?.(item.vat, item.bundleId, item.note);
      if (item.result) this.resolveKernelPromise(item.result, false, { body: `#${JSON.stringify({ incarnation })}`, slots: [] });
      return;
    }
    const { target, msg } = item;
    if (isKpid(target)) {
      const p = this.state.promise(target);
      if (p.state === 'unresolved') {
        // Parked, it still counts against its sender's share for promises.
        this.state.parkMessage(target, { msg, sender });
        if (sender) this.queue.charge(sender, 1);
        return;
      }
      if (p.state === 'rejected') return this.resolveResult(msg, true, p.data);
      const ko = presenceSlot(p.data);
      if (!ko) return this.resolveResult(msg, true, errorData(`cannot send ${msg.method} to a promise fulfilled with data`));
      return this.enqueueSend({ type: 'send', target: ko, msg }, sender?.vat ?? null);
    }
    const owner = this.state.objectOwner(target);
    if (owner === undefined) return this.resolveResult(msg, true, errorData(`${msg.method} was sent to an object that no longer exists`));
    if (owner === HOST_VAT) return this.deliverToDevice(msg, target);
    const orphaned = this.state.orphanReason(target);
    if (orphaned) return this.resolveResult(msg, true, errorData(orphaned, 'UpgradeDisconnection'));
    const vref = this.state.vrefFor(owner, target);
    if (vref === undefined) return this.resolveResult(msg, true, errorData(`${msg.method} was sent to an object its vat no longer exports`));
    delivered.vat = owner;
    const args = this.translator.toVat(owner, msg.args);
    let result: Vref | null = null;
    if (msg.result) {
      result = this.translator.vrefForVat(owner, msg.result);
      const rp = this.state.promise(msg.result);
      if (rp.state === 'unresolved') this.state.setPromise(msg.result, { ...rp, decider: owner });
    }
    this.state.noteMethodUsed(owner, vref, msg.method);
    this.deliverTo(owner, ['deliver', vref, msg.method, args, result], delivered);
  }

  private deliverTo(vat: VatId, delivery: unknown, delivered: { used: bigint }): void {
    const manager = this.manager(vat);
    const { syscalls, used } = manager.deliver(delivery, this.syscall);
    delivered.used += used;
    const gcPoint = (delivery as unknown[])[0] === 'bringOutYourDead';
    if (!gcPoint) {
      this.gc.afterDelivery(vat);
      // A snapshot keeps no garbage: a GC point comes first.
      if (this.gc.gcEvery > 0 && manager.snapshotDue()) {
        this.gc.boydStarted(vat);
        delivered.used += manager.deliver(['bringOutYourDead'], this.syscall).used;
      }
    }
    manager.snapshotIfDue();
    const shadow = this.shadows.get(vat);
    if (shadow) this.afterCommit.push(() => shadow.observe(delivery, syscalls));
  }

  // A sweep: each exporter of objects nobody else holds is told
  // (dropExports), then the kernel forgets them (gc.ts).
  private dropUnreferenced(delivered: { vat: VatId | null; used: bigint }): void {
    const suspended = new Set(this.state.suspendedVats());
    for (const [vat, dropped] of this.gc.sweep()) {
      if (suspended.has(vat)) continue; // swept again after a later retire
      delivered.vat = vat;
      this.deliverTo(vat, ['dropExports', dropped.map(([vref]) => vref)], delivered);
      this.gc.finishDrop(vat, dropped);
    }
  }

  // One notify carries the settlement of every settled promise its data
  // names, transitively (Agoric's rule): promises that name each other (or
  // themselves) settle in one delivery instead of importing each other anew
  // forever. The vat retires them all, and so do their c-list entries.
  private deliverNotify(vat: VatId, kp: Kref, delivered: { vat: VatId | null; used: bigint }): void {
    const p = this.state.promise(kp);
    if (p.state === 'unresolved') throw new Error(`notify for unresolved ${kp}`);
    if (this.state.vrefFor(vat, kp) === undefined) return; // the vat no longer tracks it
    if (this.state.suspensionReason(vat)) throw new Error('unreachable: a suspended vat was notified');
    delivered.vat = vat;
    const batch: [Kref, Vref, boolean, Capdata][] = [];
    const todo = [kp];
    const seen = new Set(todo);
    while (todo.length > 0 && batch.length < NOTIFY_BATCH) {
      const k = todo.shift()!;
      const pk = this.state.promise(k);
      if (pk.state === 'unresolved') continue;
      for (const slot of pk.data.slots) {
        if (isKpid(slot) && !seen.has(slot) && this.state.promise(slot).state !== 'unresolved') {
          seen.add(slot);
          todo.push(slot);
        }
      }
      batch.push([k, this.translator.vrefForVat(vat, k), pk.state === 'rejected', this.translator.toVat(vat, pk.data)]);
    }
    for (const [k, vpid] of batch) this.state.removeClist(vat, vpid, k);
    this.deliverTo(vat, ['notify', batch.map(([, vpid, rejected, data]) => [vpid, rejected, data])], delivered);
  }

  // An aborted item is consumed in a crank of its own that reports the failure.
  private failItem(mayRun: (lane: Lane) => boolean, err: Error, vat: VatId | null, meter: BlockMeter): void {
    this.beginCrank();
    const { item } = this.queue.dequeue(mayRun)!;
    this.state.bump('cranks');
    this.state.bump('aborted');
    this.gc.itemFailed(item);
    const meterFault = err instanceof MeterExhausted;
    const used = meterFault ? err.used : 0n;
    if (vat) {
      const inARow = this.state.recordDelivery(vat, used, meterFault ? 'meter' : 'aborted');
      meter.recordWork(used);
      const limit = meter.policy.suspendAfterMeterFaults;
      if (meterFault && limit > 0 && inARow >= limit && !this.state.suspensionReason(vat)) {
        this.state.setSuspended(vat, `exhausted its meter ${inARow} times in a row`);
        meter.suspended.push(vat);
      }
    }
    this.vatLog.push(`${vat ?? 'kernel'} crank aborted: ${err.message}`);
    if (this.vatLog.length > 1000) this.vatLog.shift();
    if (item.type === 'send') this.resolveResult(item.msg, true, errorData(describeFailure(item, err)));
    if (item.type === 'upgrade' && item.result) this.resolveKernelPromise(item.result, true, errorData(describeFailure(item, err)));
    this.endCrank();
  }

  private resolveResult(msg: Message, rejected: boolean, data: Capdata): void {
    if (msg.result) this.resolveKernelPromise(msg.result, rejected, data);
  }

  resolveKernelPromise(kp: Kref, rejected: boolean, data: Capdata): void {
    const p = this.state.promise(kp);
    if (p.state !== 'unresolved') return;
    this.state.setPromise(kp, { state: rejected ? 'rejected' : 'fulfilled', data });
    for (const sub of p.subscribers) {
      if (sub === HOST_VAT) {
        this.pendingHost.push([kp, rejected, data]);
        this.gc.pinForHost(data.slots);
      }
      else this.queue.enqueue({ type: 'notify', vat: sub, kpid: kp }, sub);
    }
    if (p.parked > 0) this.queue.enqueue({ type: 'release', kpid: kp, from: 0, to: p.parked }, KERNEL_LANE);
  }

  // A settled promise's parked messages go back to the queue (each to its
  // sender's lane for promises) at most RELEASE_PER_CRANK per crank, so one
  // resolution cannot flood the queue or hold the host.
  private releaseParked(item: RunItem & { type: 'release' }): void {
    const end = Math.min(item.to, item.from + RELEASE_PER_CRANK);
    for (let n = item.from; n < end; n++) {
      const { msg, sender } = this.state.takeParked(item.kpid, n);
      if (sender) this.queue.charge(sender, -1);
      this.enqueueSend({ type: 'send', target: item.kpid, msg }, sender?.vat ?? null);
    }
    if (end < item.to) this.queue.enqueue({ ...item, from: end }, KERNEL_LANE);
  }

  private makeSyscallHost(): SyscallHost {
    return {
      store: this.store,
      state: this.state,
      translator: this.translator,
      enqueueFromVat: (vat, item) => {
        const dest = this.destOf(item.target);
        const share = this.queue.share(vat, dest);
        if (share >= this.limits.maxQueuedPerVat) {
          const where = dest === PROMISES ? 'for promises' : 'for that vat';
          return `${item.msg.method.slice(0, 80)} was not sent: this vat already has ${share} messages waiting ${where}, its share`;
        }
        this.enqueueSend(item, vat);
        return null;
      },
      enqueueNotify: (vat, kp) => this.queue.enqueue({ type: 'notify', vat, kpid: kp }, vat),
      resolveKernelPromise: (kp, rejected, data) => this.resolveKernelPromise(kp, rejected, data),
      dropImports: (vat, vrefs) => this.gc.dropImports(vat, vrefs),
      retireImports: (vat, vrefs) => this.gc.retireImports(vat, vrefs),
      log: (vat, level, text) => {
        // Diagnostics, not state: replays do not log again.
        this.vatLog.push(`${vat} ${level}: ${text}`);
        if (this.vatLog.length > 1000) this.vatLog.shift();
      },
    };
  }

  /** Handles one live syscall of `vat` (also used by upgrades' start-up deliveries). */
  readonly syscall: LiveSyscall = (vat, request) => handleSyscall(this.syscallHost, vat, request);

  // ---------------------------------------------------------------- transactions

  private crankMarks: { host: number; after: number } | null = null;

  private beginCrank(): void {
    this.store.beginCrank();
    this.inCrank = true;
    this.crankMarks = { host: this.pendingHost.length, after: this.afterCommit.length };
  }

  private endCrank(): void {
    this.store.endCrank();
    this.inCrank = false;
    this.crankMarks = null;
  }

  private abortCrank(): void {
    this.store.abortCrank();
    this.inCrank = false;
    if (this.crankMarks) {
      this.pendingHost.length = this.crankMarks.host;
      this.afterCommit.length = this.crankMarks.after;
    }
    this.crankMarks = null;
  }

  /** Commits the open block and tells the host and observers what it settled. */
  commit(): void {
    this.store.commit();
    // A held store (a replica applying a block) has committed nothing yet:
    // nobody may hear of results until the block's one commit.
    if (this.store.holding) return;
    const after = this.afterCommit;
    this.afterCommit = [];
    // Observers and waiters are the host's code: one that throws must not stop
    // the others, nor the kernel (its failure is logged for the operator).
    for (const fn of after) this.guarded('a delivery observer', fn);
    const done = this.pendingHost;
    this.pendingHost = [];
    for (const [kp, rejected, data] of done) {
      const waiters = this.hostWaiters.get(kp);
      this.hostWaiters.delete(kp);
      for (const w of waiters ?? []) this.guarded('a host waiter', () => w(rejected, data));
    }
  }

  private guarded(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.vatLog.push(`host: ${what} threw: ${(err as Error)?.message ?? String(err)}`);
      if (this.vatLog.length > 1000) this.vatLog.shift();
    }
  }

  /** Rejects every host waiter still pending (the host is closing). */
  abandonWaiters(reason: string): void {
    const waiting = [...this.hostWaiters.values()];
    this.hostWaiters.clear();
    for (const list of waiting) for (const w of list) this.guarded('a host waiter', () => w(true, errorData(reason)));
  }

  assertIdle(): void {
    if (this.inCrank) throw new Error('the kernel is in the middle of a crank');
  }

  // ---------------------------------------------------------------- inspection

  vrefOf(vat: VatId, kref: Kref): Vref | undefined {
    return this.state.vrefFor(vat, kref);
  }

  krefOf(vat: VatId, vref: Vref): Kref | undefined {
    return this.state.krefFor(vat, vref);
  }

  vatIds(): VatId[] {
    return this.state.vatIds();
  }

  isLoaded(vat: VatId): boolean {
    return this.vats.get(vat)?.loaded ?? false;
  }

  vatRecord(vat: VatId): VatRecord {
    return this.state.vat(vat);
  }

  /** Loads every vat (image + replay). */
  loadAll(): void {
    for (const vat of this.state.vatIds()) this.manager(vat).load();
  }

  vatMemoryBytes(vat: VatId): number {
    return this.manager(vat).load().memoryBytes;
  }

  vatMemoryHash(vat: VatId): string {
    return this.manager(vat).stateHash();
  }

  dropAllSandboxes(): void {
    for (const m of this.vats.values()) m.drop();
  }

  /** The vat's vatstore as [key, value] pairs, in key order. */
  vatstoreCopy(vat: VatId): [string, string][] {
    const prefix = this.state.vatstoreKey(vat, '');
    return [...this.store.entries(prefix)].map(([k, v]) => [k.slice(prefix.length), v as string]);
  }

  /** The sandbox options every vat runs under (trials run under them too). */
  get sandboxOptions(): SandboxOptions {
    return this.options.sandbox ?? {};
  }
}
