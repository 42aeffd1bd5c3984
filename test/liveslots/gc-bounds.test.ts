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
});
