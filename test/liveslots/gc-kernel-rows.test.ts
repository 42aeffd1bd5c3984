// Kernel rows that GC must not leave behind (issue #11, second hostile
// review): resolved promise rows in a workload that never retires anything,
// and the methods-used index of exports GC dropped.
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';
import { MIN_DEBT } from '../../host/kernel/gc-sweep.js';

function count(host: Host, prefix: string): number {
  let n = 0;
  for (const _ of host.store.entries(prefix)) n++;
  return n;
}

describe('liveslots: GC leaves no kernel rows behind (issue #11)', () => {
  it('deletes resolved promise rows nobody names, though no vat ever retires an import', async function () {
    this.timeout(120_000);
    const CALLER = `import { Far, E } from '@endo/far';
export function buildRootObject() {
  return Far('a', { ping: async (b, n) => { let s = 0; for (let i = 0; i < n; i++) s += await E(b).inc(i); return s; } });
}`;
    const COUNTER = `import { Far } from '@endo/far';
export function buildRootObject() { return Far('b', { inc: (i) => i + 1 }); }`;
    const host = await Host.open({});
    try {
      const a = host.createVat(CALLER, { name: 'a' });
      const b = host.createVat(COUNTER, { name: 'b' });
      const rows: number[] = [];
      for (let round = 0; round < 4; round++) {
        await host.E(a.root).ping(b.root, 400);
        rows.push(count(host, 'k.kp.'));
      }
      // One row per call (1,600) without GC of resolved promises; with it,
      // at most the debt that starts a cycle (MIN_DEBT) wait for the next one.
      assert.ok(Math.max(...rows) <= MIN_DEBT + 50, `k.kp rows ${rows.join(', ')}`);
      assert.equal(count(host, 'k.ko.'), 2);
    } finally {
      await host.close();
    }
  });

  it('forgets the methods clients used on an export once GC drops it', async function () {
    this.timeout(120_000);
    const PRODUCER = `import { Far } from '@endo/far';
export function buildRootObject() { return Far('b', { fresh: () => Far('ticket', { use: () => 1 }) }); }`;
    const USER = `import { Far, E } from '@endo/far';
export function buildRootObject() { return Far('a', { round: async (b) => { const t = await E(b).fresh(); return E(t).use(); } }); }`;
    const host = await Host.open({ gcEvery: 10 });
    try {
      const b = host.createVat(PRODUCER, { name: 'b' });
      const a = host.createVat(USER, { name: 'a' });
      for (let r = 0; r < 200; r++) assert.equal(await host.E(a.root).round(b.root), 1);
      // One row per ticket (200) without; the root's, and the tickets not yet collected.
      assert.ok(count(host, `k.mu.${b.vatId}.`) <= 12, `k.mu rows ${count(host, `k.mu.${b.vatId}.`)}`);
    } finally {
      await host.close();
    }
  });

  it('does not keep promises the host received once the host has their settlement', async function () {
    this.timeout(120_000);
    const src = `import { Far } from '@endo/far';
export function buildRootObject() { return Far('a', { later: (i) => harden({ q: Promise.resolve(i) }) }); }`;
    const host = await Host.open({ gcEvery: 1 });
    try {
      const a = host.createVat(src, { name: 'a' });
      for (let i = 0; i < 300; i++) {
        const { q } = (await host.E(a.root).later(i)) as { q: Promise<number> };
        assert.equal(await q, i);
      }
      assert.equal(count(host, 'k.gc.hostref.kp'), 0);
      // One row per call and per promise (600) would be kept without; with
      // GC, at most the debt that starts a cycle (MIN_DEBT) wait for it.
      assert.ok(count(host, 'k.kp.') <= MIN_DEBT + 50, `k.kp rows ${count(host, 'k.kp.')}`);
    } finally {
      await host.close();
    }
  });
});
