// Weak collections that understand virtual objects (issue #11, part 2).
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';
import { WEAK_KEYS } from '../fixtures/liveslots-vats.js';

describe('liveslots: weak collections and virtual objects (issue #11)', () => {
  it('a heap WeakMap/WeakSet keyed by a virtual or durable object finds the entry from a later delivery’s representative', async () => {
    const host = await Host.open();
    try {
      const root = host.createVat(WEAK_KEYS, { name: 'weak' }).root;
      assert.equal(await host.E(root).make(), 'made');
      assert.deepEqual(await host.E(root).read(), ['virtual note', 'durable note', true, false, true, false, true, false]);
      assert.deepEqual(await host.E(root).forget(), [false, false]);
      assert.deepEqual(await host.E(root).read(), [undefined, 'durable note', false, false, true, false, true, false]);
    } finally {
      await host.close();
    }
  });

  it('weak set stores (virtual and durable) take remotables only; durable ones durable objects only', async () => {
    const host = await Host.open();
    try {
      const root = host.createVat(WEAK_KEYS, { name: 'weak' }).root;
      await host.E(root).make();
      const errors = (await host.E(root).badKeys()) as string[];
      assert.match(errors[0], /weak collection "weak" keys must be remotables, got a string/);
      assert.match(errors[1], /durable collection "durableWeak": key is a non-durable object \(of a virtual kind\)/);
      assert.match(errors[2], /WeakMap keys must be objects, got string/);
    } finally {
      await host.close();
    }
  });

  it('heap weak stores (@agoric/store and the heap zone) find an entry keyed by a durable object from a later delivery (issue 12)', async () => {
    const host = await Host.open();
    try {
      const kit = host.startInstance(host.install(HEAP_WEAK_STORES, { label: 'heapweak' }));
      assert.deepEqual(await host.E(kit.publicFacet).make(), [true, true, true, true]);
      assert.deepEqual(await host.E(kit.publicFacet).look(), [true, true, true, true], 'found from a new representative');
    } finally {
      await host.close();
    }
  });
});

// Weak stores hold their keys weakly: only the durable map below names the
// key, so each delivery sees a new representative of it.
const HEAP_WEAK_STORES = `
import { prepareExoClass, prepareExo, provideDurableMapStore } from '@agoric/vat-data';
import { makeScalarWeakMapStore, makeScalarWeakSetStore } from '@agoric/store';
import { makeHeapZone } from '@agoric/zone';
export const defineInstallationKinds = () => (baggage) => {
  const makeKey = prepareExoClass(baggage, 'Key', undefined, (i) => ({ i }), { i() { return this.state.i; } });
  const keep = provideDurableMapStore(baggage, 'keep');
  const zone = makeHeapZone();
  const stores = [makeScalarWeakMapStore('wm'), makeScalarWeakSetStore('ws'), zone.weakMapStore('zwm'), zone.weakSetStore('zws')];
  const pub = prepareExo(baggage, 'Pub', undefined, {
    make() {
      const k = makeKey(1);
      keep.init(1, k);
      stores[0].init(k, 1); stores[1].add(k); stores[2].init(k, 1); stores[3].add(k);
      return harden(stores.map((s) => s.has(k)));
    },
    look() {
      const k = keep.get(1);
      return harden(stores.map((s) => s.has(k)));
    },
  });
  return () => ({ publicFacet: pub });
};`;
