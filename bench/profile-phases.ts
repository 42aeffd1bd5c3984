// Wall time per phase for the profiling drivers (not part of `npm run bench`):
// wraps methods of prototypes or classes and sums the time spent in them.
// Nested phases are counted in their parents too.
const phases = new Map<string, number>();

/** Times every later call of `owner[name]` under `label`, for each [owner, name, label]. */
export function timePhases(list: readonly (readonly [object, string, string])[]): void {
  for (const [owner, name, label] of list) timed(owner as Record<string, unknown>, name, label);
}

function timed(owner: Record<string, unknown>, name: string, label: string): void {
  const original = owner[name] as (...a: unknown[]) => unknown;
  owner[name] = function (this: unknown, ...a: unknown[]) {
    const t = performance.now();
    try {
      return original.apply(this, a);
    } finally {
      phases.set(label, (phases.get(label) ?? 0) + performance.now() - t);
    }
  };
}

/** Prints each phase's mean per round (ms) and clears the sums. */
export function printPhases(rounds: number): void {
  for (const [label, ms] of phases) console.log(`  ${(ms / rounds).toFixed(2).padStart(6)} ms  ${label}`);
  phases.clear();
}
