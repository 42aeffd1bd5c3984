// Gaps a hostile review of issue 13 found in pre-flight (notes/break13): a
// stateVersion that is not a non-negative integer, kinds whose init needs
// arguments, methods removed from exported objects that are not kit facets or
// with calls still queued, and vatParameters the upgrade passes.
import assert from 'node:assert/strict';
import { Host, PreflightRefused, UpgradeError, renderReviewHtml, reviewBundle, sourceBundleFromText, type InstanceKit } from '../../host/index.js';
import { SHOP_V1 } from '../fixtures/shop-contracts.js';

type Kit = InstanceKit & { publicFacet: object };

const ITEMS = (init: string, options = '', methods = 'label({ state }) { return state.label; },\n    restock({ state }, n) { state.qty += n; return state.qty; },') => `
import { M } from '@endo/patterns';
import { provideKindHandle, defineDurableKind, provideDurableMapStore } from '@quickvat/vat-data';
export const defineInstallationKinds = () => (baggage) => {
  const makeItem = defineDurableKind(provideKindHandle(baggage, 'Item'), ${init}, {
    ${methods}
  }${options});
  const items = provideDurableMapStore(baggage, 'items');
  const make = defineDurableKind(provideKindHandle(baggage, 'Shop'), () => ({}), {
    add(_, label) { items.init(label, makeItem({ label })); return items.get(label); },
  });
  return () => ({ publicFacet: make() });
};`;
const INIT_ARGS = '({ label }) => ({ label, qty: 0n })';
const INIT_ARGS_NOTE = "({ label }) => ({ label, qty: 0n, note: '' })";

async function started(source: string): Promise<{ host: Host; kit: Kit }> {
  const host = await Host.open();
  const kit = host.startInstance(host.install(source, { label: 'items' })) as Kit;
  return { host, kit };
}

describe('pre-flight gaps (issue 13, hostile review)', function () {
  this.timeout(60_000);

  describe('stateVersion must be a non-negative safe integer', () => {
    for (const bad of ['NaN', 'Infinity', '-1', '1.5', '"2"', '2 ** 60']) {
      it(`refuses stateVersion ${bad} when the kind is defined, and pre-flight names it`, async () => {
        const source = ITEMS(INIT_ARGS, `, { stateVersion: ${bad}, migrate: (o) => o }`);
        const host = await Host.open();
        try {
          assert.throws(() => host.startInstance(host.install(source, { label: 'bad' })), /kind "Item" declares stateVersion .*; it must be a non-negative integer/);
        } finally {
          await host.close();
        }
        const { host: h2, kit } = await started(ITEMS(INIT_ARGS));
        try {
          await h2.E(kit.publicFacet).add('apple');
          const before = h2.stateHash();
          const result = await h2.preflight(kit.adminFacet, source);
          assert.deepEqual(result.problems.map((p) => [p.code, p.kind]), [['state-version-invalid', 'Item']]);
          await assert.rejects(h2.upgrade(kit.adminFacet, source), PreflightRefused);
          // Forced, the kernel refuses it still: nothing meaningless is ever stored.
          await assert.rejects(h2.upgrade(kit.adminFacet, source, { force: true }), (e) => e instanceof UpgradeError && /must be a non-negative integer/.test(e.message));
          assert.equal(h2.stateHash(), before);
        } finally {
          await h2.close();
        }
      });
    }

    it('accepts 0 and large safe integers, and still refuses lowering after a raise', async () => {
      const { host, kit } = await started(ITEMS(INIT_ARGS, ', { stateVersion: 0 }'));
      try {
        await host.E(kit.publicFacet).add('apple');
        await host.upgrade(kit.adminFacet, ITEMS(INIT_ARGS, `, { stateVersion: ${Number.MAX_SAFE_INTEGER}, migrate: (o) => o }`));
        const lowered = await host.preflight(kit.adminFacet, ITEMS(INIT_ARGS, ', { stateVersion: 5, migrate: (o) => o }'));
        assert.deepEqual(lowered.problems.map((p) => p.code), ['state-version-lowered']);
      } finally {
        await host.close();
      }
    });
  });

  it('escapes every value of the review page, the stateVersion cell included', async () => {
    const { host, kit } = await started(SHOP_V1);
    try {
      const v2 = sourceBundleFromText(SHOP_V1.replace("return 'v1';", "return 'v2';"), 'v2.js');
      const upgrade = await host.reviewContext(kit.instanceId, v2);
      // A summary from a store written before stateVersion was checked may carry anything.
      const summary = JSON.parse(JSON.stringify(upgrade.summary));
      summary.kinds.find((k: { tag: string }) => k.tag === 'Item').stateVersion = { from: 1, to: '<style>#preflight{display:none}</style><b id="x">' };
      const review = reviewBundle(v2, { upgrade: { ...upgrade, summary } });
      const html = renderReviewHtml(review);
      assert.doesNotMatch(html, /<b id="x">|<style>#preflight/);
      assert.match(html, /&lt;style&gt;#preflight\{display:none\}&lt;\/style&gt;&lt;b id=&quot;x&quot;&gt;/);
    } finally {
      await host.close();
    }
  });

  describe('kinds whose init needs arguments', () => {
    it('are never skipped silently: without a stateShape, pre-flight warns record-shape-unchecked (not blocking)', async () => {
      const { host, kit } = await started(ITEMS(INIT_ARGS));
      try {
        await host.E(kit.publicFacet).add('apple');
        const result = await host.preflight(kit.adminFacet, ITEMS(INIT_ARGS_NOTE));
        assert.equal(result.ok, true);
        assert.deepEqual(result.problems, []);
        assert.deepEqual(result.warnings?.map((w) => [w.code, w.kind]), [['record-shape-unchecked', 'Item']]);
        assert.match(result.warnings![0].message, /init needs arguments and it declares no stateShape/);
      } finally {
        await host.close();
      }
    });

    it('with a stateShape, compare its fields to the stored records (field added without migrate)', async () => {
      const shape = ', { stateShape: { label: M.string(), qty: M.nat(), note: M.string() } }';
      const { host, kit } = await started(ITEMS(INIT_ARGS));
      try {
        await host.E(kit.publicFacet).add('apple');
        const result = await host.preflight(kit.adminFacet, ITEMS(INIT_ARGS_NOTE, shape));
        const changed = result.problems.find((p) => p.code === 'record-shape-changed');
        assert.ok(changed, JSON.stringify(result.problems));
        assert.deepEqual([changed.kind, changed.fields], ['Item', ['note']]);
        assert.match(changed.message, /the new version declares \(stateShape\) \{label, note, qty\}/);
        assert.equal(result.warnings, undefined);
      } finally {
        await host.close();
      }
    });
  });

  describe('method-removed', () => {
    const NO_RESTOCK = ITEMS(INIT_ARGS, '', 'label({ state }) { return state.label; },');

    it('checks every exported object clients called, not only kit facets', async () => {
      const { host, kit } = await started(ITEMS(INIT_ARGS));
      try {
        const apple = await host.E(kit.publicFacet).add('apple');
        const pear = await host.E(kit.publicFacet).add('pear');
        assert.equal(await host.E(apple).restock(5n), 5n);
        assert.equal(await host.E(pear).label(), 'pear');
        const result = await host.preflight(kit.adminFacet, NO_RESTOCK);
        assert.deepEqual(result.problems.map((p) => p.code), ['method-removed']);
        assert.match(result.problems[0].message, /objects of durable kind \d+ \(e\.g\. o\+d\d+\/1\) loses method "restock"/);
        await assert.rejects(host.upgrade(kit.adminFacet, NO_RESTOCK), PreflightRefused);
        assert.equal(await host.E(apple).restock(1n), 6n);
      } finally {
        await host.close();
      }
    });

    it('counts calls still waiting in the run queue (instance suspended), on a method never delivered yet', async () => {
      const ESCROW = `
import { provideKindHandle, defineDurableKind } from '@quickvat/vat-data';
export const defineInstallationKinds = () => (baggage) => {
  const make = defineDurableKind(provideKindHandle(baggage, 'Escrow'), () => ({}), {
    deposit(_, n) { return n; },
    withdraw(_, n) { return n; },
  });
  return () => ({ publicFacet: make() });
};`;
      const { host, kit } = await started(ESCROW);
      try {
        assert.equal(await host.E(kit.publicFacet).deposit(1n), 1n);
        host.suspend(kit.adminFacet, 'maintenance');
        const waiting = host.E(kit.publicFacet).withdraw(5n);
        await host.run();
        const v2 = ESCROW.replace('withdraw(_, n) { return n; },', '');
        const result = await host.preflight(kit.adminFacet, v2);
        assert.deepEqual(result.problems.map((p) => p.code), ['method-removed']);
        assert.match(result.problems[0].message, /publicFacet loses method "withdraw", which existing clients have called or have calls queued for/);
        await assert.rejects(host.upgrade(kit.adminFacet, v2), PreflightRefused);
        host.resume(kit.adminFacet);
        assert.equal(await waiting, 5n);
      } finally {
        await host.close();
      }
    });
  });

  it("trial vats check vatstore keys as the kernel does (UTF-8 bytes), so pre-flight and the forced upgrade agree", async () => {
    const { host, kit } = await started(ITEMS(INIT_ARGS));
    try {
      // 700 two-byte characters: 700 UTF-16 units, 1400 bytes of UTF-8 (the limit is 1024 bytes).
      const v2 = ITEMS(INIT_ARGS).replace('const items =', "if (!baggage.has('\u00e9'.repeat(700))) baggage.init('\u00e9'.repeat(700), 1);\n  const items =");
      const result = await host.preflight(kit.adminFacet, v2);
      assert.deepEqual(result.problems.map((p) => p.code), ['upgrade-failed']);
      assert.match(result.problems[0].message, /a vatstore key must be at most 1024 bytes of UTF-8/);
      await assert.rejects(host.upgrade(kit.adminFacet, v2, { force: true }), /a vatstore key must be at most 1024 bytes of UTF-8/);
    } finally {
      await host.close();
    }
  });

  it('pre-flight starts the new incarnation with the vatParameters the upgrade passes', async () => {
    const V1 = "import { Far } from '@endo/far';\nexport function buildRootObject() { return Far('root', { greet() { return 'v1'; } }); }";
    const V2 = "import { Far } from '@endo/far';\nexport function buildRootObject(_p, vp) {\n  if (!vp || vp.mode !== 'live') throw Error('v2 needs vatParameters.mode = live');\n  return Far('root', { greet() { return 'v2 ' + vp.mode; } });\n}";
    const host = await Host.open();
    try {
      const kit = host.startInstance(host.install(V1, { label: 'p' })) as InstanceKit & { root: object };
      assert.deepEqual((await host.preflight(kit.adminFacet, V2)).problems.map((p) => p.code), ['upgrade-failed']);
      assert.deepEqual(await host.preflight(kit.adminFacet, V2, { vatParameters: { mode: 'live' } }), { ok: true, problems: [], sampled: {} });
      assert.deepEqual(await host.upgrade(kit.adminFacet, V2, { vatParameters: { mode: 'live' } }), { incarnation: 2 });
      assert.equal(await host.E(kit.root).greet(), 'v2 live');
    } finally {
      await host.close();
    }
  });
});
