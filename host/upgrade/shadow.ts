// Shadow validation (SPEC §5.6): a trial vat running the proposed version
// receives every delivery the live vat receives after the shadow starts; its
// effects go nowhere; every answer that differs from the live one is kept.
import { errorData } from '../kernel/kernel.js';
import type { Capdata, Kref } from '../kernel/refs.js';
import type { TrialVat } from './trial-vat.js';

export interface ShadowDifference {
  readonly target: string;
  readonly method: string;
  readonly args: unknown;
  readonly live: unknown;
  readonly shadow: unknown;
}

export interface ShadowReport {
  readonly deliveries: number;
  /** The first MAX_KEPT differences (all of them, in the usual case). */
  readonly differences: readonly ShadowDifference[];
  /** Differences found beyond those kept. */
  readonly differencesNotKept?: number;
}

// A long shadow of a version that diverges early would otherwise grow without bound.
const MAX_KEPT = 10_000;

export type Answer = { rejected: boolean; data: Capdata };

/** Equal answers: same settlement, same body, same references. */
export function sameAnswer(a: Answer, b: Answer): boolean {
  return a.rejected === b.rejected && a.data.body === b.data.body && a.data.slots.length === b.data.slots.length && a.data.slots.every((s, i) => s === b.data.slots[i]);
}

/** An answer as people read it: the value, or { rejected: "Name: message" }. */
export function showAnswer(decode: (data: Capdata) => unknown, a: Answer): unknown {
  const value = decode(a.data);
  return a.rejected ? { rejected: value instanceof Error ? `${value.name}: ${value.message}` : value } : value;
}
type Pending = { target: string; method: string; args: Capdata; live?: Answer; shadow?: Answer };

export class Shadow {
  private deliveries = 0;
  private readonly differences: ShadowDifference[] = [];
  private notKept = 0;
  private readonly pending = new Map<string, Pending>();
  /** Called with each difference as it is found (for `quickvat shadow` live output). */
  onDifference: ((d: ShadowDifference) => void) | null = null;

  constructor(
    readonly vat: string,
    private readonly trial: TrialVat,
    private readonly decode: (data: Capdata) => unknown,
    private readonly krefOf: (vref: string) => Kref | undefined,
  ) {}

  /** The live vat just committed `delivery`, making `liveSyscalls`; run it on the shadow too. */
  observe(delivery: unknown, liveSyscalls: readonly (readonly [string, string])[]): void {
    const d = delivery as unknown[];
    if (d[0] === 'deliver') {
      this.deliveries++;
      const result = d[4] as string | null;
      if (result !== null) this.pending.set(result, { target: this.krefOf(d[1] as string) ?? (d[1] as string), method: d[2] as string, args: d[3] as Capdata });
    }
    for (const [request] of liveSyscalls) {
      const parsed = JSON.parse(request) as unknown[];
      if (parsed[0] !== 'resolve') continue;
      for (const [vpid, rejected, data] of parsed[1] as [string, boolean, Capdata][]) this.answer(vpid, 'live', { rejected, data });
    }
    const outcome = this.trial.deliver(delivery);
    for (const [vpid, [rejected, data]] of outcome.resolutions) this.answer(vpid, 'shadow', { rejected, data });
    if (!outcome.ok && d[0] === 'deliver' && d[4]) {
      this.answer(d[4] as string, 'shadow', { rejected: true, data: errorData(outcome.error ?? 'failed') });
    }
  }

  private answer(vpid: string, side: 'live' | 'shadow', a: Answer): void {
    const p = this.pending.get(vpid);
    if (!p || p[side]) return;
    p[side] = a;
    if (!p.live || !p.shadow) return;
    this.pending.delete(vpid);
    if (sameAnswer(p.live, p.shadow)) return;
    const difference = {
      target: p.target,
      method: p.method,
      args: this.decode(p.args),
      live: showAnswer(this.decode, p.live),
      shadow: showAnswer(this.decode, p.shadow),
    };
    if (this.differences.length < MAX_KEPT) this.differences.push(difference);
    else this.notKept++;
    this.onDifference?.(difference);
  }

  report(): ShadowReport {
    const report = { deliveries: this.deliveries, differences: [...this.differences] };
    return this.notKept > 0 ? { ...report, differencesNotKept: this.notKept } : report;
  }

  dispose(): void {
    this.trial.dispose();
  }
}
