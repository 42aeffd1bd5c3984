// @agoric/zone inside a vat (issue 12): durable, virtual and heap zones,
// subZone and makeOnce, across an upgrade of an Agoric-style vat.
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';
import { ZONES_V1, ZONES_V2 } from '../fixtures/exo-contracts.js';
import { ORACLE } from '../fixtures/liveslots-vats.js';

describe('zones: heap, virtual and durable zones across an upgrade (issue 12)', function () {
  this.timeout(30_000);

  it('keeps what the durable zone (and its sub-zone) made, drops heap and virtual data, and enforces once-per-incarnation', async () => {
    const host = await Host.open();
    const E = (target: unknown) => host.E(target);
    try {
      const kit = host.startInstance(host.install(ZONES_V1, { label: 'zones' }));
      const root = kit.root as object;
      const t1 = await E(root).issue('ann');
      const t2 = await E(root).issue('bob');
      assert.deepEqual([await E(t1).number(), await E(t2).number(), await E(t2).holder()], [1n, 2n, 'bob']);
      assert.equal(await E(root).cached('ann'), 'cached 1', 'heap zone store');
      const scratch = await E(root).scratch(7);
      assert.equal(await E(scratch).get(), 7, 'virtual zone exo');
      await E(root).revoke('bob');
      assert.deepEqual([await E(root).isRevoked(t1), await E(root).isRevoked(t2)], [false, true]);
      assert.deepEqual(await E(root).holders(), ['ann', 'bob']);
      assert.deepEqual(await E(root).info(), { version: 'v1', firstIncarnation: 'v1' });
      assert.equal(await E(root).reuse(), 'key "Ticket_kindHandle" has already been used in this zone and incarnation');
      assert.deepEqual(await E(root).storable(), [false, true, true]);
      const oracle = host.createVat(ORACLE, { name: 'oracle' }).root;
      assert.equal(await E(root).watch(oracle), 'watching');
      assert.equal(await E(root).cached('heap watch'), 'heap got 7', 'the heap zone followed its promise');

      assert.deepEqual(await host.upgrade(kit.adminFacet, ZONES_V2), { incarnation: 2 });
      assert.deepEqual(await E(root).info(), { version: 'v2', firstIncarnation: 'v1', holders: 2 }, 'makeOnce kept the value v1 made');
      assert.equal(await E(root).ticketOf('ann'), t1, 'same identity');
      await E(t1).transfer('cat');
      assert.equal(await E(t1).holder(), 'cat', 'new behaviour on an old object');
      await assert.rejects(E(t1).transfer(5), { message: 'In "transfer" method of (Ticket ticket): arg 0: number 5 - Must be a string' });
      assert.deepEqual([await E(root).isRevoked(t1), await E(root).isRevoked(t2)], [false, true], 'durable weak set survived');
      assert.equal(await E(root).cached('ann'), 'not cached', 'the heap zone started empty');
      await assert.rejects(E(scratch).get(), /discarded when the vat upgraded|non-durable|no object/);
      // zone.watchPromise: v1's watch of the oracle's answer reaches v2's watcher.
      assert.deepEqual(await E(root).answers(), []);
      assert.equal(await E(oracle).answer(42), 1);
      assert.deepEqual(await E(root).answers(), [['oracle', 'v2 got 42']]);
      const t3 = await E(root).issue('dan');
      assert.equal(await E(t3).number(), 3n, 'the counter in the sub-zone carried on');
    } finally {
      await host.close();
    }
  });
});
