// Starting vats and replacing their code: vat creation from the base image,
// instances forked from a zygote, and upgrades (a new incarnation in a fresh
// sandbox that reconnects to durable state). Each runs inside a crank the
// kernel opened; a throw leaves that crank to be rolled back.
import type { Sandbox } from '../engine/index.js';
import type { Kernel, VatBundle } from './kernel.js';
import type { VatRecord } from './kernel-state.js';
import { isKpid, type Capdata, type Kref, type VatId } from './refs.js';
import { upgradeDisconnectionData } from './upgrade-disconnection.js';
import { DeliveryFailed } from './vat-manager.js';
import { GC_PROTOCOL } from './gc.js';

export interface UpgradeOptions {
  readonly privateArgs?: Capdata;
  readonly vatParameters?: Capdata;
  readonly exits?: Record<string, unknown>;
  /** Told to everyone whose promise the upgrade disconnects (the record's upgradeMessage). */
  readonly upgradeMessage?: string;
  /** Checks run inside the upgrade's crank (pre-flight, issue 16); a throw from them aborts the upgrade. */
  readonly checks?: UpgradeChecks;
  /** Runs inside the upgrade's crank once the new incarnation is in place (the host's records). */
  readonly record?: () => void;
}

/**
 * Checks on a new incarnation, run inside the upgrade's crank so the upgrade
 * itself is the trial (issue 16): nothing commits unless they pass.
 */
export interface UpgradeChecks {
  /**
   * The new incarnation started; `sandbox` is its live sandbox, which must
   * be left as it is (inspect a clone). Throw to refuse the upgrade.
   */
  started(sandbox: Sandbox): void;
  /** The new incarnation did not start: the error the upgrade fails with instead of `err`. */
  failed(err: Error): Error;
}

const CLEANUP_PER_CRANK = 200;

export class Upgrader {
  constructor(private readonly k: Kernel) {}

  /** Allocates a vat record starting from the base image. */
  createVat(bundleId: string, bundle: VatBundle, options: { name?: string; budget?: bigint; role?: 'root' | 'zygote' }): VatId {
    const { state } = this.k;
    const base = this.k.baseImage();
    const vat = state.allocateVatId();
    const record: VatRecord = { ...this.k.newVatRecord(options.name ?? vat, base.id, options.role ?? 'root', options.budget), identity: vat, gc: GC_PROTOCOL };
    state.images.put(base.image);
    state.putBundle(bundleId, bundle);
    state.addVat(vat, record);
    return vat;
  }

  /** Delivers startVat to a vat createVat made, then snapshots it. */
  startCreatedVat(
    vat: VatId,
    bundleId: string,
    options: { vatParameters?: Capdata; exits?: Record<string, unknown> },
  ): { vat: VatId; root: Kref | undefined; result: Capdata | undefined } {
    const { state, translator } = this.k;
    const record = state.vat(vat);
    try {
      const vatParameters = translator.toVat(vat, options.vatParameters ?? { body: '#null', slots: [] });
      const role = record.role === 'zygote' ? 'zygote' : 'root';
      const start = { incarnation: 1, role, vatParameters, ...(options.exits ? { exits: options.exits } : {}) };
      const { result } = this.k.manager(vat).deliver(['startVat', bundleId, start], this.k.syscall);
      let root: Kref | undefined;
      if (role === 'root') {
        root = state.allocateObject(vat);
        state.addClist(vat, 'o+0', root);
        state.setVat(vat, { ...state.vat(vat), root });
      }
      this.k.manager(vat).snapshot();
      return { vat, root, result };
    } catch (err) {
      throw new Error(`vat ${record.name} failed to start: ${(err as Error).message}`, { cause: err });
    }
  }

  startInstance(zygote: VatId, options: { name?: string; context: Capdata; privateArgs: Capdata; budget?: bigint }, allocated: (vat: VatId) => void): { vat: VatId; kit: Capdata } {
    const { state, translator, store } = this.k;
    const z = state.vat(zygote);
    if (z.role !== 'zygote') throw new Error(`vat ${zygote} is not an installation zygote`);
    const vat = state.allocateVatId();
    allocated(vat);
    // The instance runs the zygote's runtime, and so speaks its GC protocol.
    state.addVat(vat, { ...this.k.newVatRecord(options.name ?? vat, z.imageId, 'contract', options.budget), identity: vat, ...(z.gc === undefined ? {} : { gc: z.gc }) });
    for (const [key, value] of this.k.vatstoreCopy(zygote)) store.set(state.vatstoreKey(vat, key), value);
    const context = translator.toVat(vat, options.context);
    const privateArgs = translator.toVat(vat, options.privateArgs);
    const { result } = this.k.manager(vat).deliver(['startInstance', context, privateArgs], this.k.syscall);
    if (!result) throw new DeliveryFailed('startInstance returned no kit');
    const kit = translator.fromVat(vat, result);
    this.k.manager(vat).snapshotIfDue();
    return { vat, kit };
  }

  /**
   * The new incarnation starts from the base image, reconnects to its durable
   * state and must redefine every durable kind. On success: promises the old
   * incarnation decided are rejected, its non-durable exports break, and its
   * non-durable vatstore data is queued for deletion a bounded amount per crank.
   */
  upgrade(vat: VatId, bundleId: string, bundle: VatBundle, options: UpgradeOptions): { incarnation: number } {
    const { state, translator } = this.k;
    const record = state.vat(vat);
    if (record.role === 'zygote') throw new Error(`vat ${vat} is an installation zygote; upgrade its instances`);
    const base = this.k.baseImage();
    const incarnation = record.incarnation + 1;
    const manager = this.k.manager(vat);
    // The old incarnation's heap is not needed: the new one starts from the
    // base image. If its sandbox is loaded it keeps serving should this fail.
    state.images.put(base.image);
    state.putBundle(bundleId, bundle);
    const opts: Record<string, unknown> = { incarnation, role: record.role === 'contract' ? 'upgrade' : 'root' };
    if (options.privateArgs) opts.privateArgs = translator.toVat(vat, options.privateArgs);
    if (options.vatParameters) opts.vatParameters = translator.toVat(vat, options.vatParameters);
    if (options.exits) opts.exits = options.exits;
    // Imports only the old incarnation's heap held would otherwise stay in
    // the c-list for good: the new incarnation's GC releases those it does
    // not reach again (through durable data) or recognise (durable weak keys).
    const imports = this.importsOf(vat);
    if (imports.length > 0) opts.imports = imports;
    // The checks run on the started sandbox before it replaces the old one,
    // which keeps serving if they refuse (break16 #2).
    let refused: Error | undefined;
    const check = (started: Sandbox) => {
      try {
        options.checks?.started(started);
      } catch (err) {
        refused = err as Error;
        throw err;
      }
    };
    try {
      manager.startIncarnation(base.id, base.image, `${vat}#${incarnation}`, incarnation, ['startVat', bundleId, opts], this.k.syscall, check);
    } catch (err) {
      if (refused) throw refused;
      throw options.checks ? options.checks.failed(err as Error) : err;
    }
    try {
      state.setVat(vat, { ...state.vat(vat), gc: GC_PROTOCOL });
      const message =
        options.upgradeMessage ?? `its vat was upgraded to incarnation ${incarnation}; this promise from incarnation ${record.incarnation} was disconnected`;
      this.disconnectOldIncarnation(vat, record.incarnation, incarnation, record.role === 'root', message);
      // No snapshot here: the vat record names the base image and the start-up
      // delivery is the first transcript entry, so the vat's snapshot policy
      // takes the first image of this incarnation when one falls due.
      manager.snapshotIfDue();
      options.record?.();
    } catch (err) {
      // The crank is rolled back to the old incarnation: its sandbox reloads when next needed.
      manager.drop();
      throw err;
    }
    return { incarnation };
  }

  private importsOf(vat: VatId): string[] {
    const prefix = `k.c.${vat}.v.o-`;
    return [...this.k.store.entries(prefix)].map(([key]) => key.slice(`k.c.${vat}.v.`.length));
  }

  // Promises the old incarnation decided can never be resolved by it now;
  // its heap and virtual objects are gone. Durable objects (o+d…) and
  // imports keep their c-list entries and so their identities. The rejection
  // is Agoric's upgrade disconnection record (issue #11). A decided promise
  // the new incarnation subscribed to (a durable watch) keeps its c-list
  // entry, so the rejection reaches the new incarnation.
  private disconnectOldIncarnation(vat: VatId, oldIncarnation: number, incarnation: number, keepRoot: boolean, upgradeMessage: string): void {
    const { state, store } = this.k;
    const prefix = `k.c.${vat}.v.`;
    const entries = [...store.entries(prefix)];
    for (const [key, kref] of entries) {
      const vref = key.slice(prefix.length);
      const k = kref as Kref;
      if (vref.startsWith('o+d') || vref.startsWith('o-')) continue;
      if (vref === 'o+0' && keepRoot) continue;
      if (vref.startsWith('o+')) {
        state.removeClist(vat, vref, k);
        state.orphanObject(k, `this object was a non-durable object of its vat; it was discarded when that vat was upgraded to incarnation ${incarnation}`);
      } else if (isKpid(k)) {
        const p = state.promise(k);
        if (p.state === 'unresolved' && p.decider === vat) {
          if (!p.subscribers.includes(vat)) state.removeClist(vat, vref, k);
          this.k.resolveKernelPromise(k, true, upgradeDisconnectionData(upgradeMessage, incarnation));
        }
      }
    }
    state.queueCleanup(vat, state.vatstoreKey(vat, `v${oldIncarnation}.`));
  }

  /**
   * Deletes up to `limit` keys of data an upgrade left behind, starting after
   * the last key it deleted (so a block of cranks never walks the same deleted
   * keys again); part of the current crank. Returns how many it deleted.
   */
  cleanupStep(limit = CLEANUP_PER_CRANK): number {
    const { state, store } = this.k;
    const pending = state.pendingCleanup();
    if (pending.length === 0) return 0;
    const [vat, prefix] = pending[0];
    let deleted = 0;
    let key = store.getNextKey(prefix, state.cleanupCursor());
    let last: string | undefined;
    while (key !== undefined && deleted < limit) {
      store.delete(key);
      deleted++;
      last = key;
      key = store.getNextKey(prefix, key);
    }
    if (key === undefined) {
      state.finishCleanup(vat, prefix);
      state.setCleanupCursor(undefined);
    } else {
      state.setCleanupCursor(last);
    }
    return deleted;
  }

  /** Keys still waiting for deletion after upgrades. */
  pendingCleanupKeys(): number {
    const { state, store } = this.k;
    let n = 0;
    for (const [, prefix] of state.pendingCleanup()) for (const _ of store.entries(prefix)) n++;
    return n;
  }
}
