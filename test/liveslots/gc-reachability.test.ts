// Distributed GC must never forget what is still reachable, and must release
// what is not (issue #11; each case is a finding of the hostile review of the
// first GC, which is why GC was off by default until they were fixed).
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';
import {
  CONTEXT_PEER, FACET_HOLDER, FACETS, FRESH, HEAP_FAR_IN_VIRTUAL, HEAP_HOLDER, PRESENCE_ROOT, PROMISE_IN_VIRTUAL, STORE_AND_DELETE, TAKER, WEAK_KEY_VIRTUAL, WEAK_KEYS,
} from '../fixtures/gc-review-vats.js';

function count(host: Host, prefix: string): number {
  let n = 0;
  for (const _ of host.store.entries(prefix)) n++;
  return n;
}

/** Enough deliveries to every vat that each has passed a GC point (gcEvery: 1) and the kernel's sweep has run. */
async function gcPoints(host: Host, roots: unknown[], times = 3): Promise<void> {
  for (let i = 0; i < times; i++) for (const root of roots) await host.E(root).noop();
}

describe('liveslots: GC keeps what is reachable and releases what is not (issue #11)', () => {
  let host: Host;
  beforeEach(async () => {
    host = await Host.open({ gcEvery: 1 });
  });
  afterEach(async () => {
    await host.close();
  });

  it('keeps an ordinary Far object that virtual data names after its importers drop it', async () => {
    const a = host.createVat(HEAP_FAR_IN_VIRTUAL, { name: 'a' });
    const c = host.createVat(TAKER, { name: 'c' });
    assert.equal(await host.E(c.root).take(a.root), 'took');
    const before = await host.E(a.root).check();
    await host.E(c.root).drop();
    await gcPoints(host, [c.root, a.root], 4);
    // The kernel did drop it: the exporter was told, and forgot nothing it stores.
    assert.ok([...host.store.entries(`k.t.${a.vatId}.`)].some(([, e]) => (e as { d: string[] }).d[0] === 'dropExports'), 'a got dropExports');
    assert.deepEqual(await host.E(a.root).check(), before);
    assert.deepEqual(before, { value: 'pong', box: 'pong', hasKey: true, keys: 1 });
  });

  it('keeps a multi-facet object while one facet is held, though another facet was dropped', async () => {
    const a = host.createVat(FACETS, { name: 'a' });
    const h = host.createVat(FACET_HOLDER, { name: 'h' });
    assert.equal(await host.E(h.root).take(a.root), 'took');
    await gcPoints(host, [h.root, a.root], 6);
    assert.ok([...host.store.entries(`k.t.${a.vatId}.`)].some(([, e]) => (e as { d: string[] }).d[0] === 'dropExports'), 'the writer facet was dropped');
    assert.equal(await host.E(h.root).read(), 1);
  });

  it('drops but does not retire a presence that is a weak key: weak stores and WeakMap find it again', async () => {
    const b = host.createVat(FRESH, { name: 'b' });
    const a = host.createVat(WEAK_KEYS, { name: 'a' });
    const thing = await host.E(b.root).fresh();
    assert.equal(await host.E(a.root).put(thing), 'ok');
    await gcPoints(host, [a.root, b.root], 5);
    const reports = [...host.store.entries(`k.t.${a.vatId}.`)].flatMap(([, e]) => (e as { sc: [string][] }).sc.map(([r]) => JSON.parse(r)[0] as string));
    assert.ok(reports.includes('dropImports'), 'the presence was dropped');
    assert.ok(!reports.includes('retireImports'), 'but not retired');
    assert.deepEqual(await host.E(a.root).check(thing), { store: true, set: true, heap: true });
    // Once no weak key names it, it is retired.
    assert.equal(await host.E(a.root).forget(thing), 'forgotten');
    await gcPoints(host, [a.root, b.root], 5);
    const after = [...host.store.entries(`k.t.${a.vatId}.`)].flatMap(([, e]) => (e as { sc: [string][] }).sc.map(([r]) => JSON.parse(r)[0] as string));
    assert.ok(after.includes('retireImports'), 'retired once forgotten');
  });

  it('releases imports that virtual data named once and no longer names', async () => {
    const b = host.createVat(FRESH, { name: 'b' });
    const a = host.createVat(STORE_AND_DELETE, { name: 'a' });
    const sizes: number[] = [];
    for (let r = 0; r < 3; r++) {
      for (let i = 0; i < 20; i++) await host.E(a.root).round(b.root, r * 20 + i);
      await gcPoints(host, [a.root, b.root]);
      sizes.push(count(host, `k.c.${a.vatId}.`));
    }
    // Pinned forever, the c-list would grow by 2 per round (120 after 60).
    assert.ok(sizes.every((n) => n <= 20), `c-list of a after 20/40/60 rounds: ${sizes.join(', ')}`);
  });

  it('releases, after an upgrade, the imports only the old incarnation’s heap held', async () => {
    const b = host.createVat(FRESH, { name: 'b' });
    const kit = host.startInstance(host.install(HEAP_HOLDER, { label: 'a' }));
    assert.equal(await host.E(kit.root).grab(b.root, 20), 20);
    assert.ok(count(host, `k.c.${b.vatId}.`) >= 40);
    await host.upgrade(kit.adminFacet, HEAP_HOLDER.replace('VERSION = 1', 'VERSION = 2'));
    assert.equal(await host.E(kit.root).v(), 2);
    await gcPoints(host, [kit.root, b.root], 5);
    assert.ok(count(host, `k.c.${b.vatId}.`) <= 4, `c-list of b: ${count(host, `k.c.${b.vatId}.`)} entries`);
  });

  it('keeps what the host was given until host.release, then drops it', async () => {
    const b = host.createVat(FRESH, { name: 'b' });
    const got: object[] = [];
    for (let i = 0; i < 10; i++) got.push((await host.E(b.root).fresh()) as object);
    await gcPoints(host, [b.root]);
    const objects = count(host, 'k.ko.');
    assert.equal(await host.E(got[0]).x(), 1, 'kept while the host holds it');
    assert.equal(await host.release(...got.slice(0, 9), host.refOf(got[9])), 10);
    await gcPoints(host, [b.root]);
    assert.equal(count(host, 'k.ko.'), objects - 10);
    await assert.rejects(host.E(got[0]).x(), /no kernel object/);
    assert.equal(await host.release(got[0]), 0, 'releasing twice is harmless');
    assert.throws(() => host.release({}), /presences this host received/);
  });

  it('keeps the imports an instance context names, which every incarnation reads again', async () => {
    const b = host.createVat(FRESH, { name: 'b' });
    const peer = await host.E(b.root).fresh();
    const kit = host.startInstance(host.install(CONTEXT_PEER, { label: 'ctx' }), { parameters: { peer } }) as { publicFacet: unknown; adminFacet: unknown };
    // Only the instance's stored context names the peer now.
    assert.equal(await host.release(peer), 1);
    assert.throws(() => host.release(kit.publicFacet), /is a facet of instance .*'s kit, which the host keeps/);
    await gcPoints(host, [kit.publicFacet, b.root], 5);
    await host.upgrade(kit.adminFacet as never, CONTEXT_PEER.replace("const PING = 'v1';", 'const PING = 0;').replace('return PING;', 'return E(context.parameters.peer).x();'));
    assert.equal(await host.E(kit.publicFacet).ping(), 1);
  });

  it('lets go of a settled promise once virtual data no longer names it', async () => {
    const a = host.createVat(PROMISE_IN_VIRTUAL, { name: 'a' });
    await gcPoints(host, [a.root]);
    const before = host.kernel.vatMemoryBytes(a.vatId);
    for (let i = 0; i < 60; i++) await host.E(a.root).round(i);
    await gcPoints(host, [a.root]);
    const growth = host.kernel.vatMemoryBytes(a.vatId) - before;
    // Retained, 60 strings of 200 KB would be about 12 MB.
    assert.ok(growth < 1 << 20, `memory grew ${growth} bytes`);
  });

  it('removes weak collection entries keyed by a deleted virtual object', async () => {
    const a = host.createVat(WEAK_KEY_VIRTUAL, { name: 'a' });
    const keys: number[] = [];
    for (let r = 0; r < 3; r++) {
      for (let i = 0; i < 20; i++) await host.E(a.root).round();
      await gcPoints(host, [a.root]);
      keys.push(count(host, `k.vs.${a.vatId}.`));
    }
    assert.equal(new Set(keys).size, 1, `vatstore keys after 20/40/60 rounds: ${keys.join(', ')}`);
  });

  it('leaves vats whose runtime predates this GC alone until they are upgraded', async () => {
    const kit = host.startInstance(host.install(HEAP_HOLDER, { label: 'old' }));
    const b = host.createVat(FRESH, { name: 'b' });
    const vat = kit.instanceId;
    // As a store written by an older build records it: no GC protocol.
    const { gc: _protocol, ...old } = host.kernel.state.vat(vat);
    host.kernel.state.setVat(vat, old);
    host.store.commit();
    assert.equal(await host.E(kit.root).grab(b.root, 5), 5);
    await gcPoints(host, [kit.root, b.root]);
    const deliveries = () => [...host.store.entries(`k.t.${vat}.`)].map(([, e]) => (e as { d: string[] }).d[0]);
    assert.ok(!deliveries().includes('bringOutYourDead'), 'no GC points for it');
    await host.upgrade(kit.adminFacet, HEAP_HOLDER.replace('VERSION = 1', 'VERSION = 2'));
    await gcPoints(host, [kit.root, b.root]);
    assert.ok(deliveries().includes('bringOutYourDead'), 'GC points once it runs this runtime');
  });

  it('refuses a presence as the root object at start', async () => {
    const b = host.createVat(FRESH, { name: 'b' });
    assert.throws(() => host.createVat(PRESENCE_ROOT, { name: 'a', vatParameters: { other: b.root } }), /buildRootObject must return an ephemeral Far object of this vat, not a presence \(o-1\)/);
  });
});
