import assert from 'node:assert/strict';
import { Host, PreflightRefused, sourceBundleFromText, UpgradeError, type InstanceKit } from '../../host/index.js';
import {
  ROOT_V1,
  ROOT_V2,
  V1,
  V2,
  V2_MIGRATES,
  V2_MISSING_KIND,
  V2_NEVER_SETTLES,
  V2_REJECTS,
  V2_SPINS,
  V2_THROWS,
} from '../fixtures/upgrade-contracts.js';

async function started(options: Parameters<typeof Host.open>[0] = {}) {
  const host = await Host.open(options);
  const kit = host.startInstance(host.install(V1, { label: 'probe' })) as InstanceKit & { publicFacet: object };
  return { host, kit, pub: kit.publicFacet };
}

describe('upgrade: failures roll back (SPEC §5.2)', () => {
  const cases: [string, string, RegExp][] = [
    ['a durable kind is not redefined', V2_MISSING_KIND, /kind "Counter" \(defined by incarnation 1\) was not redefined/],
    ['start-up throws', V2_THROWS, /RangeError|v2 refuses to start/],
    ['async start-up rejects', V2_REJECTS, /async start-up rejected/],
    ['start-up never settles', V2_NEVER_SETTLES, /never settled/],
    ['start-up exhausts its meter', V2_SPINS, /exhausted its compute budget/],
  ];
  for (const [title, source, cause] of cases) {
    it(`${title}: UpgradeError names the cause, the old incarnation answers, the vatstore is byte-identical`, async () => {
      const { host, kit, pub } = await started({ deliveryBudget: 50_000_000n });
      try {
        const c = await host.E(pub).makeCounter('a', 5n);
        await host.E(c).increment();
        // Upload the proposed code first: uploading is not upgrading.
        const proposal = sourceBundleFromText(source, 'v2.js');
        host.bundles.put(proposal.pieces);
        const cap = host.bundles.install(proposal.manifest);
        const vs = `k.vs.${kit.instanceId}.`;
        const vatstoreBefore = host.store.stateHash(vs);
        const storeBefore = host.store.stateHash();
        // Pre-flight runs first and refuses with the same cause the real upgrade meets.
        await assert.rejects(
          host.upgrade(kit.adminFacet, cap),
          (e: Error) => e instanceof PreflightRefused && cause.test(e.message) && /to incarnation 2 refused: pre-flight found/.test(e.message),
        );
        assert.equal(host.store.stateHash(), storeBefore);
        // Forced, the real upgrade fails for that cause and rolls back.
        await assert.rejects(
          host.upgrade(kit.adminFacet, cap, { force: true }),
          (e: Error) => e instanceof UpgradeError && !(e instanceof PreflightRefused) && cause.test(e.message) && /to incarnation 2 failed and was rolled back/.test(e.message),
        );
        assert.equal(host.store.stateHash(vs), vatstoreBefore);
        assert.equal(host.store.stateHash(), storeBefore);
        assert.equal(await host.E(c).increment(), 7n);
        assert.equal(await host.E(pub).version(), 'v1');
        // A later good upgrade still works: the failed attempt left nothing behind.
        assert.deepEqual(await host.upgrade(kit.adminFacet, V2), { incarnation: 2 });
        assert.equal(await host.E(c).increment(), 17n);
      } finally {
        await host.close();
      }
    });
  }
});

describe('upgrade: success (SPEC §5.1, §5.3)', () => {
  it('keeps durable identities for the host and for other vats, with the new behaviour', async () => {
    const { host, kit, pub } = await started();
    try {
      const c = await host.E(pub).makeCounter('a', 1n);
      const holder = host.createVat(
        `import { Far, E } from '@endo/far';
         export function buildRootObject() { let held; return Far('holder', { hold(c) { held = c; }, bump() { return E(held).increment(); } }); }`,
        { name: 'holder' },
      ).root;
      await host.E(holder).hold(c);
      assert.equal(await host.E(holder).bump(), 2n);
      await host.upgrade(kit.adminFacet, V2);
      assert.equal(await host.E(holder).bump(), 12n);
      assert.equal(await host.E(c).increment(), 22n);
      assert.equal(await host.E(pub).getCounter('a'), c, 'same presence: the durable object kept its identity');
      assert.equal(await host.E(pub).version(), 'v2');
      assert.equal(await host.E(pub).sameTwice('a'), true);
    } finally {
      await host.close();
    }
  });

  it('rejects promises the old incarnation had not resolved, and breaks non-durable references clearly', async () => {
    const { host, kit, pub } = await started();
    try {
      const waiting = host.E(pub).neverResolves();
      const heap = await host.E(pub).heapObject();
      assert.equal(await host.E(heap).ping(), 'pong');
      await host.upgrade(kit.adminFacet, V2);
      await assert.rejects(waiting, (r: any) => r.name === 'vatUpgraded' && r.incarnationNumber === 2 && /its vat was upgraded to incarnation 2; this promise from incarnation 1 was disconnected/.test(r.upgradeMessage));
      await assert.rejects(host.E(heap).ping(), /this object was a non-durable object of its vat; it was discarded when that vat was upgraded to incarnation 2/);
    } finally {
      await host.close();
    }
  });

  it('deletes the old incarnation’s non-durable data a bounded amount per crank', async () => {
    const { host, kit, pub } = await started();
    try {
      assert.equal(await host.E(pub).makeScratch(600), 600);
      await host.upgrade(kit.adminFacet, V2);
      const pending = [host.kernel.pendingCleanupKeys()];
      assert.ok(pending[0] >= 1200, `600 virtual objects and 600 map entries await deletion, got ${pending[0]}`);
      while (pending[pending.length - 1] > 0) {
        await host.E(pub).version();
        pending.push(host.kernel.pendingCleanupKeys());
        assert.ok(pending.length < 100, 'cleanup must finish');
      }
      for (let i = 1; i < pending.length; i++) {
        // One host.E makes two cranks (delivery, then nothing for the host
        // promise); each deletes at most 200 keys.
        assert.ok(pending[i - 1] - pending[i] <= 400, `deleted ${pending[i - 1] - pending[i]} keys in one round trip`);
      }
      const c = await host.E(pub).makeCounter('after', 0n);
      assert.equal(await host.E(c).increment(), 10n);
    } finally {
      await host.close();
    }
  });

  it('migrates durable records lazily with stateVersion/migrate; a throwing migrate fails only that delivery', async () => {
    const { host, kit, pub } = await started();
    try {
      const a = await host.E(pub).makeCounter('a', 1n);
      const b = await host.E(pub).makeCounter('b', 2n);
      const cursed = await host.E(pub).makeCounter('cursed', 666n);
      const recordOf = (n: number) => JSON.parse(host.store.get(`k.vs.${kit.instanceId}.d.vo.10/${n}`) as string);
      assert.equal(recordOf(2).v, 0);
      // Pre-flight reads the stored records through v2 and names the one migrate throws on.
      await assert.rejects(host.upgrade(kit.adminFacet, V2_MIGRATES), /\[migrate-threw\] durable kind "Counter": migrate throws on stored record o\+d10\/3 \(state version 0\): cursed record/);
      await host.upgrade(kit.adminFacet, V2_MIGRATES, { force: true });
      // Upgrade touched no records: b is still at version 0 until first read.
      assert.equal(recordOf(2).v, 0);
      assert.equal(await host.E(a).increment(3n), 31n);
      assert.deepEqual(await host.E(a).history(), ['migrated from 0', 3n]);
      assert.equal(recordOf(1).v, 1);
      assert.equal(recordOf(2).v, 0);
      assert.deepEqual(await host.E(b).history(), ['migrated from 0']);
      assert.equal(recordOf(2).v, 1);
      await assert.rejects(host.E(cursed).read(), /cursed record/);
      assert.equal(await host.E(a).read(), 31n, 'the vat keeps serving after a failed migrate');
    } finally {
      await host.close();
    }
  });

  it('upgrades an Agoric-style buildRootObject vat: the root keeps its identity and baggage', async () => {
    const host = await Host.open();
    try {
      const kit = host.startInstance(host.install(ROOT_V1, { label: 'root-vat' }));
      const root = kit.root as object;
      assert.equal(await host.E(root).greet(), 'hello from v1');
      await host.E(root).setGreeting('hi');
      await host.upgrade(kit.adminFacet, ROOT_V2);
      assert.equal(await host.E(root).greet(), 'hi from v2');
    } finally {
      await host.close();
    }
  });

  it('survives a restart after an upgrade, replaying from the new incarnation', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-upgrade-'));
    let host = await Host.open({ path: dir, snapshotEvery: 3 });
    const kit = host.startInstance(host.install(V1, { label: 'probe' })) as InstanceKit & { publicFacet: object };
    const c = await host.E(kit.publicFacet).makeCounter('a', 1n);
    await host.upgrade(kit.adminFacet, V2);
    for (let i = 0; i < 4; i++) await host.E(c).increment();
    const hash = host.stateHash();
    await host.close();
    host = await Host.open({ path: dir, snapshotEvery: 3 });
    assert.equal(host.stateHash(), hash);
    const vat = host.vats().find((v) => v.vatId === kit.instanceId)!;
    assert.equal(vat.vatId, kit.instanceId);
    await host.close();
  });
});

describe('vat-data', () => {
  it('refuses non-durable values in durable state, naming the path', async () => {
    const { host, pub } = await started();
    try {
      await assert.rejects(host.E(pub).storeBad('promise'), /collection "counters" value for "bad"\.nested\[1\] is a promise/);
      await assert.rejects(host.E(pub).storeBad('far'), /Counter\.state\.count is a non-durable object \(an ordinary Far object\)/);
      await assert.rejects(host.E(pub).storeBad('map'), /collection "counters" value for "bad"\.nested\[1\] is a Map; durable state can hold only data/);
      await assert.rejects(host.E(pub).storeBad('function'), /Counter\.state\.count is a function; durable state can hold only data/);
    } finally {
      await host.close();
    }
  });

  it('gives each instance its own copy of the installation baggage', async () => {
    const host = await Host.open();
    try {
      const installation = host.install(V1, { label: 'probe' });
      const one = host.startInstance(installation) as InstanceKit & { publicFacet: object };
      const two = host.startInstance(installation) as InstanceKit & { publicFacet: object };
      await host.E(one.publicFacet).makeCounter('x', 1n);
      await assert.rejects(host.E(two.publicFacet).getCounter('x'), /key "x" not found in collection "counters"/);
      assert.notEqual(one.instanceId, two.instanceId);
    } finally {
      await host.close();
    }
  });

  it('orders collection keys and answers range queries', async () => {
    const host = await Host.open();
    try {
      const { root } = host.createVat(
        `import { Far } from '@endo/far';
         import { makeScalarBigMapStore } from '@quickvat/vat-data';
         export function buildRootObject() {
           const m = makeScalarBigMapStore('m', { durable: true });
           for (const k of [10, -3, 2.5, 100, 0]) m.init(k, 'n' + k);
           for (const k of ['b', 'a', 'ab', 'c']) m.init(k, k.toUpperCase());
           return Far('root', {
             all: () => [...m.keys()],
             numbers: () => [...m.keys({ start: 0, end: 100 })],
             strings: () => [...m.entries({ start: 'a', end: 'c' })],
             size: () => m.getSize(),
           });
         }`,
        { name: 'collections' },
      );
      assert.deepEqual(await host.E(root).all(), [-3, 0, 2.5, 10, 100, 'a', 'ab', 'b', 'c']);
      assert.deepEqual(await host.E(root).numbers(), [0, 2.5, 10]);
      assert.deepEqual(await host.E(root).strings(), [['a', 'A'], ['ab', 'AB'], ['b', 'B']]);
      assert.equal(await host.E(root).size(), 9);
    } finally {
      await host.close();
    }
  });

  it('keeps the heap small while the vatstore holds many durable records', async () => {
    const host = await Host.open({ deliveryBudget: 5_000_000_000n });
    try {
      const { vatId, root } = host.createVat(
        `import { Far } from '@endo/far';
         import { makeKindHandle, defineDurableKind, defineDurableKindMulti, makeScalarBigMapStore } from '@quickvat/vat-data';
         export function buildRootObject() {
           const make = defineDurableKind(makeKindHandle('Rec'), (i) => ({ i, label: 'record number ' + i }), { i: ({ state }) => state.i });
           // Multi-facet objects reference each other through their context:
           // they must not pin each other in the heap either.
           const makeKit = defineDurableKindMulti(makeKindHandle('Kit'), (i) => ({ i }), {
             a: { i: ({ state, facets }) => facets.b.j() },
             b: { j: ({ state }) => state.i },
           });
           const all = makeScalarBigMapStore('all', { durable: true });
           let n = 0;
           return Far('root', {
             add(count) { for (let k = 0; k < count; k++) { all.init(n, k % 2 ? make(n) : makeKit(n).a); n++; } return all.getSize(); },
             read(i) { return all.get(i).i(); },
           });
         }`,
        { name: 'many' },
      );
      await host.E(root).add(500);
      const small = host.kernel.vatMemoryBytes(vatId);
      for (let i = 0; i < 3; i++) await host.E(root).add(3000);
      assert.equal(await host.E(root).read(9_321), 9_321);
      const large = host.kernel.vatMemoryBytes(vatId);
      const records = [...host.store.entries(`k.vs.${vatId}.d.vo.`)].length;
      assert.ok(records >= 9_500, `records in the vatstore: ${records}`);
      assert.equal(await host.E(root).read(9_320), 9_320);
      // 19x the records, same linear memory (it never shrinks, so this also
      // shows nothing was retained along the way).
      assert.ok(large <= small + 4 * 1024 * 1024, `memory grew from ${small} to ${large} bytes`);
    } finally {
      await host.close();
    }
  });
});
