// Shared benchmark plumbing: run benchmark.js cases in one suite and print
// each against a baseline measured in the same run.
import Benchmark from 'benchmark';

export interface Case {
  readonly name: string;
  /** Synchronous work, or (with defer) work that calls done() when finished. */
  readonly fn: (() => void) | ((done: () => void) => void);
  readonly defer?: boolean;
}

export interface Measured {
  readonly name: string;
  readonly hz: number;
  readonly meanMs: number;
  readonly rme: number;
  readonly samples: number;
}

const OPTIONS = { minSamples: 10, maxTime: 4, initCount: 1 };

export function measure(cases: readonly Case[]): Promise<Measured[]> {
  const suite = new Benchmark.Suite();
  for (const c of cases) {
    if (c.defer) {
      const fn = c.fn as (done: () => void) => void;
      suite.add(c.name, (deferred: { resolve(): void }) => fn(() => deferred.resolve()), { ...OPTIONS, defer: true });
    } else {
      suite.add(c.name, c.fn as () => void, OPTIONS);
    }
  }
  const results: Measured[] = [];
  suite.on('cycle', (event: Benchmark.Event) => {
    const b = event.target as unknown as Benchmark & { name: string; error?: Error };
    if (b.error) throw b.error;
    results.push({ name: b.name, hz: b.hz, meanMs: b.stats.mean * 1000, rme: b.stats.rme, samples: b.stats.sample.length });
    process.stderr.write(`  measured ${b.name}: ${(b.stats.mean * 1000).toFixed(3)} ms ±${b.stats.rme.toFixed(1)}%\n`);
  });
  return new Promise((resolve, reject) => {
    suite.on('complete', () => resolve(results));
    suite.on('error', (e: Benchmark.Event) => reject((e.target as unknown as { error: Error }).error));
    suite.run({ async: true });
  });
}

/** Prints "candidate: x ms, baseline: y ms, ratio" and returns baseline/candidate (speed-up). */
export async function compare(title: string, baseline: Case, candidate: Case): Promise<number> {
  const [base, cand] = await measure([baseline, candidate]);
  const speedup = cand.hz / base.hz;
  console.log(`${title}`);
  console.log(`  ${base.name.padEnd(44)} ${fmtMs(base.meanMs)}  (±${base.rme.toFixed(1)}%, ${base.samples} runs)`);
  console.log(`  ${cand.name.padEnd(44)} ${fmtMs(cand.meanMs)}  (±${cand.rme.toFixed(1)}%, ${cand.samples} runs)`);
  console.log(`  rate: ${cand.hz.toFixed(0)}/s vs ${base.hz.toFixed(0)}/s`);
  console.log(`  ratio: ${speedup >= 1 ? `${speedup.toFixed(2)}x faster` : `${(1 / speedup).toFixed(2)}x slower`} (${cand.name} vs ${base.name})`);
  return speedup;
}

/**
 * Like compare, for synchronous work on a shared, noisy machine: the two
 * cases alternate in ABBA order for `rounds` rounds and their medians are
 * compared, so a change of load during the run hits both alike.
 * Returns baseline/candidate (speed-up).
 */
export function compareInterleaved(title: string, baseline: Case, candidate: Case, rounds = 40): number {
  const times: [number[], number[]] = [[], []];
  const time = (i: 0 | 1) => {
    const t = performance.now();
    ((i === 0 ? baseline : candidate).fn as () => void)();
    times[i].push(performance.now() - t);
  };
  for (let r = 0; r < rounds; r++) for (const i of [0, 1, 1, 0] as const) time(i);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const [base, cand] = times.map(median);
  const speedup = base / cand;
  console.log(`${title}`);
  console.log(`  ${baseline.name.padEnd(44)} ${fmtMs(base)}  (median of ${times[0].length}, interleaved)`);
  console.log(`  ${candidate.name.padEnd(44)} ${fmtMs(cand)}  (median of ${times[1].length}, interleaved)`);
  console.log(`  ratio: ${speedup >= 1 ? `${speedup.toFixed(2)}x faster` : `${(1 / speedup).toFixed(2)}x slower`} (${candidate.name} vs ${baseline.name})`);
  return speedup;
}

/** Median wall time and median CPU time of this process (all its threads) of one operation, in ms. */
export interface Timing {
  readonly wall: number;
  readonly cpu: number;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/**
 * Times operations (sync or async) alternately in ABBA order (A B B A, ...)
 * for `rounds` rounds, each one after `idleMs` of idle time (as requests
 * arrive in practice; the instance pool refills in idle turns), and returns
 * each one's median wall and CPU time. On a shared machine a change of load
 * during the run hits all of them alike, so their ratios hold; the CPU
 * column says what the wall time would be without other processes.
 * `fns[i](k)` gets how many times it ran before. `repeats[i]` (default 1)
 * runs operation i that many times per turn, each timed: a cheap operation
 * after a costly one (a fork after a cold start) otherwise always pays the
 * costly one's garbage collection.
 */
export async function alternate(fns: readonly ((k: number) => unknown)[], rounds: number, idleMs = 20, repeats: readonly number[] = []): Promise<Timing[]> {
  const wall: number[][] = fns.map(() => []);
  const cpu: number[][] = fns.map(() => []);
  const order = fns.map((_, i) => i);
  const once = async (i: number) => {
    if (idleMs > 0) await new Promise((res) => setTimeout(res, idleMs));
    const c = process.cpuUsage();
    const t = performance.now();
    await fns[i](wall[i].length);
    wall[i].push(performance.now() - t);
    const d = process.cpuUsage(c);
    cpu[i].push((d.user + d.system) / 1000);
  };
  for (let r = 0; r < rounds; r++) {
    for (const i of r % 2 === 0 ? order : [...order].reverse()) {
      for (let n = 0; n < (repeats[i] ?? 1); n++) await once(i);
    }
  }
  return fns.map((_, i) => ({ wall: median(wall[i]), cpu: median(cpu[i]) }));
}

export function fmtTiming(t: Timing): string {
  return `${fmtMs(t.wall)} (CPU ${fmtMs(t.cpu)})`;
}

export function fmtMs(ms: number): string {
  return ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(1)} us`;
}

export function fmtBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

export function verdict(label: string, ok: boolean, detail: string): void {
  console.log(`  target ${label}: ${ok ? 'MET' : 'MISSED'} (${detail})`);
}
