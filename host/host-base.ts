// The host's core, which Host (host.ts) extends with vats, installations,
// instances and upgrades: eventual sends from outside any vat and the host
// promises they return, references (refOf, release, presence), the state
// hash and export, and running blocks (run, suspend, resume, vatStats, close).
import crypto from 'node:crypto';
import { ModuleStore } from './bundles/module-store.js';
import type { Kernel } from './kernel/kernel.js';
import type { Capdata, Kref } from './kernel/refs.js';
import { makeHostMarshal, type HostMarshal } from './marshal/host-marshal.js';
import { harden } from './marshal/endo.js';
import type { Store } from './store/index.js';
import { BlockRunner } from './kernel/block-runner.js';
import type { BlockReport, RunPolicy } from './kernel/run-policy.js';
import { assertSendable } from './marshal/sendable.js';
import { writeStateExport, type ExportMeta } from './store/state-export.js';
import { CLUSTER_BINDING_KEY } from './replica/store-binding.js';
import type { Replica } from './replica/replica.js';

export type Eventual<T> = { [K in keyof T]: (...args: any[]) => Promise<any> } & Record<string, (...args: any[]) => Promise<any>>;

export abstract class HostBase {
  protected closed = false;
  protected readonly runner: BlockRunner;
  protected readonly marshal: HostMarshal;
  protected readonly admins = new WeakMap<object, string>();
  protected readonly adminByVat = new Map<string, object>();
  protected readonly serialize = (value: unknown): Capdata => this.marshal.serialize(harden(value));

  /** Content-addressed code: upload pieces, get bundlecaps (SPEC §3). */
  readonly bundles: ModuleStore;
  /** The replica this host is (Host.open with `replicate`), else undefined. */
  replica: Replica | undefined;

  protected constructor(
    readonly store: Store,
    readonly kernel: Kernel,
    options: { readonly autoRun?: boolean; readonly runPolicy?: RunPolicy },
  ) {
    this.marshal = makeHostMarshal((kp) => this.promiseFor(kp));
    this.runner = new BlockRunner(kernel, options.autoRun ?? true, options.runPolicy);
    this.bundles = new ModuleStore(store);
  }

  /** Eventual send from outside any vat: host.E(presence).method(...args) returns a promise. */
  E<T = unknown>(target: unknown): Eventual<T> {
    this.assertOpen();
    const kref = this.marshal.krefOf(target);
    if (kref === undefined) throw new TypeError('host.E needs a presence this host received from a vat');
    return new Proxy({} as Eventual<T>, {
      get: (_t, method) => {
        if (typeof method !== 'string') return undefined;
        return (...args: unknown[]) => this.send(kref, method, args);
      },
    });
  }

  protected send(target: Kref, method: string, args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.assertOpen();
      if (typeof method !== 'string' || method.length > 1000) throw new TypeError('a method name must be a string of at most 1000 characters');
      // Not hardened here: serialize freezes an array of scalars (the rest
      // array is ours) and hardens anything else before marshal sees it.
      const data = this.marshal.serialize(assertSendable(args));
      if (this.replica) {
        this.replica.send(target, method, data).then(({ rejected, data: result }) => this.settle(resolve, reject, rejected, result), reject);
        return;
      }
      this.runner.atBoundary(
        () => {
          try {
            this.kernel.inputs.queueToKref(target, method, data, (rejected, result) => this.settle(resolve, reject, rejected, result));
          } catch (err) {
            reject(err);
            return;
          }
          this.runner.schedule();
        },
        () => reject(new Error(`the host was closed before ${method.slice(0, 80)} was sent`)),
      );
    });
  }

  protected settle(resolve: (v: unknown) => void, reject: (e: unknown) => void, rejected: boolean, data: Capdata): void {
    let value: unknown;
    try {
      value = this.marshal.unserialize(data);
    } catch (err) {
      reject(err);
      return;
    }
    if (rejected) reject(value);
    else resolve(value);
  }

  // One JS promise per kernel promise while anything holds it, settled
  // asynchronously: promises whose values name each other then decode without
  // recursion, and to the same objects.
  protected readonly promises = new Map<Kref, WeakRef<Promise<unknown>>>();
  protected readonly forgetPromise = new FinalizationRegistry<Kref>((kp) => {
    if (this.promises.get(kp)?.deref() === undefined) this.promises.delete(kp);
  });

  protected promiseFor(kp: Kref): Promise<unknown> {
    const known = this.promises.get(kp)?.deref();
    if (known) return known;
    const p = new Promise((resolve, reject) =>
      this.kernel.inputs.waitFor(kp, (rejected, data) => queueMicrotask(() => this.settle(resolve, reject, rejected, data))),
    );
    this.promises.set(kp, new WeakRef(p));
    this.forgetPromise.register(p, kp);
    return p;
  }

  /** The adminFacet of an instance (host-side; hand it to governance, not to clients). */
  adminFacet(instanceId: string): object {
    let admin = this.adminByVat.get(instanceId);
    if (!admin) {
      this.kernel.vatRecord(instanceId);
      admin = harden({ instanceId, toString: () => `[adminFacet ${instanceId}]` });
      this.admins.set(admin, instanceId);
      this.adminByVat.set(instanceId, admin);
    }
    return admin;
  }

  protected adminVat(adminFacet: object): string {
    const vat = this.admins.get(adminFacet);
    if (vat === undefined) throw new TypeError('expected an adminFacet from startInstance');
    return vat;
  }

  /**
   * The stable, printable reference of an object this host received from a
   * vat (its kref, e.g. "ko12"): the way external clients address objects
   * between processes. Valid for the life of the store, across Host.open
   * (SPEC §8, issue 14). Throws TypeError for anything that is not a presence.
   */
  refOf(presence: unknown): string {
    const kref = this.marshal.krefOf(presence);
    if (kref === undefined) throw new TypeError('refOf needs a presence this host received from a vat');
    return kref;
  }

  /**
   * Releases objects this host received (presences, or refs from refOf):
   * every object a vat hands the host stays alive for it, however long,
   * until released (issue #11; without it a long-running host would pin
   * everything it was ever given). Once released, the next GC point drops an
   * object no vat or queued message holds, and its presence and ref stop
   * working (sends to it fail with "no kernel object"); an object handed to
   * the host again is held again. Resolves to how many were held.
   * Throws TypeError for anything that is not a presence or ref of this host,
   * and for a facet of an instance kit (the host keeps kits: instanceKit).
   */
  release(...refs: unknown[]): Promise<number> {
    this.assertOpen();
    if (this.replica) throw new Error('release is not replicated yet: a replica keeps every object it was handed');
    const krefs = refs.map((r) => {
      const kref = typeof r === 'string' ? r : this.marshal.krefOf(r);
      if (kref === undefined || !/^ko\d+$/.test(kref)) throw new TypeError('release needs presences this host received from a vat, or refs from refOf');
      return kref;
    });
    // Instance kits stay held: instanceKit() hands them out again at any time.
    for (const [key, kit] of this.store.entries('h.kit.')) {
      const facet = krefs.find((k) => (kit as Capdata).slots.includes(k));
      if (facet) throw new TypeError(`${facet} is a facet of instance ${key.slice('h.kit.'.length)}'s kit, which the host keeps (instanceKit); it cannot be released`);
    }
    return new Promise((resolve, reject) =>
      this.runner.atBoundary(
        () => {
          try {
            resolve(this.kernel.inputs.releaseHostRefs(krefs));
          } catch (err) {
            reject(err);
            return;
          }
          this.runner.schedule();
        },
        () => reject(new Error('the host was closed before release')),
      ),
    );
  }

  /** The presence for a reference from refOf; TypeError if this store has no such object. */
  presence(ref: string): object {
    this.assertOpen();
    if (typeof ref !== 'string' || !/^ko\d+$/.test(ref) || this.kernel.state.objectOwner(ref) === undefined) {
      throw new TypeError(`no object ${JSON.stringify(ref)} on this host (references look like ko12, from refOf)`);
    }
    return this.marshal.presence(ref);
  }

  /** The interface name its vat gave an object ("Alleged: Counter"), if a message carried it in this process. */
  interfaceOf(presence: unknown): string | undefined {
    const kref = this.marshal.krefOf(presence);
    return kref === undefined ? undefined : this.marshal.interfaceOf(kref);
  }

  /** sha256 over the committed store and every vat's memory image. */
  stateHash(): string {
    this.assertOpen();
    // Between cranks of a running block: its finished cranks are committed first.
    if (this.store.dirty) this.kernel.commit();
    const h = crypto.createHash('sha256').update(this.store.stateHash());
    for (const vat of this.kernel.vatIds()) h.update(`${vat}:${this.kernel.vatMemoryHash(vat)}`);
    return h.digest('hex');
  }

  /** Capdata for a passable value (presences become krefs): how the replicated log carries values. */
  toCapdata(value: unknown): Capdata {
    return this.serialize(value);
  }

  /** The value of capdata from toCapdata or a vat, with presences for krefs. */
  fromCapdata(data: Capdata): unknown {
    return this.marshal.unserialize(data);
  }

  /**
   * Writes every committed entry of the store to `file`, with the replica
   * height and state hash (issue #15): a new replica joins from it
   * (`replicate.importFrom`). Between blocks only: it refuses while cranks
   * wait uncommitted.
   */
  exportState(file: string): ExportMeta & { entries: number; bytes: number } {
    this.assertOpen();
    if (this.store.dirty) throw new Error('the host has uncommitted work; run() its block first, then export');
    const binding = this.store.get(CLUSTER_BINDING_KEY) as { cluster: string; genesis: string } | undefined;
    return writeStateExport(this.store, file, {
      height: (this.store.get('replica.height') as number | undefined) ?? 0,
      stateHash: this.stateHash(),
      ...(binding ? { cluster: { name: binding.cluster, genesis: binding.genesis } } : {}),
    });
  }

  // ---------------------------------------------------------------- running

  /**
   * Runs one block under `policy` (defaults: run-policy.ts): cranks until
   * nothing is runnable or a limit is reached, yielding to the event loop
   * between cranks, then one commit. Resolves with what the block did. With
   * autoRun on, this waits its turn behind the background runner's block.
   */
  async run(policy?: RunPolicy): Promise<BlockReport> {
    this.assertOpen();
    return this.runner.runBlock(policy);
  }

  /**
   * Suspends an instance or vat (SPEC extension, issue #10): messages to it
   * wait in the run queue; `resume` runs them. It can still be upgraded.
   * Survives restart.
   */
  suspend(instance: object | string, reason?: string): void {
    this.assertOpen();
    this.kernel.suspendVat(this.vatOf(instance), reason);
  }

  resume(instance: object | string): void {
    this.assertOpen();
    this.kernel.resumeVat(this.vatOf(instance));
    this.runner.schedule();
  }

  /**
   * Per-vat counters for operators: deliveries, meter units used, aborted
   * deliveries and meter faults, messages waiting for it (`queued`), messages
   * it sent that are still waiting (`queueShare`), and whether it is suspended.
   */
  vatStats(instance: object | string): ReturnType<Kernel['vatStats']> & { suspendedBecause?: string } {
    this.assertOpen();
    const vat = this.vatOf(instance);
    const reason = this.kernel.suspensionOf(vat);
    return { ...this.kernel.vatStats(vat), ...(reason ? { suspendedBecause: reason } : {}) };
  }

  protected vatOf(instance: object | string): string {
    if (typeof instance === 'string') {
      this.kernel.vatRecord(instance);
      return instance;
    }
    return this.adminVat(instance);
  }

  /** Stops the background runner after its current crank, commits what ran, and closes the store. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.replica?.stop();
    await this.runner.stop();
    this.kernel.commit();
    // Their messages stay queued (and run after the next open); this process will not hear the answers.
    this.kernel.abandonWaiters('the host was closed before this message was answered; it stays queued and runs when the store is opened again');
    this.kernel.dropAllSandboxes();
    await this.store.close();
  }

  protected assertOpen(): void {
    if (this.closed) throw new Error('host is closed');
  }
}
