// What keeps virtual data alive and what lets it go (issue #11, second
// hostile review): a store's detached methods or an iterator keep the store,
// a kept `state` keeps its object's record; a lookup registers nothing; an
// upgrade does not forget durable objects dropped just before it.
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';

function count(host: Host, prefix: string): number {
  let n = 0;
  for (const _ of host.store.entries(prefix)) n++;
  return n;
}

describe('liveslots: what keeps virtual data, and what lets it go (issue #11)', () => {
  it('keeps a big store whose methods or iterator alone are held, virtual or durable', async () => {
    const src = `import { Far } from '@endo/far';
import { makeScalarBigMapStore } from '@agoric/vat-data';
export function buildRootObject() {
  const { init, has, get, getSize } = makeScalarBigMapStore('virtual', {});
  const { init: dInit, has: dHas } = makeScalarBigMapStore('durable', { durable: true });
  let cursor;
  return Far('a', {
    fill: () => {
      for (let i = 0; i < 5; i++) { init(i, 'v' + i); dInit(i, 'v' + i); }
      const it = makeScalarBigMapStore('iter');
      for (let i = 0; i < 5; i++) it.init(i, i);
      cursor = it.values()[Symbol.iterator]();
      return cursor.next().value;
    },
    check: () => {
      const rest = [];
      for (let x = cursor.next(); !x.done; x = cursor.next()) rest.push(x.value);
      return harden([has(3), get(3), getSize(), dHas(3), rest]);
    },
    noop: () => 0,
  });
}`;
    const host = await Host.open({ gcEvery: 1 });
    try {
      const a = host.createVat(src, { name: 'a' });
      assert.equal(await host.E(a.root).fill(), 0);
      for (let i = 0; i < 3; i++) await host.E(a.root).noop();
      assert.deepEqual(await host.E(a.root).check(), [true, 'v3', 5, true, [1, 2, 3, 4]]);
    } finally {
      await host.close();
    }
  });

  it('keeps an object whose state the program kept, and what that state names', async () => {
    const src = `import { Far } from '@endo/far';
import { defineKind } from '@agoric/vat-data';
export function buildRootObject() {
  const makeCell = defineKind('cell', (peer) => ({ peer }), { grab: ({ state }) => state, peer: ({ state }) => state.peer });
  const makeLeaf = defineKind('leaf', () => ({ n: 42 }), { n: ({ state }) => state.n });
  let st, z;
  return Far('a', {
    make: () => { const y = makeLeaf(); z = makeCell(y); st = makeCell(y).grab(); return 'made'; },
    readKept: () => st.peer.n(),
    overwrite: () => { st.peer = 'nothing'; return 'written'; },
    release: () => { st = undefined; return 'released'; },
    zPeer: () => z.peer().n(),
    noop: () => 0,
  });
}`;
    const host = await Host.open({ gcEvery: 1 });
    try {
      const a = host.createVat(src, { name: 'a' });
      const records = () => [...host.store.entries(`k.vs.${a.vatId}.v1.vo.`)].length;
      await host.E(a.root).make();
      assert.equal(records(), 3);
      for (let i = 0; i < 3; i++) await host.E(a.root).noop();
      assert.equal(records(), 3, 'the cell whose state is kept stays');
      assert.equal(await host.E(a.root).readKept(), 42);
      await host.E(a.root).overwrite();
      for (let i = 0; i < 3; i++) await host.E(a.root).noop();
      assert.equal(await host.E(a.root).zPeer(), 42);
      // Once the state is let go, the cell goes too.
      await host.E(a.root).release();
      for (let i = 0; i < 4; i++) await host.E(a.root).noop();
      assert.equal(records(), 2);
      assert.equal(await host.E(a.root).zPeer(), 42);
    } finally {
      await host.close();
    }
  });

  it('looks up objects no store names without registering them', async () => {
    const src = `import { Far } from '@endo/far';
import { makeScalarBigMapStore, makeScalarBigWeakMapStore } from '@agoric/vat-data';
export function buildRootObject() {
  const m = makeScalarBigMapStore('m');
  const w = makeScalarBigWeakMapStore('w');
  return Far('a', {
    look: (n) => {
      let found = 0;
      for (let i = 0; i < n; i++) {
        const k = Far('k', {});
        if (m.has(k) || w.has(k)) found++;
        try { m.get(k); found++; } catch {}
        try { m.delete(k); found++; } catch {}
      }
      return found;
    },
    fresh: () => Far('t', {}),
  });
}`;
    const host = await Host.open({});
    try {
      const a = host.createVat(src, { name: 'a' });
      assert.equal(await host.E(a.root).look(300), 0);
      await host.E(a.root).fresh();
      // The fresh object is the vat's first ordinary export after its root:
      // each lookup allocated (and kept) a vref before.
      const exports = [...host.store.entries(`k.c.${a.vatId}.v.o+`)].map(([k]) => k.slice(`k.c.${a.vatId}.v.`.length));
      assert.deepEqual(exports.filter((v) => /^o\+\d+$/.test(v)).sort(), ['o+0', 'o+1']);
    } finally {
      await host.close();
    }
  });

  it('deletes durable objects dropped just before an upgrade, in the new incarnation', async () => {
    const version = (v: string) => `import { provideKindHandle, defineDurableKind, provideDurableMapStore, provide } from '@quickvat/vat-data';
export const defineInstallationKinds = () => (baggage) => {
  const make = defineDurableKind(provideKindHandle(baggage, 'Rec'), (i) => ({ i }), { i: ({ state }) => state.i });
  const recs = provideDurableMapStore(baggage, 'recs');
  const makePub = defineDurableKind(provideKindHandle(baggage, 'Pub'), () => ({}), {
    add: (_c, n) => { for (let i = 0; i < n; i++) recs.init(recs.getSize(), make(i)); return recs.getSize(); },
    clear: () => { recs.clear(); return 0; },
    noop: () => 0,
    version: () => '${v}',
  });
  const pub = provide(baggage, 'pub', () => makePub());
  return () => ({ publicFacet: pub });
};`;
    const host = await Host.open({ gcEvery: 5 });
    try {
      const kit = host.startInstance(host.install(version('v1'), { label: 'u' })) as { publicFacet: unknown; adminFacet: unknown; instanceId: string };
      assert.equal(await host.E(kit.publicFacet).add(20), 20);
      const records = () => [...host.store.entries(`k.vs.${kit.instanceId}.d.vo.`)].length;
      const before = records();
      await host.E(kit.publicFacet).clear(); // the 20 records are unreachable now, known only to the heap
      await host.upgrade(kit.adminFacet as never, version('v2'));
      for (let i = 0; i < 15; i++) await host.E(kit.publicFacet).noop();
      assert.equal(await host.E(kit.publicFacet).version(), 'v2');
      assert.equal(records(), before - 20);
      assert.equal(count(host, `k.vs.${kit.instanceId}.d.gcc.`), 0);
    } finally {
      await host.close();
    }
  });

  it('lets go of ordinary objects used as weak store keys once the program does, and finds the ones it keeps', async () => {
    const src = `import { Far } from '@endo/far';
import { makeScalarBigWeakMapStore, makeScalarBigWeakSetStore } from '@agoric/vat-data';
export function buildRootObject() {
  const byHandle = makeScalarBigWeakMapStore('byHandle');
  const seen = makeScalarBigWeakSetStore('seen');
  let kept;
  return Far('a', {
    round: (n) => {
      for (let i = 0; i < n; i++) { const h = Far('handle', {}); byHandle.init(h, i); seen.add(h); kept = h; }
      return 0;
    },
    check: () => harden([byHandle.get(kept), seen.has(kept)]),
    noop: () => 0,
  });
}`;
    const host = await Host.open({ gcEvery: 1 });
    try {
      const a = host.createVat(src, { name: 'a' });
      for (let r = 0; r < 3; r++) await host.E(a.root).round(100);
      for (let i = 0; i < 3; i++) await host.E(a.root).noop();
      assert.deepEqual(await host.E(a.root).check(), [99, true]);
      // Only the kept handle's two entries (one per store) are left.
      assert.equal(count(host, `k.vs.${a.vatId}.v1.c.`), 2);
    } finally {
      await host.close();
    }
  });
});
