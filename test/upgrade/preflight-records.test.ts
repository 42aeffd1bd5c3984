// Pre-flight reads the stored records (issue 13): each mistake named with its
// kind, field or record; a good v2 passes; and pre-flight's verdict is the
// real upgrade's on every case.
import assert from 'node:assert/strict';
import { Host, PreflightRefused, sourceBundleFromText, UpgradeError, type Bundlecap, type InstanceKit } from '../../host/index.js';
import {
  SHOP_FIELD_ADDED,
  SHOP_GOOD,
  SHOP_KEY_TOO_LONG,
  SHOP_KIND_REMOVED,
  SHOP_METHOD_REMOVED,
  SHOP_MIGRATE_THROWS,
  SHOP_SHAPE_REFUSES,
  SHOP_V1,
  SHOP_VALUE_TOO_BIG,
  SHOP_VERSION_LOWERED,
} from '../fixtures/shop-contracts.js';

type Kit = InstanceKit & { publicFacet: object };

async function shop(): Promise<{ host: Host; kit: Kit }> {
  const host = await Host.open();
  const kit = host.startInstance(host.install(SHOP_V1, { label: 'shop' })) as Kit;
  await host.E(kit.publicFacet).addItems(['cursed', 'apple', 'pear', 'plum']);
  await host.E(kit.publicFacet).addMany('bulk', 100);
  assert.equal(await host.E(kit.publicFacet).count(), 104);
  return { host, kit };
}

/** Uploads and installs `source` as a bundle (uploading is not upgrading: it is done before the state is compared). */
function uploaded(host: Host, source: string, name = 'v2.js'): Bundlecap {
  const sb = sourceBundleFromText(source, name);
  host.bundles.put(sb.pieces);
  return host.bundles.install(sb.manifest);
}

interface Case {
  readonly title: string;
  readonly source: string;
  /** [code, kind, record?, field?] of each problem expected */
  readonly problems: readonly (readonly [string, string | undefined, string?, string?])[];
  /** also fails when forced (the kernel itself refuses it) */
  readonly hard: boolean;
  readonly message?: RegExp;
}

const CASES: Case[] = [
  { title: 'a good v2 (new field, stateVersion raised, migrate fills it)', source: SHOP_GOOD, problems: [], hard: false },
  {
    title: '(a) a field added without migrate',
    source: SHOP_FIELD_ADDED,
    problems: [['record-shape-changed', 'Item', 'o+d10/1', 'note']],
    hard: false,
    message: /durable kind "Item": existing records have fields \{label, qty\} but the new version makes \{label, note, qty\} and declares no migrate for them .*field note would be missing from old records .*o\+d10\/1/,
  },
  {
    title: '(b) a lowered stateVersion',
    source: SHOP_VERSION_LOWERED,
    problems: [['state-version-lowered', 'Item']],
    hard: true,
    message: /kind "Item" lowers stateVersion from 1 to 0/,
  },
  {
    title: '(c) a migrate that throws on an old record',
    source: SHOP_MIGRATE_THROWS,
    problems: [['migrate-threw', 'Item', 'o+d10/1']],
    hard: false,
    message: /durable kind "Item": migrate throws on stored record o\+d10\/1 \(state version 1\): cannot migrate cursed/,
  },
  {
    title: '(d) a durable kind removed',
    source: SHOP_KIND_REMOVED,
    problems: [['kind-not-redefined', 'Item']],
    hard: true,
    message: /kind "Item" \(defined by incarnation 1\) was not redefined/,
  },
  {
    title: '(e) a method clients use, removed',
    source: SHOP_METHOD_REMOVED,
    problems: [['method-removed', undefined]],
    hard: false,
    message: /publicFacet loses method "count", which existing clients have called/,
  },
  {
    title: '(f) stored values the new stateShape refuses',
    source: SHOP_SHAPE_REFUSES,
    problems: [['state-shape-mismatch', 'Item', 'o+d10/1']],
    hard: false,
    message: /durable kind "Item": stored record o\+d10\/1 does not match the new version's stateShape: .*qty/,
  },
  { title: 'a start-up that writes a vatstore key above the limit', source: SHOP_KEY_TOO_LONG, problems: [['upgrade-failed', undefined]], hard: true, message: /vatstore key is \d+ characters, above the limit of 1024/ },
  { title: 'a start-up that stores a value above the limit', source: SHOP_VALUE_TOO_BIG, problems: [['upgrade-failed', undefined]], hard: true, message: /above the limit of 1048576/ },
];

describe('pre-flight reads stored records (issue 13)', function () {
  this.timeout(60_000);

  for (const c of CASES) {
    it(`${c.title}: pre-flight names it, and upgrade agrees (refused unless forced${c.hard ? '; refused by the kernel even when forced' : ''})`, async () => {
      const { host, kit } = await shop();
      try {
        const cap = uploaded(host, c.source);
        const before = host.stateHash();
        const result = await host.preflight(kit.adminFacet, cap);
        assert.equal(host.stateHash(), before, 'pre-flight changes nothing');
        assert.deepEqual(
          result.problems.map((p) => [p.code, p.kind, ...(p.record !== undefined ? [p.record] : []), ...(p.fields ?? [])]),
          c.problems.map((p) => p.filter((x, i) => i < 2 || x !== undefined)),
          JSON.stringify(result.problems, null, 1),
        );
        assert.equal(result.ok, c.problems.length === 0);
        if (c.message) assert.match(result.problems.map((p) => p.message).join('\n'), c.message);
        if (result.ok) assert.ok(result.sampled && result.sampled.Item.records === 104 && result.sampled.Item.read === 32, JSON.stringify(result.sampled));

        // The real upgrade, unforced: it succeeds exactly when pre-flight found nothing.
        let upgraded = true;
        try {
          await host.upgrade(kit.adminFacet, cap);
        } catch (err) {
          upgraded = false;
          assert.ok(err instanceof PreflightRefused, String(err));
          assert.deepEqual(err.problems.map((p) => p.code), result.problems.map((p) => p.code));
          assert.equal(host.stateHash(), before, 'a refused upgrade changes nothing');
        }
        assert.equal(upgraded, result.ok, 'pre-flight and upgrade agree');
        if (upgraded) {
          assert.equal(await host.E(kit.publicFacet).version(), 'v2');
          assert.equal(await host.E(await host.E(kit.publicFacet).item('bulk50')).note(), 'migrated');
          return;
        }
        // Forced: what the kernel itself refuses is refused still, with the cause pre-flight named.
        let forced: unknown;
        try {
          await host.upgrade(kit.adminFacet, cap, { force: true });
        } catch (err) {
          forced = err;
        }
        assert.equal(forced !== undefined, c.hard, `forced upgrade ${forced ? `failed: ${String(forced)}` : 'succeeded'}`);
        if (forced) {
          assert.ok(forced instanceof UpgradeError && !(forced instanceof PreflightRefused));
          if (c.message) assert.match((forced as Error).message, c.message);
          assert.equal(host.stateHash(), before, 'a failed upgrade rolls back');
        }
      } finally {
        await host.close();
      }
    });
  }

  it('refuses upgrading to the bundle already running unless asked for a restart', async () => {
    const { host, kit } = await shop();
    try {
      const same = uploaded(host, SHOP_V1, 'shop.js');
      assert.equal(same.bundleId, host.runningBundleOf(kit.instanceId));
      const before = host.stateHash();
      await assert.rejects(host.upgrade(kit.adminFacet, same), /already runs bundle [0-9a-f]{64}; nothing to upgrade \(pass restart: true/);
      assert.equal(host.stateHash(), before);
      assert.deepEqual(await host.upgrade(kit.adminFacet, same, { restart: true }), { incarnation: 2 });
      assert.equal(await host.E(kit.publicFacet).count(), 104);
    } finally {
      await host.close();
    }
  });

  it('knows the methods clients used from the kernel\'s index, and from the transcript for deliveries before the index existed', async () => {
    const { host, kit } = await shop();
    try {
      const used = () => [...host.kernel.state.methodsUsed(kit.instanceId).values()].flatMap((m) => [...m]).sort();
      assert.deepEqual(used(), ['addItems', 'addMany', 'count']);
      // A store from before the index: no index keys, the deliveries only in the transcript.
      for (const [key] of [...host.store.entries(`k.mu.${kit.instanceId}.`), ...host.store.entries(`k.muFrom.${kit.instanceId}`)]) host.store.delete(key);
      host.store.commit();
      assert.deepEqual(used(), ['addItems', 'addMany', 'count']);
      const result = await host.preflight(kit.adminFacet, SHOP_METHOD_REMOVED);
      assert.deepEqual(result.problems.map((p) => p.code), ['method-removed']);
    } finally {
      await host.close();
    }
  });

  it('does not index names an object has no method for: made-up calls cannot grow the index (break-10c #3)', async () => {
    const { host, kit } = await shop();
    try {
      const used = () => [...host.kernel.state.methodsUsed(kit.instanceId).values()].flatMap((m) => [...m]).sort();
      const before = used();
      const bytes = () => [...host.store.entries(`k.mu.${kit.instanceId}.`)].reduce((n, [, v]) => n + JSON.stringify(v).length, 0);
      const size = bytes();
      for (let i = 0; i < 20; i++) {
        await assert.rejects(host.E(kit.publicFacet)[`madeUp${i}${'x'.repeat(200)}`](), /has no method "madeUp/);
      }
      assert.deepEqual(used(), before);
      assert.equal(bytes(), size);
      // A real method not called before is still indexed.
      await host.E(kit.publicFacet).count();
      assert.deepEqual(used(), before.includes('count') ? before : [...before, 'count'].sort());
    } finally {
      await host.close();
    }
  });

  it('names a stored record at a version above the new stateVersion even when the kind record does not say so', async () => {
    const { host, kit } = await shop();
    try {
      // Records written before kind records kept stateVersion carry it only in the record.
      const key = `k.vs.${kit.instanceId}.d.kind.10`;
      const kind = JSON.parse(host.store.get(key) as string);
      delete kind.stateVersion;
      host.store.set(key, JSON.stringify(kind));
      host.store.commit();
      host.kernel.dropAllSandboxes();
      const result = await host.preflight(kit.adminFacet, SHOP_VERSION_LOWERED);
      assert.deepEqual(result.problems.map((p) => [p.code, p.kind, p.record]), [['state-version-lowered', 'Item', 'o+d10/1']]);
      assert.match(result.problems[0].message, /stored record o\+d10\/1 has state version 1, above the new version's stateVersion 0/);
    } finally {
      await host.close();
    }
  });
});
