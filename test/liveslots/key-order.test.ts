// One key order everywhere (issue #11, part 6): collection iteration, range
// queries and the vatstore's getNextKey agree with JavaScript's string order
// (and so with @endo/marshal's compareRank), astral and private-use included.
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';
import { KEY_ORDER } from '../fixtures/liveslots-vats.js';

describe('liveslots: one key order (issue #11)', () => {
  it('iteration, range queries and getNextKey agree for astral, private-use and BMP strings', async () => {
    const keys = ['b', '\u{1F600}', '\uE000', 'a', '\uFFFD', '\u{10FFFF}', 'z\u{1F600}', 'z\uF8FF', '\u00E9', 'ab', '\u{20000}', '\uFF01', '\uD7FF'];
    const sorted = [...keys].sort();
    const start = '\uE000';
    const end = '\u{20000}';
    const host = await Host.open();
    try {
      const root = host.createVat(KEY_ORDER, { name: 'order' }).root;
      const r = (await host.E(root).orders(keys, start, end)) as Record<string, unknown[]>;
      assert.deepEqual(r.map, sorted);
      assert.deepEqual(r.set, sorted);
      assert.deepEqual(r.raw, sorted);
      assert.deepEqual(r.range, sorted.filter((k) => k >= start && k < end));
      assert.deepEqual(r.values, sorted.map((k) => k.length));
      assert.deepEqual(r.read, keys.map((k) => k.length));
    } finally {
      await host.close();
    }
  });
});
