// GC work is bounded per delivery and isolated per vat (issue #11, second
// hostile review): no amount of garbage, and no failing vat, may wedge GC
// for the kernel or make ordinary deliveries fail. Each test uses a small
// deliveryBudget so that the unbounded version exhausts the meter quickly.
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';

function count(host: Host, prefix: string): number {
  let n = 0;
  for (const _ of host.store.entries(prefix)) n++;
  return n;
}

const MAKER = `import { Far } from '@endo/far';
import { defineKind } from '@agoric/vat-data';
export function buildRootObject() {
  const make = defineKind('ticket', (i) => ({ i }), { i: ({ state }) => state.i });
  return Far('a', { batch: (n) => harden(Array.from({ length: n }, (_, i) => make(i))) });
}`;
const PRODUCER = `import { Far } from '@endo/far';
export function buildRootObject() { return Far('p', { fresh: () => Far('t', {}) }); }`;
const CONSUMER = `import { Far, E } from '@endo/far';
export function buildRootObject() { return Far('q', { round: async (p) => { await E(p).fresh(); return 0; } }); }`;

describe('liveslots: bounded, isolated GC work (issue #11)', () => {
  it('drops thousands of exports in bounded dropExports cranks, charging the exporter no meter fault and blocking nobody', async function () {
    this.timeout(120_000);
    const host = await Host.open({ deliveryBudget: 50_000_000n, gcEvery: 5 });
    try {
      const a = host.createVat(MAKER, { name: 'a' });
      const p = host.createVat(PRODUCER, { name: 'p' });
      const q = host.createVat(CONSUMER, { name: 'q' });
      const got: unknown[] = [];
      for (let i = 0; i < 30; i++) got.push(...((await host.E(a.root).batch(200)) as unknown[]));
      assert.equal(await host.release(...(got as never[])), 6000);
      for (let i = 0; i < 25; i++) await host.E(q.root).round(p.root);
      // Only the three roots are left; the innocent pair's garbage went too.
      assert.equal(count(host, 'k.ko.'), 3);
      assert.equal(count(host, `k.c.${a.vatId}.`), 2); // o+0 both ways
      assert.ok(count(host, `k.c.${q.vatId}.`) <= 2);
      const stats = host.kernel.vatStats(a.vatId);
      assert.equal(stats.meterFaults, 0);
      assert.equal(stats.aborted, 0);
    } finally {
      await host.close();
    }
  });

  it('forgets the objects of an exporter that fails its dropExports, and keeps collecting everyone else', async () => {
    // A raw guest that refuses every dropExports (a hostile or buggy runtime).
    const host = await Host.open({ gcEvery: 1 });
    try {
      const a = host.createVat(MAKER, { name: 'a' });
      const p = host.createVat(PRODUCER, { name: 'p' });
      const q = host.createVat(CONSUMER, { name: 'q' });
      const got = (await host.E(a.root).batch(3)) as never[];
      // Make a's runtime refuse the drop: its GC delivery fails, the kernel moves on.
      const sandbox = (host.kernel as unknown as { manager(v: string): { deliver: (d: unknown, s: unknown) => unknown } }).manager(a.vatId);
      const deliver = sandbox.deliver.bind(sandbox);
      sandbox.deliver = (d: unknown, s: unknown) => {
        if ((d as unknown[])[0] === 'dropExports') throw new Error('no, I will not drop');
        return deliver(d, s);
      };
      assert.equal(await host.release(...got), 3);
      for (let i = 0; i < 10; i++) await host.E(q.root).round(p.root);
      assert.equal(count(host, 'k.ko.'), 3);
      assert.equal(count(host, 'k.gc.dropping.'), 0);
      assert.equal(host.kernel.vatStats(a.vatId).meterFaults, 0);
    } finally {
      await host.close();
    }
  });

  it('deletes a dropped big collection a bounded number of entries per GC point, never failing a delivery', async function () {
    this.timeout(120_000);
    const BIG = `import { Far } from '@endo/far';
import { makeScalarBigMapStore } from '@agoric/vat-data';
export function buildRootObject() {
  let m = makeScalarBigMapStore('big');
  let n = 0;
  return Far('a', {
    fill: (k) => { for (let i = 0; i < k; i++) m.init(n++, i); return n; },
    forget: () => { m = undefined; return 'dropped'; },
    ping: () => 'pong',
  });
}`;
    // Deleting all 12,000 entries in one GC point exhausts a 50M meter.
    const host = await Host.open({ deliveryBudget: 50_000_000n, gcEvery: 10, snapshotEvery: 20 });
    try {
      const a = host.createVat(BIG, { name: 'a' });
      for (let i = 0; i < 8; i++) await host.E(a.root).fill(1500);
      assert.equal(count(host, `k.vs.${a.vatId}.v1.c.`), 12000);
      await host.E(a.root).forget();
      for (let i = 0; i < 30; i++) assert.equal(await host.E(a.root).ping(), 'pong');
      assert.equal(count(host, `k.vs.${a.vatId}.v1.c.`), 0);
      assert.equal(count(host, `k.vs.${a.vatId}.v1.cx.`), 0);
      assert.equal(host.kernel.vatStats(a.vatId).aborted, 0);
    } finally {
      await host.close();
    }
  });

  it('examines a bounded number of dropped imports per GC point, and drops them all over several', async function () {
    this.timeout(120_000);
    const EXPORTER = `import { Far } from '@endo/far';
export function buildRootObject() { return Far('a', { batch: (n) => harden(Array.from({ length: n }, () => Far('t', {}))) }); }`;
    const HOLDER = `import { Far, E } from '@endo/far';
export function buildRootObject() {
  let held = [];
  return Far('b', {
    grab: async (a, n) => { for (let k = 0; k < n; k += 500) held.push(...(await E(a).batch(500))); return held.length; },
    drop: () => { held = []; return 0; },
    ping: () => 'pong',
  });
}`;
    // Checking all 4,000 imports in one GC point exhausts a 30M meter.
    const host = await Host.open({ deliveryBudget: 30_000_000n, gcEvery: 5, snapshotEvery: 30 });
    try {
      const a = host.createVat(EXPORTER, { name: 'a' });
      const b = host.createVat(HOLDER, { name: 'b' });
      assert.equal(await host.E(b.root).grab(a.root, 4000), 4000);
      await host.E(b.root).drop();
      for (let i = 0; i < 40; i++) assert.equal(await host.E(b.root).ping(), 'pong');
      assert.equal(count(host, `k.c.${b.vatId}.`), 2); // its root, both ways
      // The exporter's side goes at the sweeps these retires pay for (gc-sweep.ts,
      // "when cycles run"): the last few may wait for a later one.
      assert.ok(count(host, `k.c.${a.vatId}.`) <= 10);
      assert.equal(host.kernel.vatStats(b.vatId).aborted, 0);
    } finally {
      await host.close();
    }
  });
});
