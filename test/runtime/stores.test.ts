// Virtual and durable stores take Agoric's pattern arguments and store
// options (issue 12, review break-12 items 1 and 5): a pattern narrows
// keys/values/entries/getSize/snapshot/clear, keyShape/valueShape are checked
// on every write and, for durable stores, across an upgrade.
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';

const STORES_V1 = `
import { prepareExo, M, makeScalarBigMapStore, provideDurableMapStore, provideDurableSetStore } from '@agoric/vat-data';
import { makeDurableZone } from '@agoric/zone/durable.js';
const j = (x) => JSON.stringify(x, (k, v) => (typeof v === 'bigint' ? v + 'n' : v));
const refusal = (f) => { try { f(); return 'accepted'; } catch (e) { return e.message; } };
export const defineInstallationKinds = () => (baggage) => {
  const d = provideDurableMapStore(baggage, 'd');
  const s = provideDurableSetStore(baggage, 's');
  const v = makeScalarBigMapStore('v');
  const shaped = makeDurableZone(baggage).mapStore('shaped', harden({ keyShape: M.string(), valueShape: M.nat() }));
  const tmp = M.and(M.string(), M.gte('tmp:'), M.lt('tmp;'));
  const pub = prepareExo(baggage, 'Pub', undefined, {
    fill() {
      for (const st of [d, v]) { st.init('a', 1n); st.init('b', 2n); st.init('c', 'x'); st.init(5, 5n); st.init('tmp:1', 0n); st.init('tmp:2', 0n); }
      s.add('a'); s.add(5); s.add('tmp:x');
    },
    query() {
      const out = {};
      for (const [name, st] of [['durable', d], ['virtual', v]]) {
        out[name] = j({
          strings: [...st.keys(M.string())],
          nats: [...st.values(M.any(), M.nat())],
          fromB: [...st.entries(M.gte('b'))].length,
          numbers: st.getSize(M.number()),
          all: st.getSize(),
          snapshot: st.snapshot(M.number()).payload.keys,
          range: [...st.keys({ start: 'a', end: 'c' })],
        });
      }
      out.set = j({ strings: [...s.keys(M.string())], size: s.getSize(M.number()) });
      return harden(out);
    },
    clearTmp() {
      d.clear(tmp); v.clear(tmp); s.clear(tmp);
      return harden([j([...d.keys()]), d.getSize(), j([...v.keys()]), j([...s.keys()]), s.getSize()]);
    },
    shapes() {
      return harden([refusal(() => shaped.init(1, 1n)), refusal(() => shaped.init('a', 'not a nat')), refusal(() => shaped.init('a', 1n)), refusal(() => shaped.set('a', -1n))]);
    },
  });
  return () => ({ publicFacet: pub });
};`;

const STORES_V2 = STORES_V1.replace("shaped.init('a', 1n)", "shaped.init('b', 2n)");

describe('virtual and durable stores: patterns and keyShape/valueShape (issue 12)', function () {
  this.timeout(30_000);

  it('narrows keys/values/entries/getSize/snapshot by pattern, and clear(pattern) deletes only what matches', async () => {
    const host = await Host.open();
    const E = (target: unknown) => host.E(target);
    try {
      const pub = host.startInstance(host.install(STORES_V1, { label: 'stores' })).publicFacet;
      await E(pub).fill();
      const q = await E(pub).query();
      const expected = JSON.stringify({ strings: ['a', 'b', 'c', 'tmp:1', 'tmp:2'], nats: ['5n', '1n', '2n', '0n', '0n'], fromB: 4, numbers: 1, all: 6, snapshot: [5], range: ['a', 'b'] });
      assert.equal(q.durable, expected);
      assert.equal(q.virtual, expected);
      assert.equal(q.set, JSON.stringify({ strings: ['a', 'tmp:x'], size: 1 }));
      assert.deepEqual(await E(pub).clearTmp(), [JSON.stringify([5, 'a', 'b', 'c']), 4, JSON.stringify([5, 'a', 'b', 'c']), JSON.stringify([5, 'a']), 2]);
    } finally {
      await host.close();
    }
  });

  it('checks keyShape and valueShape on init and set, for a durable store also after an upgrade', async () => {
    const host = await Host.open();
    const E = (target: unknown) => host.E(target);
    try {
      const kit = host.startInstance(host.install(STORES_V1, { label: 'shapes' }));
      const refusals = ['shaped key: number 1 - Must be a string', 'shaped value: string "not a nat" - Must be a bigint'];
      assert.deepEqual(await E(kit.publicFacet).shapes(), [...refusals, 'accepted', 'shaped value: "[-1n]" - Must be non-negative']);
      await host.upgrade(kit.adminFacet, STORES_V2);
      assert.deepEqual(await E(kit.publicFacet).shapes(), [...refusals, 'accepted', 'shaped value: "[-1n]" - Must be non-negative']);
    } finally {
      await host.close();
    }
  });
});
