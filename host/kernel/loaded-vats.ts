// The vats whose sandboxes are in memory. Every vat's state is in the store
// (image + transcript), so an idle vat's sandbox (16 MiB or more) can be
// dropped and rebuilt when next needed: at most `maxLoaded` stay loaded,
// least recently used first out, and a vat a shadow observes is never evicted.
import type { SandboxOptions } from '../engine/index.js';
import type { KernelState } from './kernel-state.js';
import type { VatId } from './refs.js';
import { VatManager } from './vat-manager.js';

export class LoadedVats {
  // Insertion order is recency: manager() moves a vat to the end.
  private readonly managers = new Map<VatId, VatManager>();

  constructor(
    private readonly state: KernelState,
    private readonly sandboxOptions: SandboxOptions,
    private readonly maxLoaded: number,
    /** Transcripts name bundles by id; the guest gets the bundle itself. */
    private readonly expandDelivery: (d: unknown) => unknown,
    private readonly pinned: (vat: VatId) => boolean,
  ) {}

  /** The vat's manager, marked most recently used. Throws for an unknown vat. */
  manager(vat: VatId): VatManager {
    let m = this.managers.get(vat);
    if (!m) {
      if (!this.state.hasVat(vat)) throw new Error(`no vat ${vat}`);
      m = new VatManager(vat, this.state, this.sandboxOptions, this.expandDelivery);
    }
    this.managers.delete(vat);
    this.managers.set(vat, m);
    return m;
  }

  forget(vat: VatId): void {
    this.managers.get(vat)?.drop();
    this.managers.delete(vat);
  }

  /** Drops least recently used sandboxes until at most maxLoaded are loaded. */
  evictIdle(): void {
    if (this.managers.size <= this.maxLoaded) return;
    let loaded = 0;
    for (const m of this.managers.values()) if (m.loaded) loaded++;
    for (const m of this.managers.values()) {
      if (loaded <= this.maxLoaded) break;
      if (m.loaded && !this.pinned(m.id)) {
        m.drop();
        loaded--;
      }
    }
  }

  isLoaded(vat: VatId): boolean {
    return this.managers.get(vat)?.loaded ?? false;
  }

  dropAll(): void {
    for (const m of this.managers.values()) m.drop();
  }
}
