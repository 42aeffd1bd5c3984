// Durable promise watchers (issue #11, part 4).
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';
import { ORACLE, WATCHER_V1, WATCHER_V2 } from '../fixtures/liveslots-vats.js';

describe('liveslots: durable promise watchers (issue #11)', () => {
  it('a watcher registered in incarnation 1 runs with the settlement in incarnation 2', async () => {
    const host = await Host.open();
    try {
      const oracle = host.createVat(ORACLE, { name: 'oracle' }).root;
      const kit = host.startInstance(host.install(WATCHER_V1, { label: 'watcher' }));
      const root = kit.root as object;
      assert.equal(await host.E(root).watch(oracle), 'watching');
      assert.deepEqual(await host.E(root).log(), [['v1', 'now', 'fulfilled', 'soon']]);
      await host.upgrade(kit.adminFacet, WATCHER_V2);
      // The local promise was decided by incarnation 1: disconnected, seen by v2's watcher.
      assert.deepEqual(await host.E(root).log(), [
        ['v1', 'now', 'fulfilled', 'soon'],
        ['v2', 'local', 'rejected', 'upgrade 2'],
      ]);
      // The oracle's promise stayed connected and settles into v2's watcher.
      assert.equal(await host.E(oracle).answer(42), 1);
      assert.deepEqual(await host.E(root).log(), [
        ['v1', 'now', 'fulfilled', 'soon'],
        ['v2', 'local', 'rejected', 'upgrade 2'],
        ['v2', 'oracle', 'fulfilled', 42],
      ]);
    } finally {
      await host.close();
    }
  });

  it('refuses a heap watcher or non-durable arguments at once, naming them', async () => {
    const host = await Host.open();
    try {
      const root = host.startInstance(host.install(WATCHER_V1, { label: 'watcher' })).root as object;
      await assert.rejects(host.E(root).badWatch(), /watchPromise: the watcher is a non-durable object/);
      await assert.rejects(host.E(root).badArg(), /watchPromise: args\[0\] is a non-durable object/);
    } finally {
      await host.close();
    }
  });
});
