// The kernel: c-lists, kernel objects and promises, a deterministic run
// queue, and cranks that commit or abort as a unit.
//
// One crank = one run-queue item = at most one delivery to one vat. Every
// store write the crank causes (kernel tables, the vat's vatstore, its
// transcript, a snapshot that fell due) goes into the store's crank buffer
// and is committed in one transaction. If the delivery fails (meter
// exhaustion, a trap, a forged reference, a failed dispatch) the buffer is
// dropped, the vat's sandbox is discarded (it is rebuilt from its image and
// transcript when next needed), and a second crank consumes the item and
// rejects its result promise with the reason.
import { GuestError, MeterExhausted, type SandboxOptions } from '../engine/index.js';
import type { Store } from '../store/index.js';
import { baseImage, decodeStoredImage, type StoredImage } from './base-image.js';
import { HOST_VAT, KernelState, type Message, type RunItem, type VatRecord } from './kernel-state.js';
import {
  assertCapdata,
  assertString,
  assertVref,
  isKpid,
  MAX_VATSTORE_KEY as MAX_KEY,
  SyscallError,
  type Capdata,
  type Kref,
  type VatId,
  type Vref,
} from './refs.js';
import { DeliveryFailed, failureCause, VatManager } from './vat-manager.js';
import { copiedVatstore, TrialVat, type VatstoreView } from '../upgrade/trial-vat.js';
import type { Shadow } from '../upgrade/shadow.js';

export interface UpgradeOptions {
  readonly privateArgs?: Capdata;
  readonly vatParameters?: Capdata;
  readonly exits?: Record<string, unknown>;
}

/** What the host does with a send to one of its device objects. */
export type DeviceAction =
  | { readonly rejected: boolean; readonly data: Capdata }
  | { readonly upgrade: { vat: VatId; bundleId: string; bundle: VatBundle; exits: Record<string, unknown>; note: unknown } };
export type DeviceHandler = (target: Kref, method: string, args: Capdata) => DeviceAction;

export interface KernelOptions {
  /** Snapshot a vat after this many deliveries since its last snapshot. */
  readonly snapshotEvery?: number;
  /** Compute budget per delivery, in meter units. */
  readonly deliveryBudget?: bigint;
  readonly sandbox?: SandboxOptions;
  /** How many vats keep a live sandbox; the least recently used beyond this are unloaded. */
  readonly maxLoadedVats?: number;
  /** The image new vats start from; tests substitute a hostile guest runtime here. */
  readonly baseImage?: () => StoredImage;
}

export interface VatBundle {
  readonly entry: string;
  readonly modules: Readonly<Record<string, { readonly source: string; readonly imports: Readonly<Record<string, string>> }>>;
}

/** Resolution of a kernel promise the host waits on. */
export type HostWaiter = (rejected: boolean, data: Capdata) => void;

const DEFAULTS = { snapshotEvery: 200, deliveryBudget: 500_000_000n, maxLoadedVats: 32 };
const CLEANUP_PER_CRANK = 200;

export class Kernel {
  readonly state: KernelState;
  private readonly vats = new Map<VatId, VatManager>();
  private readonly hostWaiters = new Map<Kref, HostWaiter[]>();
  private pendingHost: [Kref, boolean, Capdata][] = [];
  private readonly snapshotEvery: number;
  private readonly maxLoadedVats: number;
  private readonly deliveryBudget: bigint;
  private running = false;
  /** Answers sends to host-owned kernel objects (set by the host). */
  deviceHandler: DeviceHandler | null = null;
  /** Told, inside the crank, about an upgrade a device enacted (the host records it). */
  onDeviceUpgrade: ((vat: VatId, bundleId: string, note: unknown) => void) | null = null;
  /** Shadows attached to live vats (SPEC §5.6); fed after each committed delivery. */
  readonly shadows = new Map<VatId, Shadow>();
  private afterCommit: (() => void)[] = [];
  /** Recent lines vats wrote through a granted console exit. */
  readonly vatLog: string[] = [];

  constructor(
    private readonly store: Store,
    private readonly options: KernelOptions = {},
  ) {
    this.state = new KernelState(store);
    this.snapshotEvery = options.snapshotEvery ?? DEFAULTS.snapshotEvery;
    this.deliveryBudget = options.deliveryBudget ?? DEFAULTS.deliveryBudget;
    this.maxLoadedVats = options.maxLoadedVats ?? DEFAULTS.maxLoadedVats;
    if (!(Number.isInteger(this.snapshotEvery) && this.snapshotEvery > 0)) {
      throw new RangeError(`snapshotEvery must be a positive integer, got ${this.snapshotEvery}`);
    }
  }

  // ---------------------------------------------------------------- vats

  private manager(vat: VatId): VatManager {
    let m = this.vats.get(vat);
    if (!m) {
      if (!this.state.hasVat(vat)) throw new Error(`no vat ${vat}`);
      m = new VatManager(vat, this.state, this.options.sandbox ?? {}, (d) => this.expandDelivery(d));
    }
    // Map order is recency order: the least recently used vat comes first.
    this.vats.delete(vat);
    this.vats.set(vat, m);
    return m;
  }

  // Every vat's state is in the store (image + transcript), so an idle vat's
  // sandbox (16 MiB or more) can be dropped and rebuilt when next needed.
  private evictIdleSandboxes(): void {
    if (this.vats.size <= this.maxLoadedVats) return;
    let loaded = 0;
    for (const m of this.vats.values()) if (m.loaded) loaded++;
    for (const m of this.vats.values()) {
      if (loaded <= this.maxLoadedVats) break;
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

  /** Creates a vat from a bundle and starts it (one crank). Returns the root object's kref. */
  createVat(
    bundleId: string,
    bundle: VatBundle,
    options: { name?: string; vatParameters?: Capdata; budget?: bigint; role?: 'root' | 'zygote'; exits?: Record<string, unknown> } = {},
  ): { vat: VatId; root: Kref | undefined; result: Capdata | undefined } {
    this.assertIdle();
    this.evictIdleSandboxes();
    const base = (this.options.baseImage ?? baseImage)();
    const vat = this.state.allocateVatId();
    const record: VatRecord = {
      name: options.name ?? vat,
      imageId: base.id,
      identity: vat,
      incarnation: 1,
      role: options.role ?? 'root',
      snapshotPos: 0,
      transcriptLength: 0,
      budget: String(options.budget ?? this.deliveryBudget),
      snapshotEvery: this.snapshotEvery,
    };
    this.state.putImage(base.id, base.compressed);
    this.state.putBundle(bundleId, bundle);
    this.state.addVat(vat, record);
    const params = options.vatParameters ?? { body: '#null', slots: [] };
    try {
      const vatParameters = this.translateToVat(vat, params);
      const role = record.role === 'zygote' ? 'zygote' : 'root';
      const start = { incarnation: 1, role, vatParameters, ...(options.exits ? { exits: options.exits } : {}) };
      const { result } = this.manager(vat).deliver(['startVat', bundleId, start], (v, req) => this.syscall(v, req));
      let root: Kref | undefined;
      if (role === 'root') {
        root = this.state.allocateObject(vat);
        this.state.addClist(vat, 'o+0', root);
        this.state.setVat(vat, { ...this.state.vat(vat), root });
      }
      this.manager(vat).snapshot();
      this.commit();
      return { vat, root, result };
    } catch (err) {
      this.abort();
      this.vats.get(vat)?.drop();
      this.vats.delete(vat);
      throw new Error(`vat ${record.name} failed to start: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Forks a new contract instance from a zygote vat's image: the zygote's
   * vatstore (its installation baggage) is copied, not shared. Returns the
   * new vat and its kit (facet name -> kref).
   */
  startInstance(
    zygote: VatId,
    options: { name?: string; context: Capdata; privateArgs: Capdata; budget?: bigint },
  ): { vat: VatId; kit: Capdata } {
    this.assertIdle();
    this.evictIdleSandboxes();
    const z = this.state.vat(zygote);
    if (z.role !== 'zygote') throw new Error(`vat ${zygote} is not an installation zygote`);
    const vat = this.state.allocateVatId();
    this.state.addVat(vat, {
      name: options.name ?? vat,
      imageId: z.imageId,
      identity: vat,
      incarnation: 1,
      role: 'contract',
      snapshotPos: 0,
      transcriptLength: 0,
      budget: String(options.budget ?? this.deliveryBudget),
      snapshotEvery: this.snapshotEvery,
    });
    try {
      for (const [key, value] of this.vatstoreCopy(zygote)) this.store.set(this.state.vatstoreKey(vat, key), value);
      const context = this.translateToVat(vat, options.context);
      const privateArgs = this.translateToVat(vat, options.privateArgs);
      const { result } = this.manager(vat).deliver(['startInstance', context, privateArgs], (v, req) => this.syscall(v, req));
      if (!result) throw new DeliveryFailed('startInstance returned no kit');
      const kit = this.translateFromVat(vat, result);
      this.manager(vat).snapshotIfDue();
      this.commit();
      return { vat, kit };
    } catch (err) {
      this.abort();
      this.vats.get(vat)?.drop();
      this.vats.delete(vat);
      throw err;
    }
  }

  /**
   * Replaces a vat's code, atomically. The new incarnation starts from the
   * base image, reconnects to its durable state, and must redefine every
   * durable kind; if anything fails, nothing changed and the old incarnation
   * keeps serving. On success: promises the old incarnation decided are
   * rejected, its non-durable exports break, and its non-durable vatstore data
   * is queued for deletion a bounded amount per crank.
   */
  upgradeVat(
    vat: VatId,
    bundleId: string,
    bundle: VatBundle,
    options: UpgradeOptions = {},
  ): { incarnation: number } {
    this.assertIdle();
    try {
      const result = this.performUpgrade(vat, bundleId, bundle, options);
      this.commit();
      return result;
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /** The upgrade itself, inside the current crank; throws (leaving the crank to be aborted) on failure. */
  private performUpgrade(vat: VatId, bundleId: string, bundle: VatBundle, options: UpgradeOptions): { incarnation: number } {
    const record = this.state.vat(vat);
    if (record.role === 'zygote') throw new Error(`vat ${vat} is an installation zygote; upgrade its instances`);
    const base = (this.options.baseImage ?? baseImage)();
    const incarnation = record.incarnation + 1;
    const manager = this.manager(vat);
    manager.load();
    this.state.putImage(base.id, base.compressed);
    this.state.putBundle(bundleId, bundle);
    const opts: Record<string, unknown> = { incarnation, role: record.role === 'contract' ? 'upgrade' : 'root' };
    if (options.privateArgs) opts.privateArgs = this.translateToVat(vat, options.privateArgs);
    if (options.vatParameters) opts.vatParameters = this.translateToVat(vat, options.vatParameters);
    if (options.exits) opts.exits = options.exits;
    const image = decodeStoredImage(base.id, () => base.compressed);
    manager.startIncarnation(base.id, image, `${vat}#${incarnation}`, incarnation, ['startVat', bundleId, opts], (v, req) => this.syscall(v, req));
    this.disconnectOldIncarnation(vat, record.incarnation, incarnation, record.role === 'root');
    manager.snapshot();
    return { incarnation };
  }

  // ---------------------------------------------------------------- devices

  /**
   * A kernel object the host itself answers (an instance's admin capability, a
   * bundlecap): vats can hold and send to it like any other object.
   */
  allocateDeviceObject(): Kref {
    this.assertIdle();
    const ko = this.state.allocateObject(HOST_VAT);
    this.commit();
    return ko;
  }

  // A send to a device is answered in its crank, or (an upgrade) becomes a
  // crank of its own, so that a failed upgrade rolls back only itself.
  private deliverToDevice(target: Kref, msg: Message): void {
    if (!this.deviceHandler) return this.resolveResult(msg, true, errorData(`kernel object ${target} has no handler`));
    const action = this.deviceHandler(target, msg.method, msg.args);
    if ('upgrade' in action) {
      const u = action.upgrade;
      this.state.putBundle(u.bundleId, u.bundle);
      this.state.enqueue({ type: 'upgrade', vat: u.vat, bundleId: u.bundleId, exits: u.exits, note: u.note, result: msg.result });
      return;
    }
    this.resolveResult(msg, action.rejected, action.data);
  }

  // Promises the old incarnation decided can never be resolved by it now;
  // its heap and virtual objects are gone. Durable objects (o+d…) and
  // imports keep their c-list entries and so their identities.
  private disconnectOldIncarnation(vat: VatId, oldIncarnation: number, incarnation: number, keepRoot: boolean): void {
    const prefix = `k.c.${vat}.v.`;
    const entries = [...this.store.entries(prefix)];
    for (const [key, kref] of entries) {
      const vref = key.slice(prefix.length);
      const k = kref as Kref;
      if (vref.startsWith('o+d') || vref.startsWith('o-')) continue;
      if (vref === 'o+0' && keepRoot) continue;
      if (vref.startsWith('o+')) {
        this.state.removeClist(vat, vref, k);
        this.state.orphanObject(k, `object ${k} was a non-durable object of vat ${vat}; it was discarded when the vat upgraded to incarnation ${incarnation}`);
      } else if (isKpid(k)) {
        const p = this.state.promise(k);
        if (p.state === 'unresolved' && p.decider === vat) {
          this.state.removeClist(vat, vref, k);
          this.resolveKernelPromise(k, true, errorData(`vat ${vat} was upgraded to incarnation ${incarnation}; this promise from incarnation ${oldIncarnation} was disconnected`, 'UpgradeDisconnection'));
        }
      }
    }
    this.state.queueCleanup(vat, this.state.vatstoreKey(vat, `v${oldIncarnation}.`));
  }

  /** Deletes up to `limit` keys of data an upgrade left behind; part of the current crank. */
  private cleanupStep(limit = CLEANUP_PER_CRANK): void {
    const pending = this.state.pendingCleanup();
    if (pending.length === 0) return;
    const [vat, prefix] = pending[0];
    let deleted = 0;
    let key = this.store.getNextKey(prefix);
    while (key !== undefined && deleted < limit) {
      this.store.delete(key);
      deleted++;
      key = this.store.getNextKey(prefix, key);
    }
    if (key === undefined) this.state.finishCleanup(vat, prefix);
  }

  /** Keys still waiting for deletion after upgrades. */
  pendingCleanupKeys(): number {
    let n = 0;
    for (const [, prefix] of this.state.pendingCleanup()) for (const _ of this.store.entries(prefix)) n++;
    return n;
  }

  // ---------------------------------------------------------------- host inputs

  /** Queues a message from outside any vat; its result promise is watched by the host. */
  queueToKref(target: Kref, method: string, args: Capdata, waiter?: HostWaiter): Kref {
    this.assertIdle();
    if (!this.state.objectOwner(target) && !(isKpid(target) && this.state.hasPromise(target))) {
      throw new Error(`no kernel object or promise ${target}`);
    }
    for (const slot of args.slots) {
      if (!this.state.objectOwner(slot) && !(isKpid(slot) && this.state.hasPromise(slot))) {
        throw new Error(`argument references unknown kernel object ${slot}`);
      }
    }
    const result = this.state.allocatePromise(null, [HOST_VAT]);
    this.state.enqueue({ type: 'send', target, msg: { method, args, result } });
    this.state.bump('inputs');
    this.commit();
    if (waiter) this.waitFor(result, waiter);
    return result;
  }

  /** Calls back when a kernel promise settles (at once if it already has). */
  waitFor(kp: Kref, waiter: HostWaiter): void {
    const p = this.state.promise(kp);
    if (p.state !== 'unresolved') {
      waiter(p.state === 'rejected', p.data);
      return;
    }
    if (!p.subscribers.includes(HOST_VAT)) {
      this.state.setPromise(kp, { ...p, subscribers: [...p.subscribers, HOST_VAT] });
      this.commit();
    }
    const list = this.hostWaiters.get(kp) ?? [];
    list.push(waiter);
    this.hostWaiters.set(kp, list);
  }

  // ---------------------------------------------------------------- run loop

  /** Runs cranks until the queue is empty. Returns how many ran. */
  run(): number {
    if (this.running) return 0;
    this.running = true;
    let n = 0;
    try {
      while (this.crank()) n++;
    } finally {
      this.running = false;
    }
    return n;
  }

  private assertIdle(): void {
    if (this.running) throw new Error('the kernel is in the middle of a crank');
  }

  /** One crank. False when the run queue is empty. */
  crank(): boolean {
    this.evictIdleSandboxes();
    const item = this.state.dequeue();
    if (!item) {
      this.store.abort();
      return false;
    }
    this.state.bump('cranks');
    try {
      this.process(item);
      this.cleanupStep();
      this.commit();
    } catch (err) {
      this.abort();
      this.failItem(item, err as Error);
    }
    return true;
  }

  private process(item: RunItem): void {
    if (item.type === 'notify') return this.deliverNotify(item.vat, item.kpid);
    if (item.type === 'upgrade') {
      const { incarnation } = this.performUpgrade(item.vat, item.bundleId, this.state.bundle(item.bundleId) as VatBundle, { exits: item.exits });
      this.onDeviceUpgrade?.(item.vat, item.bundleId, item.note);
      if (item.result) this.resolveKernelPromise(item.result, false, { body: `#${JSON.stringify({ incarnation })}`, slots: [] });
      return;
    }
    const { target, msg } = item;
    if (isKpid(target)) {
      const p = this.state.promise(target);
      if (p.state === 'unresolved') {
        this.state.setPromise(target, { ...p, queue: [...p.queue, msg] });
        return;
      }
      if (p.state === 'rejected') return this.resolveResult(msg, true, p.data);
      const ko = presenceSlot(p.data);
      if (!ko) return this.resolveResult(msg, true, errorData(`cannot send ${msg.method} to a promise fulfilled with data`));
      this.state.enqueue({ type: 'send', target: ko, msg });
      return;
    }
    const owner = this.state.objectOwner(target);
    if (owner === undefined) return this.resolveResult(msg, true, errorData(`no kernel object ${target}`));
    if (owner === HOST_VAT) return this.deliverToDevice(target, msg);
    const orphaned = this.state.orphanReason(target);
    if (orphaned) return this.resolveResult(msg, true, errorData(orphaned));
    const vref = this.state.vrefFor(owner, target);
    if (vref === undefined) return this.resolveResult(msg, true, errorData(`object ${target} is no longer exported by vat ${owner}`));
    const args = this.translateToVat(owner, msg.args);
    let result: Vref | null = null;
    if (msg.result) {
      result = this.vrefForVat(owner, msg.result);
      const rp = this.state.promise(msg.result);
      if (rp.state === 'unresolved') this.state.setPromise(msg.result, { ...rp, decider: owner });
    }
    const delivery = ['deliver', vref, msg.method, args, result];
    const { syscalls } = this.manager(owner).deliver(delivery, (v, req) => this.syscall(v, req));
    this.manager(owner).snapshotIfDue();
    this.shadowAfterCommit(owner, delivery, syscalls);
  }

  private shadowAfterCommit(vat: VatId, delivery: unknown, syscalls: readonly (readonly [string, string])[]): void {
    const shadow = this.shadows.get(vat);
    if (shadow) this.afterCommit.push(() => shadow.observe(delivery, syscalls));
  }

  private deliverNotify(vat: VatId, kp: Kref): void {
    const p = this.state.promise(kp);
    if (p.state === 'unresolved') throw new Error(`notify for unresolved ${kp}`);
    const vpid = this.state.vrefFor(vat, kp);
    if (vpid === undefined) return; // the vat no longer tracks it
    const data = this.translateToVat(vat, p.data);
    this.state.removeClist(vat, vpid, kp);
    const delivery = ['notify', [[vpid, p.state === 'rejected', data]]];
    const { syscalls } = this.manager(vat).deliver(delivery, (v, req) => this.syscall(v, req));
    this.manager(vat).snapshotIfDue();
    this.shadowAfterCommit(vat, delivery, syscalls);
  }

  // An aborted item is consumed in a crank of its own that reports the failure.
  private failItem(item: RunItem, err: Error): void {
    this.state.dequeue();
    this.state.bump('cranks');
    this.state.bump('aborted');
    if (item.type === 'send') this.resolveResult(item.msg, true, errorData(describeFailure(item, err)));
    if (item.type === 'upgrade' && item.result) {
      this.resolveKernelPromise(item.result, true, errorData(`upgrade of ${item.vat} failed and was rolled back: ${failureCause(err)}`));
    }
    this.commit();
  }

  private resolveResult(msg: Message, rejected: boolean, data: Capdata): void {
    if (msg.result) this.resolveKernelPromise(msg.result, rejected, data);
  }

  private resolveKernelPromise(kp: Kref, rejected: boolean, data: Capdata): void {
    const p = this.state.promise(kp);
    if (p.state !== 'unresolved') return;
    this.state.setPromise(kp, { state: rejected ? 'rejected' : 'fulfilled', data });
    for (const sub of p.subscribers) {
      if (sub === HOST_VAT) this.pendingHost.push([kp, rejected, data]);
      else this.state.enqueue({ type: 'notify', vat: sub, kpid: kp });
    }
    for (const msg of p.queue) this.state.enqueue({ type: 'send', target: kp, msg });
  }

  private commit(): void {
    this.store.commit();
    const after = this.afterCommit;
    this.afterCommit = [];
    for (const fn of after) fn();
    const done = this.pendingHost;
    this.pendingHost = [];
    for (const [kp, rejected, data] of done) {
      const waiters = this.hostWaiters.get(kp);
      this.hostWaiters.delete(kp);
      for (const w of waiters ?? []) w(rejected, data);
    }
  }

  private abort(): void {
    this.store.abort();
    this.pendingHost = [];
    this.afterCommit = [];
  }

  // ---------------------------------------------------------------- syscalls

  private syscall(vat: VatId, request: unknown): string {
    if (!Array.isArray(request) || typeof request[0] !== 'string') {
      throw new SyscallError(`vat ${vat} made a malformed syscall`);
    }
    const [op, ...a] = request;
    switch (op) {
      case 'send': {
        const target = this.krefFromVat(vat, assertVref(a[0], 'send target'), false);
        const method = assertString(a[1], 'method name', 1000);
        const args = this.translateFromVat(vat, assertCapdata(a[2], 'send arguments'));
        const resultVref = assertVref(a[3], 'send result');
        if (!resultVref.startsWith('p+') || this.state.krefFor(vat, resultVref) !== undefined) {
          throw new SyscallError(`vat ${vat} named result ${resultVref}, which must be a new promise of its own (p+N)`);
        }
        const result = this.state.allocatePromise(null, [vat]);
        this.state.addClist(vat, resultVref, result);
        this.state.enqueue({ type: 'send', target, msg: { method, args, result } });
        return '';
      }
      case 'subscribe': {
        const kp = this.krefFromVat(vat, assertVref(a[0], 'subscribe target'), false);
        if (!isKpid(kp)) throw new SyscallError(`vat ${vat} subscribed to ${a[0]}, which is not a promise`);
        const p = this.state.promise(kp);
        if (p.state !== 'unresolved') this.state.enqueue({ type: 'notify', vat, kpid: kp });
        else if (!p.subscribers.includes(vat)) this.state.setPromise(kp, { ...p, subscribers: [...p.subscribers, vat] });
        return '';
      }
      case 'resolve': {
        if (!Array.isArray(a[0]) || a[0].length === 0) throw new SyscallError(`vat ${vat} resolve needs a non-empty list`);
        for (const [i, r] of (a[0] as unknown[]).entries()) {
          if (!Array.isArray(r) || r.length !== 3 || typeof r[1] !== 'boolean') {
            throw new SyscallError(`vat ${vat} resolution ${i} must be [vpid, rejected, capdata]`);
          }
          const vpid = assertVref(r[0], `resolution ${i} promise`);
          const kp = this.krefFromVat(vat, vpid, false);
          const p = isKpid(kp) ? this.state.promise(kp) : undefined;
          if (!p || p.state !== 'unresolved' || p.decider !== vat) {
            throw new SyscallError(`vat ${vat} tried to resolve ${vpid}, which it does not decide`);
          }
          const data = this.translateFromVat(vat, assertCapdata(r[2], `resolution ${i} data`));
          this.state.removeClist(vat, vpid, kp);
          this.resolveKernelPromise(kp, r[1], data);
        }
        return '';
      }
      case 'vatstoreGet': {
        const v = this.store.get(this.state.vatstoreKey(vat, assertString(a[0], 'vatstore key', MAX_KEY)));
        return v === undefined ? '' : JSON.stringify(v);
      }
      case 'vatstoreSet': {
        const key = assertString(a[0], 'vatstore key', MAX_KEY);
        this.store.set(this.state.vatstoreKey(vat, key), assertString(a[1], `vatstore value for ${key}`));
        return '';
      }
      case 'vatstoreDelete': {
        this.store.delete(this.state.vatstoreKey(vat, assertString(a[0], 'vatstore key', MAX_KEY)));
        return '';
      }
      case 'log': {
        const level = assertString(a[0], 'log level', 10);
        const text = assertString(a[1], 'log text', 10_000);
        // Diagnostics, not state: replays do not log again.
        this.vatLog.push(`${vat} ${level}: ${text}`);
        if (this.vatLog.length > 1000) this.vatLog.shift();
        return '';
      }
      case 'vatstoreGetNextKey': {
        const prefix = this.state.vatstoreKey(vat, '');
        const prior = assertString(a[0], 'vatstore key', MAX_KEY);
        const next = this.store.getNextKey(prefix, prefix + prior);
        return next === undefined ? '' : JSON.stringify(next.slice(prefix.length));
      }
      default:
        throw new SyscallError(`vat ${vat} made an unknown syscall ${JSON.stringify(op)}`);
    }
  }

  // ---------------------------------------------------------------- translation

  private krefFromVat(vat: VatId, vref: Vref, mayAllocate: boolean): Kref {
    const known = this.state.krefFor(vat, vref);
    if (known !== undefined) return known;
    if (mayAllocate && vref.startsWith('o+')) {
      const ko = this.state.allocateObject(vat);
      this.state.addClist(vat, vref, ko);
      return ko;
    }
    if (mayAllocate && vref.startsWith('p+')) {
      const kp = this.state.allocatePromise(vat);
      this.state.addClist(vat, vref, kp);
      return kp;
    }
    throw new SyscallError(`vat ${vat} used reference ${vref}, which it was never given (forged or stale)`);
  }

  private translateFromVat(vat: VatId, data: Capdata): Capdata {
    return { body: data.body, slots: data.slots.map((s) => this.krefFromVat(vat, s, true)) };
  }

  private vrefForVat(vat: VatId, kref: Kref): Vref {
    const known = this.state.vrefFor(vat, kref);
    if (known !== undefined) return known;
    const vref = this.state.allocateImportVref(vat, isKpid(kref) ? 'p' : 'o');
    this.state.addClist(vat, vref, kref);
    return vref;
  }

  private translateToVat(vat: VatId, data: Capdata): Capdata {
    return { body: data.body, slots: data.slots.map((k) => this.vrefForVat(vat, k)) };
  }

  // ---------------------------------------------------------------- trials (pre-flight, shadows)

  private vatstoreCopy(vat: VatId): [string, string][] {
    const prefix = this.state.vatstoreKey(vat, '');
    return [...this.store.entries(prefix)].map(([k, v]) => [k.slice(prefix.length), v as string]);
  }

  // What a trial starts from. `live`: reads go to the committed store, so
  // starting costs nothing however large the vatstore (for trials used and
  // disposed while the kernel is idle: pre-flight, dry runs); otherwise a
  // copy, for trials that outlive later cranks (shadows).
  private trialVatstore(vat: VatId, live: boolean): VatstoreView {
    if (!live) return copiedVatstore(this.vatstoreCopy(vat));
    const prefix = this.state.vatstoreKey(vat, '');
    return {
      get: (key) => this.store.get(prefix + key) as string | undefined,
      nextKey: (prior) => this.store.getNextKey(prefix, prefix + prior)?.slice(prefix.length),
    };
  }

  /** Host capdata in `vat`'s references, for a trial: trials may not create kernel references, so a reference the vat does not hold is refused. */
  translateExisting(vat: VatId, data: Capdata): Capdata {
    return {
      body: data.body,
      slots: data.slots.map((k) => {
        const vref = this.state.vrefFor(vat, k);
        if (vref === undefined) throw new Error(`a trial can only pass references vat ${vat} already holds; ${k} is new to it`);
        return vref;
      }),
    };
  }

  /**
   * Starts the next incarnation of `vat` in a throwaway copy (fresh sandbox
   * from the base image, private overlay on the vatstore), under the vat's
   * own limits. Nothing live changes. `readThrough: true` (pre-flight, dry
   * runs) reads the committed vatstore directly: the trial must then be
   * disposed before the next crank commits.
   */
  trialUpgrade(
    vat: VatId,
    bundle: VatBundle,
    options: { privateArgs?: Capdata; vatParameters?: Capdata; exits?: Record<string, unknown>; readThrough?: boolean } = {},
  ): { trial: TrialVat; ok: boolean; error?: string } {
    this.assertIdle();
    const record = this.state.vat(vat);
    const base = (this.options.baseImage ?? baseImage)();
    const image = decodeStoredImage(base.id, () => base.compressed);
    const incarnation = record.incarnation + 1;
    const opts: Record<string, unknown> = { incarnation, role: record.role === 'contract' ? 'upgrade' : 'root' };
    if (options.privateArgs) opts.privateArgs = this.translateExisting(vat, options.privateArgs);
    if (options.vatParameters) opts.vatParameters = this.translateExisting(vat, options.vatParameters);
    if (options.exits) opts.exits = options.exits;
    const trial = new TrialVat(image, `${vat}#${incarnation}`, this.trialVatstore(vat, options.readThrough ?? false), BigInt(record.budget), this.options.sandbox);
    const outcome = trial.deliver(['startVat', bundle, opts]);
    return { trial, ok: outcome.ok, error: outcome.error };
  }

  /** A throwaway copy of the vat as it is now (its current memory and vatstore); `readThrough` as for trialUpgrade. */
  trialOfCurrent(vat: VatId, options: { readThrough?: boolean } = {}): TrialVat {
    this.assertIdle();
    const sandbox = this.manager(vat).load();
    const record = this.state.vat(vat);
    return new TrialVat(sandbox.snapshot(), undefined, this.trialVatstore(vat, options.readThrough ?? false), BigInt(record.budget), this.options.sandbox);
  }

  /** Which methods clients have sent to which of the vat's objects, per its transcript. */
  methodsUsed(vat: VatId): Map<Vref, Set<string>> {
    const used = new Map<Vref, Set<string>>();
    const prefix = `k.t.${vat}.`;
    for (const [, entry] of this.store.entries(prefix)) {
      const d = (entry as { d: unknown[] }).d;
      if (d[0] !== 'deliver') continue;
      const set = used.get(d[1] as string) ?? new Set<string>();
      set.add(d[2] as string);
      used.set(d[1] as string, set);
    }
    return used;
  }

  vrefOf(vat: VatId, kref: Kref): Vref | undefined {
    return this.state.vrefFor(vat, kref);
  }

  krefOf(vat: VatId, vref: Vref): Kref | undefined {
    return this.state.krefFor(vat, vref);
  }

  // ---------------------------------------------------------------- inspection

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
}

/** The kref a promise was fulfilled with, if its value is exactly one remotable. */
function presenceSlot(data: Capdata): Kref | undefined {
  if (data.slots.length === 1 && /^#"\$0(\.[^"]*)?"$/.test(data.body) && data.slots[0].startsWith('ko')) return data.slots[0];
  return undefined;
}

/** Smallcaps capdata for an Error (errors cross boundaries as name + message only). */
export function errorData(message: string, name = 'Error'): Capdata {
  return { body: `#${JSON.stringify({ '#error': message, name })}`, slots: [] };
}

function describeFailure(item: RunItem, err: Error): string {
  const where =
    item.type === 'send' ? `delivery of ${item.msg.method} to ${item.target}` : item.type === 'notify' ? `notify of ${item.kpid}` : `upgrade of ${item.vat}`;
  if (err instanceof MeterExhausted) return `${where} exhausted its compute budget (${err.used} of ${err.budget} units); the vat was rolled back`;
  if (err instanceof SyscallError) return `${where} was aborted: ${err.message}`;
  if (err instanceof DeliveryFailed || err instanceof GuestError) return `${where} failed: ${err.message}`;
  return `${where} was aborted: ${err.message}`;
}
