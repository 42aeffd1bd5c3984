// What one crank does with each kind of run-queue item: a message delivered
// to its vat (or parked on an unresolved promise, or answered by a device), a
// notify carrying every settled promise its data names, the release of parked
// messages, an upgrade a device asked for, and the GC deliveries. The crank
// that calls this (kernel.ts) owns the savepoint, the meter and the failures.
import { HOST_VAT, type KernelPromise, type Message, type RunItem } from './kernel-state.js';
import type { Kernel, VatBundle } from './kernel.js';
import { isKpid, type Capdata, type Kref, type VatId, type Vref } from './refs.js';
import { KERNEL_LANE, type Sender } from './run-queue.js';
import { errorData } from './syscalls.js';
import { presenceSlot } from './failures.js';
import { gcPointDelivery, type DeliveryResult } from './vat-manager.js';

/** Most settled promises one notify carries; the rest are imported and notified later. */
const NOTIFY_BATCH = 1000;
/** Parked messages one release crank moves back to the queue. */
const RELEASE_PER_CRANK = 100;

/** Which vat a crank delivered to, and the meter units that cost. */
export interface Delivered {
  vat: VatId | null;
  used: bigint;
}

export class RunItems {
  constructor(private readonly k: Kernel) {}

  process(item: RunItem, sender: Sender | null, delivered: Delivered): void {
    const { state, gc } = this.k;
    if (item.type === 'notify') return this.deliverNotify(item.vat, item.kpid, delivered);
    if (item.type === 'release') return this.releaseParked(item);
    if (item.type === 'bringOutYourDead') {
      delivered.vat = item.vat;
      gc.boydStarted(item.vat);
      const { result } = this.deliverTo(item.vat, gcPointDelivery(), delivered);
      // A GC point does bounded work; when it left some, another follows soon.
      if (result && /"more":true/.test(result.body)) gc.queueGCPoint(item.vat);
      return;
    }
    if (item.type === 'gc') return gc.step();
    if (item.type === 'dropExports') return this.dropExports(item, delivered);
    if (item.type === 'upgrade') {
      delivered.vat = item.vat;
      const { incarnation } = this.k.upgrader.upgrade(item.vat, item.bundleId, state.bundle(item.bundleId) as VatBundle, { exits: item.exits });
      this.k.onDeviceUpgrade?.(item.vat, item.bundleId, item.note);
      if (item.result) this.k.resolveKernelPromise(item.result, false, { body: `#${JSON.stringify({ incarnation })}`, slots: [] });
      return;
    }
    const { target, msg } = item;
    if (isKpid(target)) {
      const p = state.promise(target);
      if (p.state === 'unresolved') {
        // Parked, it still counts against its sender's share for promises.
        state.parkMessage(target, { msg, sender });
        if (sender) this.k.queue.charge(sender, 1);
        return;
      }
      if (p.state === 'rejected') return this.resolveResult(msg, true, p.data);
      const ko = presenceSlot(p.data);
      if (!ko) return this.resolveResult(msg, true, errorData(`cannot send ${msg.method} to a promise fulfilled with data`));
      return this.k.sends.enqueue({ type: 'send', target: ko, msg }, sender?.vat ?? null);
    }
    const owner = state.objectOwner(target);
    if (owner === undefined) return this.resolveResult(msg, true, errorData(`${msg.method} was sent to an object that no longer exists`));
    if (owner === HOST_VAT) return this.deliverToDevice(msg, target);
    const orphaned = state.orphanReason(target);
    if (orphaned) return this.resolveResult(msg, true, errorData(orphaned, 'UpgradeDisconnection'));
    const vref = state.vrefFor(owner, target);
    if (vref === undefined) return this.resolveResult(msg, true, errorData(`${msg.method} was sent to an object its vat no longer exports`));
    delivered.vat = owner;
    const args = this.k.translator.toVat(owner, msg.args);
    let result: Vref | null = null;
    if (msg.result) {
      result = this.k.translator.vrefForVat(owner, msg.result);
      const rp = state.promise(msg.result);
      if (rp.state === 'unresolved') state.setPromise(msg.result, { ...rp, decider: owner });
    }
    const { noMethod } = this.deliverTo(owner, ['deliver', vref, msg.method, args, result], delivered);
    // Names the object does not have are not methods clients use: noting
    // them would let any client grow the index (and every later call's cost)
    // without bound (break-10c #3).
    if (!noMethod) state.noteMethodUsed(owner, vref, msg.method);
  }

  resolveResult(msg: Message, rejected: boolean, data: Capdata): void {
    if (msg.result) this.k.resolveKernelPromise(msg.result, rejected, data);
  }

  // PRIVATE PROMISES. Most promises are a message's result and nothing else:
  // named by the message, by the deciding vat's c-list until it resolves
  // them, and by their one subscriber (the sender's c-list, or the host's
  // waiter). Such a row is freed as soon as the subscriber has the
  // settlement, without waiting for a GC sweep to find it: by the host
  // here, by a vat when its notify is delivered (deliverNotify). A promise
  // named anywhere else (KernelPromise.shared: in capdata, as a send target,
  // by a host pin, by a subscription made once it had settled) or with
  // messages parked on it is left to the sweep.

  /**
   * Settles a kernel promise: tells the host (its waiters hear with this
   * block's commit), queues a notify to each subscribing vat and the release
   * of the messages parked on it, and frees a private promise the host alone
   * subscribed to.
   */
  resolvePromise(kp: Kref, rejected: boolean, data: Capdata): void {
    const { state, gc, queue, outbox } = this.k;
    const p = state.promise(kp);
    if (p.state !== 'unresolved') return;
    const only = this.privateSubscriber(kp, p);
    const settledAs = rejected ? 'rejected' : 'fulfilled';
    state.setPromise(kp, { state: settledAs, data, ...(p.shared !== undefined ? { shared: p.shared } : {}), ...(only !== null && only !== HOST_VAT ? { privateTo: only } : {}) });
    for (const sub of p.subscribers) {
      if (sub === HOST_VAT) {
        outbox.settle(kp, rejected, data);
        gc.pinForHost(data.slots);
        // The host's waiters get the settlement with this commit; the promise itself it cannot use again.
        gc.unpinForHost([kp]);
      } else queue.enqueue({ type: 'notify', vat: sub, kpid: kp }, sub);
    }
    if (p.parked > 0) queue.enqueue({ type: 'release', kpid: kp, from: 0, to: p.parked }, KERNEL_LANE);
    // Its own resolution data may name it (setPromise then marked it shared).
    if (only === HOST_VAT && state.promise(kp).shared === false) state.deletePromise(kp);
    // A vat's private promise adds debt only if its notify does not free it (privateKept).
    else if (only === null || only === HOST_VAT) gc.promiseResolved();
  }

  /** A private promise's notify did not free its row (the vat no longer tracked it, it was shared since, or the delivery failed): the sweep will, so it adds the debt its resolution did not. */
  privateKept(kp: Kref, vat: VatId): void {
    const p = this.k.state.hasPromise(kp) ? this.k.state.promise(kp) : undefined;
    if (p && p.state !== 'unresolved' && p.privateTo === vat) this.k.gc.promiseResolved();
  }

  /** The one subscriber of a promise nothing else names (see PRIVATE PROMISES), or null. */
  private privateSubscriber(kp: Kref, p: KernelPromise & { state: 'unresolved' }): VatId | null {
    if (p.shared !== false || p.parked > 0 || p.subscribers.length !== 1) return null;
    if (p.decider !== null && this.k.state.vrefFor(p.decider, kp) !== undefined) return null;
    return p.subscribers[0];
  }

  private deliverTo(vat: VatId, delivery: unknown, delivered: Delivered): DeliveryResult {
    const { gc } = this.k;
    const manager = this.k.manager(vat);
    const result = manager.deliver(delivery, this.k.syscall);
    const { syscalls, used } = result;
    delivered.used += used;
    const gcPoint = (delivery as unknown[])[0] === 'bringOutYourDead';
    if (!gcPoint) gc.afterDelivery(vat);
    // A snapshot keeps no garbage: a GC point comes first, as a crank of its
    // own (its failure must never fail this delivery), and takes the snapshot.
    if (!gcPoint && gc.collects(vat) && manager.snapshotDue()) gc.queueGCPoint(vat);
    else manager.snapshotIfDue();
    const shadow = this.k.shadows.get(vat);
    if (shadow) this.k.outbox.observe(() => shadow.observe(delivery, syscalls));
    return result;
  }

  // A send to a device is answered in its crank, or (an upgrade) becomes a
  // crank of its own, so that a failed upgrade rolls back only itself.
  private deliverToDevice(msg: Message, target: Kref): void {
    const handler = this.k.deviceHandler;
    if (!handler) return this.resolveResult(msg, true, errorData('that object has no handler'));
    const action = handler(target, msg.method, msg.args);
    if ('upgrade' in action) {
      const u = action.upgrade;
      this.k.state.putBundle(u.bundleId, u.bundle);
      this.k.queue.enqueue({ type: 'upgrade', vat: u.vat, bundleId: u.bundleId, exits: u.exits, note: u.note, result: msg.result }, KERNEL_LANE);
      return;
    }
    this.resolveResult(msg, action.rejected, action.data);
  }

  // One exporter is told that nobody else holds these objects any more
  // (dropExports), then the kernel forgets them (gc.ts).
  private dropExports(item: RunItem & { type: 'dropExports' }, delivered: Delivered): void {
    const dropped = this.k.gc.takeDrops(item);
    if (dropped.length === 0) return;
    delivered.vat = item.vat;
    this.deliverTo(item.vat, ['dropExports', dropped.map(([vref]) => vref)], delivered);
    this.k.gc.finishDrop(item.vat, dropped);
  }

  // One notify carries the settlement of every settled promise its data
  // names, transitively (Agoric's rule): promises that name each other (or
  // themselves) settle in one delivery instead of importing each other anew
  // forever. The vat retires them all, and so do their c-list entries.
  private deliverNotify(vat: VatId, kp: Kref, delivered: Delivered): void {
    const { state, translator } = this.k;
    if (state.vrefFor(vat, kp) === undefined) return this.privateKept(kp, vat); // the vat no longer tracks it
    const p = state.promise(kp);
    if (p.state === 'unresolved') throw new Error(`notify for unresolved ${kp}`);
    if (state.suspensionReason(vat)) throw new Error('unreachable: a suspended vat was notified');
    delivered.vat = vat;
    const batch: [Kref, Vref, boolean, Capdata][] = [];
    const todo = [kp];
    const seen = new Set(todo);
    while (todo.length > 0 && batch.length < NOTIFY_BATCH) {
      const k = todo.shift()!;
      const pk = state.promise(k);
      if (pk.state === 'unresolved') continue;
      for (const slot of pk.data.slots) {
        if (isKpid(slot) && !seen.has(slot) && state.promise(slot).state !== 'unresolved') {
          seen.add(slot);
          todo.push(slot);
        }
      }
      batch.push([k, translator.vrefForVat(vat, k), pk.state === 'rejected', translator.toVat(vat, pk.data)]);
    }
    for (const [k, vpid] of batch) state.removeClist(vat, vpid, k);
    // The vat lets go of every promise the notify carries. A private one goes
    // now; any other may be left unnamed by this, after a cycle took the debt
    // of its settlement (break-rr #2): it counts again, for the sweep (the
    // others the notify carries were named in settled data, so are shared).
    const settled = state.promise(kp);
    const own = settled.state !== 'unresolved' && settled.privateTo === vat && settled.shared === false;
    if (own) state.deletePromise(kp);
    const lettingGo = own ? batch.length - 1 : batch.length;
    if (lettingGo > 0) this.k.gc.promiseResolved(lettingGo);
    this.deliverTo(vat, ['notify', batch.map(([, vpid, rejected, data]) => [vpid, rejected, data])], delivered);
  }

  // A settled promise's parked messages go back to the queue (each to its
  // sender's lane for promises) at most RELEASE_PER_CRANK per crank, so one
  // resolution cannot flood the queue or hold the host.
  private releaseParked(item: RunItem & { type: 'release' }): void {
    const end = Math.min(item.to, item.from + RELEASE_PER_CRANK);
    for (let n = item.from; n < end; n++) {
      const { msg, sender } = this.k.state.takeParked(item.kpid, n);
      if (sender) this.k.queue.charge(sender, -1);
      this.k.sends.enqueue({ type: 'send', target: item.kpid, msg }, sender?.vat ?? null);
    }
    if (end < item.to) this.k.queue.enqueue({ ...item, from: end }, KERNEL_LANE);
  }
}
