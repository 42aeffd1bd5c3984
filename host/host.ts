// The host: the Node-side owner of the store, the kernel and every vat, and
// the API code outside any vat uses to talk to them.
import crypto from 'node:crypto';
import { bundleFromSource, bundleId } from './bundles/vat-bundle.js';
import { Kernel, type KernelOptions, type VatBundle } from './kernel/kernel.js';
import type { Capdata, Kref } from './kernel/refs.js';
import { makeHostMarshal, type HostMarshal } from './marshal/host-marshal.js';
import { harden } from './marshal/endo.js';
import { Store } from './store/index.js';

export interface HostOptions extends KernelOptions {
  /** LMDB directory; omitted = a temporary store removed on close. */
  readonly path?: string;
}

type Eventual<T> = { [K in keyof T]: (...args: any[]) => Promise<any> } & Record<string, (...args: any[]) => Promise<any>>;

export class Host {
  private closed = false;
  private readonly marshal: HostMarshal;

  private constructor(
    readonly store: Store,
    readonly kernel: Kernel,
  ) {
    this.marshal = makeHostMarshal((kp) => this.promiseFor(kp));
  }

  /** Opens (or creates) a host; after a crash, every vat comes back at its last committed state. */
  static async open(options: HostOptions = {}): Promise<Host> {
    const store = Store.open({ path: options.path });
    let host: Host;
    try {
      host = new Host(store, new Kernel(store, options));
      // Work committed to the run queue before a crash or restart continues.
      host.kernel.run();
    } catch (err) {
      await store.close();
      throw err;
    }
    return host;
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

  private send(target: Kref, method: string, args: unknown[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.assertOpen();
      const data = this.marshal.serialize(harden(args));
      this.kernel.queueToKref(target, method, data, (rejected, result) => this.settle(resolve, reject, rejected, result));
      this.kernel.run();
    });
  }

  private settle(resolve: (v: unknown) => void, reject: (e: unknown) => void, rejected: boolean, data: Capdata): void {
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

  private promiseFor(kp: Kref): Promise<unknown> {
    return new Promise((resolve, reject) => this.kernel.waitFor(kp, (rejected, data) => this.settle(resolve, reject, rejected, data)));
  }

  /**
   * Creates a vat from a bundle (or the source text of one ES module) whose
   * entry exports buildRootObject; returns the root object's presence.
   */
  createVat(bundleOrSource: VatBundle | string, options: { name?: string; vatParameters?: unknown; budget?: bigint } = {}): { vatId: string; root: object } {
    this.assertOpen();
    const bundle = typeof bundleOrSource === 'string' ? bundleFromSource(bundleOrSource, `${options.name ?? 'vat'}.js`) : bundleOrSource;
    const { vat, root } = this.kernel.createVat(bundleId(bundle), bundle, {
      name: options.name,
      budget: options.budget,
      vatParameters: this.marshal.serialize(harden(options.vatParameters ?? null)),
    });
    return { vatId: vat, root: this.marshal.presence(root) };
  }

  /** Every vat, in creation order, with its root object's presence. */
  vats(): { vatId: string; name: string; root: object | undefined }[] {
    this.assertOpen();
    return this.kernel.vatIds().map((vatId) => {
      const r = this.kernel.vatRecord(vatId);
      return { vatId, name: r.name, root: r.root ? this.marshal.presence(r.root) : undefined };
    });
  }

  /** Presence for a kernel object reference (for tools and tests). */
  presence(kref: Kref): object {
    return this.marshal.presence(kref);
  }

  /** sha256 over the committed store and every vat's memory image. */
  stateHash(): string {
    this.assertOpen();
    const h = crypto.createHash('sha256').update(this.store.stateHash());
    for (const vat of this.kernel.vatIds()) h.update(`${vat}:${this.kernel.vatMemoryHash(vat)}`);
    return h.digest('hex');
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.kernel.dropAllSandboxes();
    await this.store.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('host is closed');
  }
}
