// A GC sweep slice that fails (a kernel bug, a store error) while its cycle
// clears its marks (gc-sweep.ts, failed): the clear phase starts over, so no
// mark of that cycle is left for a later one to take as its own (break-gray
// #1: a leftover mark on a promise made the next cycle skip its resolution
// and drop objects only that resolution named).
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';
import { assertNothingNamedIsFreed, failNextSlice } from '../fixtures/gc-workload.js';
import { runUntilIdle, settleOne } from '../fixtures/run-idle.js';

const LATER = `import { Far } from '@endo/far';
export function buildRootObject() {
  let n = 0;
  let pending = [];
  const make = (k) => { const out = []; for (let i = 0; i < k; i++) { const id = n++; out.push(Far('thing', { id: () => id })); } return harden(out); };
  return Far('later', {
    make,
    later() { return new Promise((resolve) => pending.push(resolve)); },
    // Resolves what later() gave with k objects made now.
    fire(k) { const out = make(k); for (const r of pending) r(out); pending = []; return k; },
  });
}`;

const WAITER = `import { Far, E } from '@endo/far';
export function buildRootObject() {
  let kept = [];
  return Far('waiter', {
    async wait(f) { kept.push(...(await E(f).later())); return kept.length; },
    async check() { for (const x of kept) await E(x).id(); return kept.length; },
  });
}`;

describe('kernel: a GC slice that fails while its cycle clears (issue #10, break-gray #1)', () => {
  for (const work of [1, 2]) {
    it(`starts the clear phase over, leaving no mark for the next cycle (gcWorkPerCrank ${work})`, async function () {
      this.timeout(300_000);
      const host = await Host.open({ autoRun: false, gcEvery: 1, gcWorkPerCrank: work });
      try {
        const factory = host.createVat(LATER, { name: 'factory' });
        const waiter = host.createVat(WAITER, { name: 'waiter' });
        const given = (await settleOne(host, host.E(factory.root).make(2))) as object[];
        // The waiter awaits promise X, made before the cycle; a host release starts cycle 1, which marks X.
        const waited = host.E(waiter.root).wait(factory.root);
        await runUntilIdle(host);
        await host.release(given[0]);
        const phase = () => host.kernel.gcStats().phase;
        for (let i = 0; i < 5000 && phase() !== 'sweep'; i++) await host.run({ maxCranks: 1 });
        assert.equal(phase(), 'sweep');
        // X is resolved to objects made during cycle 1 (so unmarked) while only a queued notify names X.
        host.suspend(waiter.vatId);
        const fired = host.E(factory.root).fire(3);
        for (let i = 0; i < 5000 && phase() !== 'clear'; i++) await host.run({ maxCranks: 1 });
        assert.equal(await fired, 3);
        assert.equal(phase(), 'clear');
        // One clear slice fails: its crank rolls back, the item is consumed.
        failNextSlice(host, 'a clear slice failed');
        await host.run({ maxCranks: 1 });
        assert.ok(host.kernel.vatLog.some((l) => l.includes('a clear slice failed')));
        assert.equal(phase(), 'clear', 'the cycle waits in its clear phase');
        // New debt: the clear phase starts over and ends before cycle 2
        // starts, which must see X's resolution through the queued notify.
        await host.release(given[1]);
        let cycle2 = false;
        for (let i = 0; i < 20_000 && (phase() !== null || i === 0); i++) {
          await host.run({ maxCranks: 1 });
          assertNothingNamedIsFreed(host, `crank ${i}`);
          if (phase() === 'roots' && !cycle2) {
            cycle2 = true;
            let marks = 0;
            for (const _ of host.store.keys('k.gc.m.')) marks++;
            assert.equal(marks, 0, 'no mark of cycle 1 is left when cycle 2 starts');
          }
        }
        assert.ok(cycle2, 'cycle 2 ran');
        host.resume(waiter.vatId);
        await runUntilIdle(host);
        assert.equal(await waited, 3);
        assert.equal(await settleOne(host, host.E(waiter.root).check()), 3, 'the waiter can call what X named');
      } finally {
        await host.close();
      }
    });
  }

  it('does not retry a clear slice that keeps failing on every crank: it waits for new debt (break-rr #1)', async function () {
    this.timeout(120_000);
    const host = await Host.open({ autoRun: false, gcEvery: 1, gcWorkPerCrank: 1 });
    try {
      const factory = host.createVat(LATER, { name: 'factory' });
      const given = (await settleOne(host, host.E(factory.root).make(4))) as object[];
      await host.release(given[0]);
      const phase = () => host.kernel.gcStats().phase;
      for (let i = 0; i < 5000 && phase() !== 'clear'; i++) await host.run({ maxCranks: 1 });
      assert.equal(phase(), 'clear');
      const gc = host.kernel.gc;
      const step = gc.step.bind(gc);
      let failures = 0;
      gc.step = () => {
        failures++;
        throw new Error('this slice fails every time');
      };
      // The kernel goes idle after one failure and still serves vats.
      assert.equal((await host.run()).stoppedBy, 'idle');
      assert.equal(await settleOne(host, host.E(factory.root).make(1)).then((x) => (x as object[]).length), 1);
      assert.equal(failures, 1);
      // New debt resumes the same cycle's clear phase; once slices work again the cycle ends with no mark left.
      gc.step = step;
      await host.release(given[1]);
      await runUntilIdle(host);
      assert.equal(phase(), null);
      let marks = 0;
      for (const _ of host.store.keys('k.gc.m.')) marks++;
      assert.equal(marks, 0);
    } finally {
      await host.close();
    }
  });
});
