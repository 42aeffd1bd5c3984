// Issue #10, attacks found by a hostile review of the first run policy: each
// of these failed before its fix (messages parked on promises escaping every
// limit, a two-promise cycle notifying an innocent vat forever, a suspended
// vat using up its clients' shares, auto-suspension that never fired under
// default budgets, inputs joining a running block, size checks fooled by
// shared objects, an observer's exception stopping the host, internal keys in
// a vat's errors).
import assert from 'node:assert/strict';
import { Host, HostStackOverflow } from '../../host/index.js';
import { INNOCENT_VAT } from '../fixtures/runaway-vats.js';

const tick = () => new Promise((r) => setImmediate(r));
const settle = async (n = 30) => {
  for (let i = 0; i < n; i++) await tick();
};

const HOLDER = `
import { Far } from '@endo/far';
import { makePromiseKit } from '@endo/promise-kit';
export function buildRootObject() {
  const kits = [];
  return Far('holder', {
    pending() { const k = makePromiseKit(); kits.push(k); return k.promise; },
    releaseAll() { for (const k of kits) k.resolve(Far('thing', { foo(i) { return i; } })); return kits.length; },
  });
}`;

const PARKER = `
import { Far, E } from '@endo/far';
export function buildRootObject() {
  let r;
  return Far('parker', {
    setUp(holder) { r = E(holder).pending(); },
    async park(n) {
      const ps = [];
      for (let i = 0; i < n; i++) ps.push(E(r).foo(i));
      const settled = await Promise.allSettled(ps);
      return settled.filter((s) => s.status === 'rejected').length;
    },
  });
}`;

const CYCLE_A = `import { Far, E } from '@endo/far';
import { makePromiseKit } from '@endo/promise-kit';
export function buildRootObject() {
  const k1 = makePromiseKit();
  const self = Far('a', {
    start(b) { E(b).exchange(k1.promise, self).catch(() => {}); return 'started'; },
    takeP(pB) { k1.resolve(harden({ other: pB, n: 1 })); },
    give(r) { return E(r).take(k1.promise); },
  });
  return self;
}`;
const CYCLE_B = `import { Far, E } from '@endo/far';
import { makePromiseKit } from '@endo/promise-kit';
export function buildRootObject() {
  const k2 = makePromiseKit();
  return Far('b', { exchange(pA, a) { E(a).takeP(k2.promise).catch(() => {}); k2.resolve(harden({ other: pA, n: 2 })); } });
}`;
const RECEIVER = `import { Far } from '@endo/far';
export function buildRootObject() {
  let got = 'nothing yet';
  return Far('receiver', {
    take(p) { p.then(async (v) => { const w = await v.other; got = [v.n, w.n, (await w.other).n].join(','); }); return 'taken'; },
    got() { return got; },
  });
}`;

describe('run policy under attack (issue #10)', () => {
  it('counts messages parked on an unresolved promise against the sender’s share, and releases them in bounded steps', async () => {
    const host = await Host.open({ maxQueuedPerVat: 20, maxQueueLength: 50 });
    try {
      const holder = host.createVat(HOLDER, { name: 'holder' }).root;
      const parker = host.createVat(PARKER, { name: 'parker' });
      const innocent = host.createVat(INNOCENT_VAT, { name: 'innocent' }).root;
      await host.E(parker.root).setUp(holder);
      const parking = host.E(parker.root).park(60);
      await settle();
      const parked = [...host.store.entries('k.pq.')].length;
      assert.ok(parked > 0 && parked <= 20, `at most the share is parked, got ${parked}`);
      assert.equal(host.vatStats(parker.vatId).queueShare, 20, 'parked and queued messages count in the sender’s share');
      // Vats' traffic never fills the host's own room.
      assert.equal(await host.E(innocent).hello('operator'), 'hello operator');
      assert.equal(await host.E(holder).releaseAll(), 1);
      assert.equal(await parking, 40, 'the sends beyond the share were refused');
      assert.equal([...host.store.entries('k.pq.')].length, 0, 'every parked message was released');
      assert.equal(host.vatStats(parker.vatId).queueShare, 0);
    } finally {
      await host.close();
    }
  });

  it('settles two promises that name each other in one notify: an innocent receiver resumes and the chain stops', async () => {
    const host = await Host.open();
    try {
      const a = host.createVat(CYCLE_A, { name: 'a' }).root;
      const b = host.createVat(CYCLE_B, { name: 'b' }).root;
      const r = host.createVat(RECEIVER, { name: 'receiver' });
      // The receiver holds kp1 before the colluders make the cycle.
      assert.equal(await host.E(a).give(r.root), 'taken');
      assert.equal(await host.E(a).start(b), 'started');
      await settle(60);
      assert.equal(await host.E(r.root).got(), '1,2,1');
      const deliveries = host.vatStats(r.vatId).deliveries;
      await settle(60);
      assert.equal(host.vatStats(r.vatId).deliveries, deliveries, 'no endless notifications');
      assert.ok(deliveries < 10, `the receiver got ${deliveries} deliveries`);
      assert.equal(host.kernel.hasRunnableWork(), false);
    } finally {
      await host.close();
    }
  });

  it('a suspended vat’s backlog uses up its clients’ share for it, not for other vats', async () => {
    const host = await Host.open({ maxQueuedPerVat: 5 });
    try {
      const service = host.createVat(INNOCENT_VAT, { name: 'service' });
      const other = host.createVat(INNOCENT_VAT, { name: 'other' }).root;
      const client = host.createVat(INNOCENT_VAT, { name: 'client' }).root;
      host.suspend(service.vatId, 'maintenance');
      const toService = host.E(client).burst(service.root, 8);
      await settle();
      assert.deepEqual(await host.E(client).burst(other, 3), [], 'sends to another vat still go');
      host.resume(service.vatId);
      const refused = (await toService) as string[];
      assert.equal(refused.length, 3);
      assert.match(refused[0], /^noop was not sent: this vat already has 5 messages waiting for that vat, its share$/);
    } finally {
      await host.close();
    }
  });

  it('suspends after N meter faults in a row even when no block holds N of them', async () => {
    const host = await Host.open({ deliveryBudget: 20_000_000n, runPolicy: { suspendAfterMeterFaults: 3, computeBudget: 30_000_000n } });
    try {
      const { vatId, root } = host.createVat(INNOCENT_VAT, { name: 'spinner' });
      const spins = [1, 2, 3, 4].map(() => host.E(root).spin().catch((e: Error) => e.message));
      await Promise.all(spins.slice(0, 3));
      await settle();
      assert.equal(host.vatStats(vatId).suspendedBecause, 'exhausted its meter 3 times in a row');
      assert.equal(host.vatStats(vatId).queued, 1);
      host.resume(vatId);
      assert.match(await spins[3], /exhausted its compute budget/);
      assert.equal(host.vatStats(vatId).suspended, false, 'resuming starts the count again');
    } finally {
      await host.close();
    }
  });

  it('an input that arrives during a block enters the queue when the block ends', async () => {
    const host = await Host.open({ autoRun: false });
    try {
      const a = host.createVat(INNOCENT_VAT, { name: 'a' }).root;
      const first = [1, 2, 3].map((n) => host.E(a).add(n));
      const running = host.run();
      await tick();
      const late = host.E(a).add(100);
      const block = await running;
      assert.equal(block.cranks, 3, 'the running block did not take the late input');
      assert.deepEqual(await Promise.all(first), [1, 3, 6]);
      assert.equal(host.kernel.queue.length(), 1);
      assert.equal((await host.run()).cranks, 1);
      assert.equal(await late, 106);
    } finally {
      await host.close();
    }
  });

  it('counts a shared object once per reference and looks into Errors when sizing host sends', async () => {
    const host = await Host.open();
    try {
      const { root } = host.createVat(INNOCENT_VAT, { name: 'a' });
      const shared = { s: 'x'.repeat(1 << 19) };
      await assert.rejects(host.E(root).hello(Array(4).fill(shared)), /strings exceed 1048576 characters in total \(at argument 0\[1\]\.s\)/);
      await assert.rejects(host.E(root).hello(new Error('y'.repeat(2 << 20))), /strings exceed 1048576 characters in total \(at argument 0\.message\)/);
      assert.equal(host.kernel.queue.length(), 0);
    } finally {
      await host.close();
    }
  });

  it('an observer that throws does not stop the host; stateHash works while work runs', async () => {
    const host = await Host.open();
    try {
      const a = host.createVat(INNOCENT_VAT, { name: 'a' }).root;
      let calls = 0;
      host.kernel.shadows.set(host.vats()[0].vatId, {
        observe() {
          calls++;
          throw new Error('operator callback bug');
        },
      });
      assert.equal(await host.E(a).add(1), 1);
      assert.equal(await host.E(a).add(2), 3);
      assert.equal(calls, 2);
      assert.match(host.kernel.vatLog.join('\n'), /host: a delivery observer threw: operator callback bug/);
      const busy = [1, 2, 3, 4, 5].map((n) => host.E(a).burn(100_000 * n));
      await tick();
      assert.match(host.stateHash(), /^[0-9a-f]{64}$/);
      await Promise.all(busy);
    } finally {
      await host.close();
    }
  });

  it('never commits a host stack overflow as a delivery’s outcome: the item runs again from a fresh stack', async () => {
    const host = await Host.open();
    try {
      const { vatId, root } = host.createVat(INNOCENT_VAT, { name: 'a' });
      const manager = host.kernel.manager(vatId);
      const deliver = manager.deliver.bind(manager);
      let faults = 0;
      manager.deliver = (...args) => {
        if (faults++ === 0) throw new HostStackOverflow();
        return deliver(...args);
      };
      assert.equal(await host.E(root).add(5), 5);
      assert.equal(faults, 2, 'delivered once more after the fault');
      assert.deepEqual([host.vatStats(vatId).aborted, host.kernel.state.count('aborted')], [0, 0], 'nothing recorded as aborted');
    } finally {
      await host.close();
    }
  });

  it('refuses meaningless budgets and policies at open, naming them', async () => {
    await assert.rejects(Host.open({ deliveryBudget: 0n }), /deliveryBudget must be a positive number of meter units, got 0/);
    await assert.rejects(Host.open({ snapshotEveryUnits: -1n }), /snapshotEveryUnits must be a positive bigint/);
    await assert.rejects(Host.open({ runPolicy: { maxCranks: 1.5 } }), /maxCranks must be a positive integer/);
    const host = await Host.open({ autoRun: false });
    try {
      assert.equal((await host.run({ maxCranks: undefined })).stoppedBy, 'idle', 'undefined means the default');
    } finally {
      await host.close();
    }
  });
});
