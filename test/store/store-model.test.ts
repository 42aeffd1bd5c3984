// The store against a plain model, over long seeded random mixes of writes
// (some of them `fresh`), deletes, ordered reads, crank rollbacks and commits:
// what the write-behind buffer (held values, its ordered index, its crank
// journal, its fresh keys) returns must be what a naive map of the same
// history returns.
import assert from 'node:assert/strict';
import { compareKeys, Store } from '../../host/store/index.js';
import { prng } from '../prng.js';

type Model = Map<string, unknown>;

function nextKey(model: Model, prefix: string, after?: string): string | undefined {
  const from = after !== undefined && compareKeys(after, prefix) >= 0 ? after : undefined;
  let best: string | undefined;
  for (const key of model.keys()) {
    if (!key.startsWith(prefix)) continue;
    if (from !== undefined ? compareKeys(key, from) <= 0 : compareKeys(key, prefix) < 0) continue;
    if (best === undefined || compareKeys(key, best) < 0) best = key;
  }
  return best;
}

describe('store against a model', () => {
  for (const seed of [1, 2, 3, 4]) {
    it(`agrees over 4,000 random operations (seed ${seed})`, async () => {
      const rand = prng(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
      const keys = Array.from({ length: 40 }, (_, i) => `${pick(['a', 'b', 'ab', 'k.c', 'k.cc'])}.${i % 13}`);
      const values = (i: number): unknown => pick([i, `s${i}`, { n: i, list: [i, 'x'] }, [i, [i]], 10n ** BigInt(i % 30), -0, 'x\ud800', null, true]);
      const store = Store.open();
      let committed: Model = new Map();
      let block: Model = new Map();
      let crankStart: Model | null = null;
      const expectRead = (value: unknown) => (Object.is(value, -0) ? 0 : typeof value === 'string' ? value.replace(/\ud800/g, '\ufffd') : value);
      try {
        for (let step = 0; step < 4000; step++) {
          const r = rand();
          const key = pick(keys);
          const where = `seed ${seed} step ${step}`;
          if (r < 0.3) {
            const value = values(step);
            // A key absent as this crank sees the store may be set `fresh`
            // (as the kernel does for new IDs); entries() then shows whether
            // a fresh row deleted again left anything committed behind.
            store.set(key, value, { fresh: !block.has(key) && rand() < 0.6 });
            block.set(key, value);
          } else if (r < 0.45) {
            store.delete(key);
            block.delete(key);
          } else if (r < 0.6) {
            const read = store.get(key);
            const expected = block.has(key) ? block.get(key) : undefined;
            if (typeof expected === 'string' || typeof expected === 'number') assert.ok(Object.is(read, expectRead(expected)), `${where}: get ${key}`);
            else assert.deepEqual(read, expected, `${where}: get ${key}`);
            assert.equal(store.has(key), block.has(key), `${where}: has ${key}`);
          } else if (r < 0.72) {
            const prefix = pick(['', 'a', 'ab', 'k.c', 'k.cc', 'b.1']);
            const after = rand() < 0.5 ? undefined : pick(keys);
            assert.equal(store.getNextKey(prefix, after), nextKey(block, prefix, after), `${where}: getNextKey(${prefix}, ${after})`);
          } else if (r < 0.76) {
            const prefix = pick(['', 'a', 'k.c']);
            const got = [...store.entries(prefix)].map(([k]) => k);
            const want = [...block.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys);
            assert.deepEqual(got, want, `${where}: entries(${prefix})`);
          } else if (r < 0.86) {
            if (crankStart === null) {
              store.beginCrank();
              crankStart = new Map(block);
            } else {
              store.endCrank();
              crankStart = null;
            }
          } else if (r < 0.93) {
            if (crankStart !== null) {
              store.abortCrank();
              block = crankStart;
              crankStart = null;
            }
          } else if (crankStart === null) {
            store.commit();
            committed = new Map(block);
            assert.equal(store.dirty, false, where);
          }
        }
        if (crankStart !== null) store.endCrank();
        store.commit();
        committed = new Map(block);
        for (const key of keys) {
          const expected = committed.get(key);
          const read = store.get(key);
          if (typeof expected === 'string' || typeof expected === 'number') assert.ok(Object.is(read, expectRead(expected)), `final ${key}`);
          else assert.deepEqual(read, expected, `final ${key}`);
        }
      } finally {
        await store.close();
      }
    });
  }
});
