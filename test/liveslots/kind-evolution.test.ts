// Kind evolution for multi-facet durable kinds (issue #11, part 7): Agoric's
// rules. Facets may be added (appended, so old facet references keep their
// meaning), never removed; a kind keeps being single- or multi-facet.
import assert from 'node:assert/strict';
import { Host, UpgradeError } from '../../host/index.js';
import { FACETS_ADD, FACETS_DROP, FACETS_SINGLE, FACETS_V1 } from '../fixtures/liveslots-vats.js';

describe('liveslots: kind evolution (issue #11)', () => {
  it('a redefinition may add facets; existing objects gain them and old facet references keep working', async () => {
    const host = await Host.open();
    try {
      const kit = host.startInstance(host.install(FACETS_V1, { label: 'facets' }));
      const root = kit.root as object;
      const facets = (await host.E(root).kit()) as Record<string, object>;
      assert.equal(await host.E(facets.internal).deposit(5), 5);
      await host.upgrade(kit.adminFacet, FACETS_ADD);
      assert.equal(await host.E(root).version(), 'v2');
      assert.equal(await host.E(facets.internal).deposit(1), 15);
      assert.equal(await host.E(facets.holder).balance(), 15);
      const again = (await host.E(root).kit()) as Record<string, object>;
      assert.equal(again.holder, facets.holder);
      const auditor = (await host.E(facets.holder).auditor()) as object;
      assert.deepEqual(await host.E(auditor).audit(), ['audited', 15, ['auditor', 'holder', 'internal']]);
    } finally {
      await host.close();
    }
  });

  const refused: [string, string, RegExp][] = [
    ['drops a facet', FACETS_DROP, /kind "Account" redefined with facets \(holder\) is missing internal from its definition \(holder, internal\)/],
    ['turns into a single-facet kind', FACETS_SINGLE, /kind "Account" was defined with facets \(holder, internal\); it cannot be redefined with defineDurableKind/],
  ];
  for (const [title, source, message] of refused) {
    it(`refuses a redefinition that ${title}, naming the kind and the facets; the old incarnation keeps serving`, async () => {
      const host = await Host.open();
      try {
        const kit = host.startInstance(host.install(FACETS_V1, { label: 'facets' }));
        await assert.rejects(host.upgrade(kit.adminFacet, source), (e: Error) => e instanceof UpgradeError && message.test(e.message));
        assert.equal(await host.E(kit.root as object).version(), 'v1');
      } finally {
        await host.close();
      }
    });
  }
});
