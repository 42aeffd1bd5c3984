// Weak collections that understand virtual objects (issue #11, part 2).
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';
import { WEAK_KEYS } from '../fixtures/liveslots-vats.js';

describe('liveslots: weak collections and virtual objects (issue #11)', () => {
  it('a heap WeakMap/WeakSet keyed by a virtual or durable object finds the entry from a later delivery’s representative', async () => {
    const host = await Host.open();
    try {
      const root = host.createVat(WEAK_KEYS, { name: 'weak' }).root;
      assert.equal(await host.E(root).make(), 'made');
      assert.deepEqual(await host.E(root).read(), ['virtual note', 'durable note', true, false, true, false, true, false]);
      assert.deepEqual(await host.E(root).forget(), [false, false]);
      assert.deepEqual(await host.E(root).read(), [undefined, 'durable note', false, false, true, false, true, false]);
    } finally {
      await host.close();
    }
  });

  it('weak set stores (virtual and durable) take remotables only; durable ones durable objects only', async () => {
    const host = await Host.open();
    try {
      const root = host.createVat(WEAK_KEYS, { name: 'weak' }).root;
      await host.E(root).make();
      const errors = (await host.E(root).badKeys()) as string[];
      assert.match(errors[0], /weak collection "weak" keys must be remotables, got a string/);
      assert.match(errors[1], /durable collection "durableWeak": key is a non-durable object \(of a virtual kind\)/);
      assert.match(errors[2], /WeakMap keys must be objects, got string/);
    } finally {
      await host.close();
    }
  });
});
