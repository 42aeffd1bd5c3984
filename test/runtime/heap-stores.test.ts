// @agoric/store heap stores keep their keys sorted until the store changes
// (issue 12, review break-12 item 6). Measured in meter units, which are
// deterministic: repeated keys() calls on an unchanged store must not pay
// for a sort each time, and a change must still show up in rank order.
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';

const HEAP_STORE_VAT = `
import { prepareExo } from '@agoric/vat-data';
import { makeScalarMapStore, makeScalarSetStore } from '@agoric/store';
export const defineInstallationKinds = () => (baggage) => {
  const heap = makeScalarMapStore('h');
  const set = makeScalarSetStore('s');
  const pub = prepareExo(baggage, 'Pub', undefined, {
    fill(n) { for (let i = n; i > 0; i--) heap.init('k' + String(i).padStart(6, '0'), i); },
    firstKey(times) { let x; for (let i = 0; i < times; i++) x = heap.keys()[0]; return x; },
    change() {
      heap.init('a', 0); heap.delete('k000001'); set.add(3); set.add(1); const before = set.keys();
      set.add(2); set.delete(3);
      return harden([heap.keys().slice(0, 2), heap.entries().slice(0, 1), heap.values().slice(0, 2), before, set.keys(), heap.getSize()]);
    },
  });
  return () => ({ publicFacet: pub });
};`;

describe('@agoric/store heap stores: sorted keys kept until the store changes (issue 12)', function () {
  this.timeout(60_000);

  it('repeated keys() on an unchanged store costs far less than one sort each, and changes still iterate in rank order', async () => {
    const host = await Host.open();
    const E = (target: unknown) => host.E(target);
    try {
      const kit = host.startInstance(host.install(HEAP_STORE_VAT, { label: 'heap-stores' }));
      const pub = kit.publicFacet;
      const used = () => BigInt(host.vatStats(kit.adminFacet).computeUsed);
      await E(pub).fill(3000);
      const cost = async (times: number) => {
        const before = used();
        assert.equal(await E(pub).firstKey(times), 'k000001');
        return used() - before;
      };
      const once = await cost(1);
      const twenty = await cost(20);
      // Sorting on every call made twenty calls cost about twenty times one.
      assert.ok(twenty < 4n * once, `20 keys() calls cost ${twenty} units, one cost ${once}`);
      assert.deepEqual(await E(pub).change(), [['a', 'k000002'], [['a', 0]], [0, 2], [1, 3], [1, 2], 3000]);
    } finally {
      await host.close();
    }
  });
});
