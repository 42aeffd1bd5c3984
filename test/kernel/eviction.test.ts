import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';
import { COUNTER_VAT } from '../fixtures/vats.js';

describe('kernel: bounded live sandboxes', () => {
  it('unloads the least recently used vats beyond maxLoadedVats and brings them back on demand', async () => {
    const host = await Host.open({ maxLoadedVats: 2, snapshotEvery: 3 });
    try {
      const roots = [1, 2, 3, 4].map((i) => host.createVat(COUNTER_VAT, { name: `c${i}` }).root);
      for (const [i, root] of roots.entries()) for (let k = 0; k <= i; k++) await host.E(root).add(1);
      const loaded = () => host.vats().filter((v) => host.kernel.isLoaded(v.vatId)).length;
      assert.ok(loaded() <= 3, `at most the cap plus the vat in use stay loaded, got ${loaded()}`);
      // Every vat answers from its committed state, reloaded (image + replay) as needed.
      assert.deepEqual(await Promise.all(roots.map((r) => host.E(r).read())), [[1, 1], [2, 2], [3, 3], [4, 4]]);
      const hash = host.stateHash();
      const full = await Host.open({ snapshotEvery: 3 });
      const again = [1, 2, 3, 4].map((i) => full.createVat(COUNTER_VAT, { name: `c${i}` }).root);
      for (const [i, root] of again.entries()) for (let k = 0; k <= i; k++) await full.E(root).add(1);
      await Promise.all(again.map((r) => full.E(r).read()));
      assert.equal(full.stateHash(), hash, 'unloading and reloading changes nothing');
      await full.close();
    } finally {
      await host.close();
    }
  });
});
