// A throwaway copy of a vat for pre-flight checks and shadows: its own
// sandbox and an in-memory copy of the vatstore, so nothing it does reaches
// the live vat, the kernel or the store. Its sends go nowhere; its
// resolutions are captured for comparison.
import { Sandbox, type SnapshotImage } from '../engine/index.js';
import type { Capdata } from '../kernel/refs.js';
import { DISPATCH, parseReply } from '../kernel/vat-manager.js';
import { compareKeys } from '../store/index.js';

export interface TrialOutcome {
  readonly ok: boolean;
  readonly error?: string;
  readonly result?: Capdata;
  /** Resolutions the trial vat made in this delivery: vpid -> [rejected, data]. */
  readonly resolutions: Map<string, [boolean, Capdata]>;
}

export class TrialVat {
  private readonly vatstore: Map<string, string>;
  private sortedKeys: string[] | null = null;
  private sandbox: Sandbox;

  constructor(
    image: SnapshotImage,
    identity: string | undefined,
    vatstore: Iterable<[string, string]>,
    private readonly budget: bigint,
  ) {
    this.vatstore = new Map(vatstore);
    this.sandbox = Sandbox.restore(image, { identity });
  }

  /** Delivers one vat-space delivery; never throws for a guest failure. */
  deliver(delivery: unknown): TrialOutcome {
    const resolutions = new Map<string, [boolean, Capdata]>();
    if (!this.sandbox.alive) return { ok: false, error: 'the trial vat was discarded after an earlier trap', resolutions };
    this.sandbox.onSyscall = (request) => this.syscall(request, resolutions);
    try {
      const reply = parseReply('(trial)', this.sandbox.call(DISPATCH, JSON.stringify(delivery), { budget: this.budget }));
      if (!reply.ok) return { ok: false, error: reply.error, resolutions };
      return { ok: true, result: reply.result, resolutions };
    } catch (err) {
      return { ok: false, error: (err as Error).message, resolutions };
    } finally {
      this.sandbox.onSyscall = null;
    }
  }

  dispose(): void {
    this.sandbox.dispose();
  }

  private keys(): string[] {
    this.sortedKeys ??= [...this.vatstore.keys()].sort(compareKeys);
    return this.sortedKeys;
  }

  private syscall(request: string, resolutions: Map<string, [boolean, Capdata]>): string {
    const [op, ...a] = JSON.parse(request) as [string, ...unknown[]];
    switch (op) {
      case 'vatstoreGet': {
        const v = this.vatstore.get(a[0] as string);
        return v === undefined ? '' : JSON.stringify(v);
      }
      case 'vatstoreSet':
        if (!this.vatstore.has(a[0] as string)) this.sortedKeys = null;
        this.vatstore.set(a[0] as string, a[1] as string);
        return '';
      case 'vatstoreDelete':
        if (this.vatstore.delete(a[0] as string)) this.sortedKeys = null;
        return '';
      case 'vatstoreGetNextKey': {
        // Binary search for the first key after the prior one, in store order.
        const keys = this.keys();
        const prior = a[0] as string;
        let lo = 0;
        let hi = keys.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (compareKeys(keys[mid], prior) <= 0) lo = mid + 1;
          else hi = mid;
        }
        return lo < keys.length ? JSON.stringify(keys[lo]) : '';
      }
      case 'resolve':
        for (const [vpid, rejected, data] of a[0] as [string, boolean, Capdata][]) resolutions.set(vpid, [rejected, data]);
        return '';
      // Sends and subscriptions go nowhere: a trial has no effects.
      case 'send':
      case 'subscribe':
      case 'log':
      case 'dropImports':
      case 'retireImports':
        return '';
      default:
        throw new Error(`trial vat made an unknown syscall ${JSON.stringify(op)}`);
    }
  }
}
