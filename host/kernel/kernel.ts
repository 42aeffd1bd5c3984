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
import { HOST_VAT, KernelState, type RunItem, type VatRecord, type VatStats } from './kernel-state.js';
import { type Capdata, type Kref, type VatId, type Vref } from './refs.js';
import { BlockMeter, resolveRunPolicy, type BlockReport, type RunPolicy } from './run-policy.js';
import { KERNEL_LANE, RunQueue, type Lane } from './run-queue.js';
import { errorData, handleSyscall, type SyscallHost } from './syscalls.js';
import { Translator } from './translate.js';
import { ReplayDiverged, type LiveSyscall, type RecordedSyscall, type VatManager } from './vat-manager.js';
import { LoadedVats } from './loaded-vats.js';
import { describeFailure } from './failures.js';
import { Upgrader, type UpgradeOptions } from './upgrader.js';
import { CrankOutbox, type HostWaiter } from './crank-outbox.js';
import { RunItems } from './run-items.js';
import { SendRouter } from './send-router.js';
import { KernelGC } from './gc.js';
import { GC_UNITS_PER_WORK, type SweepStats } from './gc-sweep.js';
import { HostInputs } from './host-inputs.js';
import { resolveKernelLimits, type KernelLimits, type KernelOptions } from './kernel-options.js';

export type { KernelOptions } from './kernel-options.js';

export { errorData } from './syscalls.js';
export type { UpgradeChecks, UpgradeOptions } from './upgrader.js';

/** What the host does with a send to one of its device objects. */
export type DeviceAction =
  | { readonly rejected: boolean; readonly data: Capdata }
  | { readonly upgrade: { vat: VatId; bundleId: string; bundle: VatBundle; exits: Record<string, unknown>; note: unknown } };
export type DeviceHandler = (target: Kref, method: string, args: Capdata) => DeviceAction;

/** Something fed each committed delivery of one vat (a shadow, SPEC §5.6). */
export interface DeliveryObserver {
  observe(delivery: unknown, syscalls: readonly RecordedSyscall[]): void;
}

export interface VatBundle {
  readonly entry: string;
  readonly modules: Readonly<Record<string, { readonly source: string; readonly imports: Readonly<Record<string, string>> }>>;
}

export type { HostWaiter } from './crank-outbox.js';

/** Block-budget units one deleted key of an upgrade's clean-up counts for. */
const CLEANUP_UNITS_PER_KEY = 10_000n;
export class Kernel {
  readonly state: KernelState;
  readonly queue: RunQueue;
  readonly translator: Translator;
  private readonly vats: LoadedVats;
  /** Host promises and observers owed once the block commits (kernel-internal). */
  readonly outbox: CrankOutbox;
  /** Vat creation, instance start and upgrades (kernel-internal). */
  readonly upgrader: Upgrader;
  private readonly items: RunItems;
  /** Where sends wait and whose share they count against (kernel-internal). */
  readonly sends: SendRouter;
  /** Distributed garbage collection (gc.ts). */
  readonly gc: KernelGC;
  /** Messages and references from outside any vat (host-inputs.ts). */
  readonly inputs: HostInputs;
  private readonly syscallHost: SyscallHost;
  readonly limits: KernelLimits;
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
    this.outbox = new CrankOutbox(store, this.vatLog);
    this.items = new RunItems(this);
    // Queued items are roots of the GC sweep: its write barrier sees them.
    // A promise a message targets or carries is shared (run-items.ts, private promises).
    this.queue = new RunQueue(store, (item) => {
      this.gc.itemQueued(item);
      if (item.type === 'send') this.state.markShared([item.target, ...item.msg.args.slots]);
    });
    this.translator = new Translator(this.state, (ko) => this.gc.namedAgain(ko));
    this.limits = resolveKernelLimits(options);
    this.vats = new LoadedVats(this.state, options.sandbox ?? {}, this.limits.maxLoadedVats, (d) => this.expandDelivery(d), (vat) => this.shadows.has(vat));
    this.gc = new KernelGC(
      {
        store,
        state: this.state,
        enqueueKernelItem: (item) => this.queue.enqueue(item, KERNEL_LANE),
        enqueueVatItem: (vat, item) => this.queue.enqueue(item, vat),
        workPerCrank: this.limits.gcWorkPerCrank,
      },
      this.limits.gcEvery,
    );
    this.state.onNamed = (krefs) => this.gc.named(krefs);
    this.sends = new SendRouter(this.state, this.queue, this.limits.maxQueuedPerVat);
    this.syscallHost = this.makeSyscallHost();
    this.inputs = new HostInputs(this.state, this.queue, this.sends, this.outbox, this.gc, this.limits);
    this.upgrader = new Upgrader(this);
  }

  // ---------------------------------------------------------------- vats

  /** The vat's manager, marked most recently used. */
  manager(vat: VatId): VatManager {
    return this.vats.manager(vat);
  }

  forgetManager(vat: VatId): void {
    this.vats.forget(vat);
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
      ...(this.limits.keepTranscripts ? {} : { pruneTranscript: true }),
    };
  }

  /**
   * Runs `fn` as a host operation: a crank of its own, committed at once on
   * success and rolled back alone on failure (earlier cranks of an open block
   * are kept). Called inside another operation, it joins that crank, so a
   * host operation and the kernel's commit together or not at all.
   */
  operation<T>(fn: () => T, onFailure?: () => void): T {
    if (this.outbox.inCrank) {
      // Joins the crank already open (e.g. host.install around createVat).
      try {
        return fn();
      } catch (err) {
        onFailure?.();
        throw err;
      }
    }
    this.vats.evictIdle();
    this.outbox.begin();
    let out: T;
    try {
      out = fn();
    } catch (err) {
      this.outbox.abort();
      onFailure?.();
      throw err;
    }
    this.outbox.end();
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
  upgradeVat(vat: VatId, bundleId: string, bundle: VatBundle, options: UpgradeOptions = {}): { incarnation: number } {
    return this.operation(() => this.upgrader.upgrade(vat, bundleId, bundle, options));
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

  /** The GC sweep's counters: cycles finished, phase, work of the last and the largest crank (SweepStats, gc-sweep.ts). */
  gcStats(): SweepStats {
    return this.gc.stats();
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
    this.vats.evictIdle();
    const suspended = new Set(this.state.suspendedVats());
    const mayRun = (lane: Lane) => !suspended.has(lane);
    this.outbox.begin();
    const next = this.queue.dequeue(mayRun);
    if (!next) {
      this.outbox.abort();
      return false;
    }
    meter.cranks++;
    this.state.bump('cranks');
    const delivered = { vat: null as VatId | null, used: 0n };
    try {
      this.items.process(next.item, next.sender, delivered);
      meter.recordWork(BigInt(this.upgrader.cleanupStep()) * CLEANUP_UNITS_PER_KEY);
      // A sweep's work is the kernel's, charged to the block's budget (and billed to vats at the cycle's end).
      meter.recordWork(BigInt(this.gc.takeWork()) * GC_UNITS_PER_WORK);
      if (delivered.vat) {
        this.state.recordDelivery(delivered.vat, delivered.used, 'none');
        meter.recordWork(delivered.used);
      }
      this.outbox.end();
    } catch (err) {
      this.outbox.abort();
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

  // An aborted item is consumed in a crank of its own that reports the failure.
  private failItem(mayRun: (lane: Lane) => boolean, err: Error, vat: VatId | null, meter: BlockMeter): void {
    // Work done by the rolled-back crank was still done: the block pays for it.
    meter.recordWork(BigInt(this.gc.takeWork()) * GC_UNITS_PER_WORK);
    this.outbox.begin();
    const { item } = this.queue.dequeue(mayRun)!;
    this.state.bump('cranks');
    this.state.bump('aborted');
    this.gc.itemFailed(item);
    if (item.type === 'notify') this.items.privateKept(item.kpid, item.vat);
    // A GC delivery that fails is not the vat's meter fault: the kernel chose its size.
    const meterFault = err instanceof MeterExhausted && KernelGC.chargesVat(item);
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
    this.outbox.note(`${vat ?? 'kernel'} crank aborted: ${err.message}`);
    if (item.type === 'send') this.items.resolveResult(item.msg, true, errorData(describeFailure(item, err)));
    if (item.type === 'upgrade' && item.result) this.resolveKernelPromise(item.result, true, errorData(describeFailure(item, err)));
    this.outbox.end();
  }

  /** Settles a kernel promise (run-items.ts, resolvePromise). */
  resolveKernelPromise(kp: Kref, rejected: boolean, data: Capdata): void {
    this.items.resolvePromise(kp, rejected, data);
  }

  private makeSyscallHost(): SyscallHost {
    return {
      store: this.store,
      state: this.state,
      translator: this.translator,
      enqueueFromVat: (vat, item) => this.sends.admitFromVat(vat, item),
      enqueueNotify: (vat, kp) => {
        // A subscription to a settled promise: a second notify may name it.
        this.state.markShared([kp]);
        this.queue.enqueue({ type: 'notify', vat, kpid: kp }, vat);
      },
      resolveKernelPromise: (kp, rejected, data) => this.resolveKernelPromise(kp, rejected, data),
      dropImports: (vat, vrefs) => this.gc.dropImports(vat, vrefs),
      retireImports: (vat, vrefs) => this.gc.retireImports(vat, vrefs),
      // Diagnostics, not state: replays do not log again.
      log: (vat, level, text) => this.outbox.vatLine(vat, level, text),
    };
  }

  /** Handles one live syscall of `vat` (also used by upgrades' start-up deliveries). */
  readonly syscall: LiveSyscall = (vat, request) => handleSyscall(this.syscallHost, vat, request);

  // ---------------------------------------------------------------- transactions

  /** Commits the open block and tells the host and observers what it settled. */
  commit(): void {
    this.outbox.commit();
  }

  /** Rejects every host waiter still pending (the host is closing). */
  abandonWaiters(reason: string): void {
    this.outbox.abandon(reason);
  }

  assertIdle(): void {
    if (this.outbox.inCrank) throw new Error('the kernel is in the middle of a crank');
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
    return this.vats.isLoaded(vat);
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
    this.vats.dropAll();
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
