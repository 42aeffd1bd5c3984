// A throwaway copy of a vat for pre-flight checks and shadows: its own
// sandbox and a private overlay on the vat's vatstore, so nothing it does
// reaches the live vat, the kernel or the store. Its sends go nowhere; its
// resolutions are captured for comparison.
//
// A trial runs under the live vat's limits (issue 13): the same sandbox
// options (memory), the same compute budget per delivery, the same checks on
// every syscall argument (key and value sizes, reference and capdata shapes)
// and the same meter charge per syscall (per call, per byte, per deleted key
// a getNextKey steps over). A syscall the kernel would refuse fails the trial's
// delivery exactly as it would abort the live crank, so a pre-flight verdict
// is the verdict the real upgrade gets.
import { Sandbox, type SandboxOptions, type SnapshotImage } from '../engine/index.js';
import { assertCapdata, assertString, assertVref, type Capdata } from '../kernel/refs.js';
import { checkVatstoreKey, checkVatstoreWrites, SYSCALL_COST, syscallCost } from '../kernel/syscalls.js';
import { collectsCycles, DISPATCH, parseReply } from '../kernel/vat-manager.js';
import { compareKeys } from '../store/index.js';
import { upgradeReason } from './upgrade-error.js';

export interface TrialOutcome {
  readonly ok: boolean;
  readonly error?: string;
  readonly result?: Capdata;
  /** Resolutions the trial vat made in this delivery: vpid -> [rejected, data]. */
  readonly resolutions: Map<string, [boolean, Capdata]>;
}

/**
 * The vatstore a trial starts from, read-only: keys are the vat's own (no
 * kernel prefix), `nextKey` returns the first key after `prior` in store order.
 */
export interface VatstoreView {
  get(key: string): string | undefined;
  nextKey(prior: string): string | undefined;
}

/** A frozen copy of a vatstore, for trials that outlive the moment (shadows see later live writes otherwise). */
export function copiedVatstore(entries: Iterable<[string, string]>): VatstoreView {
  const map = new Map(entries);
  const keys = [...map.keys()].sort(compareKeys);
  return { get: (key) => map.get(key), nextKey: (prior) => keys[firstAfter(keys, prior)] };
}

function firstAfter(sorted: readonly string[], prior: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareKeys(sorted[mid], prior) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class TrialVat {
  /** The trial's own writes: a value, or null for a delete. */
  private readonly overlay = new Map<string, string | null>();
  private sortedOverlay: string[] | null = null;
  /** Deleted keys the last nextKey stepped over (charged as the kernel charges its store's). */
  private scanSteps = 0;
  /** Writes the last vatstoreWrites made (charged as the kernel charges them). */
  private writes = 0;

  /**
   * A trial on `sandbox`, which it owns from now on (dispose() disposes it).
   * `budget` is the compute units each delivery may use.
   */
  constructor(
    private readonly sandbox: Sandbox,
    private readonly base: VatstoreView,
    private readonly budget: bigint,
  ) {}

  /** A trial on a fresh sandbox restored from `image`. */
  static restore(image: SnapshotImage, identity: string | undefined, base: VatstoreView, budget: bigint, sandboxOptions: SandboxOptions = {}): TrialVat {
    return new TrialVat(Sandbox.restore(image, { ...sandboxOptions, identity }), base, budget);
  }

  /** Delivers one vat-space delivery; never throws for a guest failure. */
  deliver(delivery: unknown): TrialOutcome {
    const resolutions = new Map<string, [boolean, Capdata]>();
    if (!this.sandbox.alive) return { ok: false, error: 'the trial vat was discarded after an earlier trap', resolutions };
    // As in the live kernel, a refused syscall fails the whole delivery even if the guest catches it.
    let illegal: Error | null = null;
    this.sandbox.onSyscall = (request) => {
      try {
        this.scanSteps = 0;
        this.writes = 0;
        const reply = this.syscall(request, resolutions);
        this.sandbox.charge(syscallCost(request.length + reply.length, SYSCALL_COST.perScanStep * BigInt(this.scanSteps) + SYSCALL_COST.perWrite * BigInt(this.writes)));
        return reply;
      } catch (err) {
        illegal ??= err as Error;
        throw err;
      }
    };
    try {
      // As the live vat does, so a shadow's GC points see the same heap.
      if (collectsCycles(delivery)) this.sandbox.collectAtNextAllocation();
      const reply = parseReply('(trial)', this.sandbox.call(DISPATCH, JSON.stringify(delivery), { budget: this.budget }));
      if (illegal) return { ok: false, error: (illegal as Error).message, resolutions };
      if (!reply.ok) return { ok: false, error: reply.error, resolutions };
      return { ok: true, result: reply.result, resolutions };
    } catch (err) {
      return { ok: false, error: illegal ? (illegal as Error).message : upgradeReason(err as Error), resolutions };
    } finally {
      this.sandbox.onSyscall = null;
    }
  }

  dispose(): void {
    this.sandbox.dispose();
  }

  private get(key: string): string | undefined {
    const own = this.overlay.get(key);
    if (own !== undefined) return own ?? undefined;
    return this.base.get(key);
  }

  private write(key: string, value: string | null): void {
    if (!this.overlay.has(key)) this.sortedOverlay = null;
    this.overlay.set(key, value);
  }

  private nextKey(prior: string): string | undefined {
    let fromBase = this.base.nextKey(prior);
    while (fromBase !== undefined && this.overlay.get(fromBase) === null) {
      this.scanSteps++;
      fromBase = this.base.nextKey(fromBase);
    }
    this.sortedOverlay ??= [...this.overlay.keys()].sort(compareKeys);
    const own = this.sortedOverlay;
    let i = firstAfter(own, prior);
    while (i < own.length && this.overlay.get(own[i]) === null) i++;
    const fromOverlay = own[i];
    if (fromOverlay === undefined) return fromBase;
    if (fromBase === undefined) return fromOverlay;
    return compareKeys(fromOverlay, fromBase) <= 0 ? fromOverlay : fromBase;
  }

  private syscall(request: string, resolutions: Map<string, [boolean, Capdata]>): string {
    let parsed: unknown;
    try {
      parsed = JSON.parse(request);
    } catch {
      throw new Error('the vat made a syscall that is not JSON');
    }
    if (!Array.isArray(parsed) || typeof parsed[0] !== 'string') throw new Error('the vat made a malformed syscall');
    const [op, ...a] = parsed as [string, ...unknown[]];
    // The kernel's own checks (syscalls.ts), so a trial refuses exactly what the live crank would.
    const key = () => checkVatstoreKey(a[0]);
    switch (op) {
      case 'vatstoreGet': {
        const v = this.get(key());
        return v === undefined ? '' : JSON.stringify(v);
      }
      case 'vatstoreSet': {
        const k = key();
        this.write(k, assertString(a[1], `vatstore value for ${JSON.stringify(k.slice(0, 80))}`));
        return '';
      }
      case 'vatstoreDelete':
        this.write(key(), null);
        return '';
      case 'vatstoreWrites': {
        const writes = checkVatstoreWrites(a[0]);
        for (const [k, value] of writes) this.write(k, value);
        this.writes = writes.length;
        return '';
      }
      case 'vatstoreGetNextKey': {
        const next = this.nextKey(a[0] === '' ? '' : key());
        return next === undefined ? '' : JSON.stringify(next);
      }
      case 'resolve': {
        if (!Array.isArray(a[0]) || a[0].length === 0) throw new Error('resolve needs a non-empty list');
        for (const [i, r] of (a[0] as unknown[]).entries()) {
          if (!Array.isArray(r) || r.length !== 3 || typeof r[1] !== 'boolean') throw new Error(`resolution ${i} must be [vpid, rejected, capdata]`);
          resolutions.set(assertVref(r[0], `resolution ${i} promise`), [r[1], assertCapdata(r[2], `resolution ${i} data`)]);
        }
        return '';
      }
      // Sends and subscriptions go nowhere: a trial has no effects. Their
      // arguments are still checked as the kernel checks them.
      case 'send':
        assertVref(a[0], 'send target');
        assertString(a[1], 'method name', 1000);
        assertCapdata(a[2], 'send arguments');
        assertVref(a[3], 'send result');
        return '';
      case 'subscribe':
        assertVref(a[0], 'subscribe target');
        return '';
      case 'log':
        if (!/^[a-z]+$/.test(assertString(a[0], 'log level', 10))) throw new Error('a log level is a lower-case word (log, warn, error)');
        assertString(a[1], 'log text', 10_000);
        return '';
      // A trial's GC point reports dropped imports to nobody.
      case 'dropImports':
      case 'retireImports':
        if (!Array.isArray(a[0])) throw new Error(`${op} needs a list of imports`);
        return '';
      default:
        throw new Error(`the vat made an unknown syscall ${JSON.stringify(op)}`);
    }
  }
}
