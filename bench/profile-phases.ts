// Time per phase for the profiling drivers (not part of `npm run bench`):
// wraps methods of prototypes or classes and sums the wall time and the CPU
// time of this process (all threads) spent in them; on a shared machine the
// CPU column is the one to read. Nested phases are counted in their parents too.
const phases = new Map<string, { wall: number; cpu: number }>();

/** Times every later call of `owner[name]` under `label`, for each [owner, name, label]. */
export function timePhases(list: readonly (readonly [object, string, string])[]): void {
  for (const [owner, name, label] of list) timed(owner as Record<string, unknown>, name, label);
}

function timed(owner: Record<string, unknown>, name: string, label: string): void {
  const original = owner[name] as (...a: unknown[]) => unknown;
  owner[name] = function (this: unknown, ...a: unknown[]) {
    const c = process.cpuUsage();
    const t = performance.now();
    try {
      return original.apply(this, a);
    } finally {
      const d = process.cpuUsage(c);
      const p = phases.get(label) ?? { wall: 0, cpu: 0 };
      p.wall += performance.now() - t;
      p.cpu += (d.user + d.system) / 1000;
      phases.set(label, p);
    }
  };
}

/** Prints each phase's mean per round (ms, wall and CPU) and clears the sums. */
export function printPhases(rounds: number): void {
  for (const [label, p] of phases) console.log(`  ${(p.wall / rounds).toFixed(2).padStart(6)} ms wall ${(p.cpu / rounds).toFixed(2).padStart(6)} ms CPU  ${label}`);
  phases.clear();
}
