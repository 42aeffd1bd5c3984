// Issue #10: no vat can wedge the host. Runaway vats (ping-pong, fan-out, a
// looper) leave the host answering and its event loop running; blocks,
// shares, suspension, bounded host work and bounded replay.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Host } from '../../host/index.js';
import { ECHO_VAT, FAN_OUT_VAT, INNOCENT_VAT, LOOPER_VAT, PING_PONG_VAT } from '../fixtures/runaway-vats.js';

const tmpdir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'qv-runpolicy-'));
const tick = () => new Promise((r) => setImmediate(r));

/** Resolves with how late (ms) a 10 ms timer fired. */
function timerLateness(): Promise<number> {
  const start = performance.now();
  return new Promise((resolve) => setTimeout(() => resolve(performance.now() - start - 10), 10));
}

type Runaway = { start(host: Host): Promise<() => Promise<number>> };

const RUNAWAYS: Record<string, Runaway> = {
  'a ping-pong pair': {
    async start(host) {
      const a = host.createVat(PING_PONG_VAT, { name: 'ping' }).root;
      const b = host.createVat(PING_PONG_VAT, { name: 'pong' }).root;
      await host.E(a).setPeer(b);
      await host.E(b).setPeer(a);
      host.E(a).ping(0).catch(() => {}); // rejected at close: the host stops hearing answers
      return async () => ((await host.E(a).hits()) as number) + ((await host.E(b).hits()) as number);
    },
  },
  'a fan-out vat': {
    async start(host) {
      const f = host.createVat(FAN_OUT_VAT, { name: 'fanner' }).root;
      const e = host.createVat(ECHO_VAT, { name: 'echo' }).root;
      await host.E(f).setUp(e, f);
      host.E(f).fan().catch(() => {});
      return async () => ((await host.E(f).counts()) as { hits: number }).hits;
    },
  },
  'a solo looper': {
    async start(host) {
      const l = host.createVat(LOOPER_VAT, { name: 'looper' }).root;
      const target = host.createVat(INNOCENT_VAT, { name: 'target' }).root;
      await host.E(l).start(target);
      return async () => (await host.E(l).rounds()) as number;
    },
  },
};

describe('run policy: no vat wedges the host (issue #10)', () => {
  for (const [name, runaway] of Object.entries(RUNAWAYS)) {
    it(`${name} leaves host.E to an unrelated vat answering and a 10 ms timer firing`, async () => {
      const host = await Host.open();
      try {
        const unrelated = host.createVat(INNOCENT_VAT, { name: 'unrelated' }).root;
        const progress = await runaway.start(host);
        const late = timerLateness();
        assert.equal(await host.E(unrelated).hello('operator'), 'hello operator');
        // Generous bound: the point is that the timer fires while the runaway runs, not its precision.
        assert.ok((await late) < 1000, 'the timer fired while the queue was busy');
        const before = await progress();
        for (let i = 0; i < 20; i++) await tick();
        assert.ok((await progress()) > before, 'the runaway is still running: the host stayed responsive beside it');
        assert.equal(await host.E(unrelated).hello('again'), 'hello again');
        assert.ok(host.kernel.queue.length() <= 2 * host.kernel.limits.maxQueuedPerVat + 10, `queue bounded, ${host.kernel.queue.length()}`);
      } finally {
        await host.close();
      }
    });
  }

  it('Host.open returns on a store whose queue loops forever, and serves other vats', async () => {
    const dir = tmpdir();
    let host = await Host.open({ path: dir });
    const unrelated = host.createVat(INNOCENT_VAT, { name: 'unrelated' }).vatId;
    await RUNAWAYS['a ping-pong pair'].start(host);
    for (let i = 0; i < 10; i++) await tick();
    await host.close();
    host = await Host.open({ path: dir });
    try {
      assert.ok(host.kernel.queue.length() > 0, 'the looping work was committed to the queue');
      const root = host.vats().find((v) => v.vatId === unrelated)!.root!;
      assert.equal(await host.E(root).hello('after restart'), 'hello after restart');
    } finally {
      await host.close();
    }
  });

  it('refuses a vat’s sends beyond its share of the run queue, with a clear error, and nothing else', async () => {
    const host = await Host.open({ maxQueuedPerVat: 10 });
    try {
      const a = host.createVat(INNOCENT_VAT, { name: 'a' }).root;
      const b = host.createVat(INNOCENT_VAT, { name: 'b' }).root;
      const refused = (await host.E(a).burst(b, 25)) as string[];
      assert.equal(refused.length, 15);
      assert.match(refused[0], /^noop was not sent: this vat already has 10 messages waiting for that vat, its share$/);
      assert.equal(await host.E(b).hello('still'), 'hello still');
    } finally {
      await host.close();
    }
  });

  it('refuses host sends when the run queue is full, and queues nothing for them', async () => {
    const host = await Host.open({ maxQueueLength: 3, autoRun: false });
    try {
      const a = host.createVat(INNOCENT_VAT, { name: 'a' }).root;
      const sends = [1, 2, 3].map((n) => host.E(a).add(n));
      await assert.rejects(host.E(a).add(4), /the run queue is full \(3 host messages waiting\); the send of add was refused/);
      assert.equal(host.kernel.queue.length(), 3);
      const report = await host.run();
      assert.equal(report.cranks, 3);
      assert.deepEqual(await Promise.all(sends), [1, 3, 6]);
    } finally {
      await host.close();
    }
  });

  it('host.run(policy) runs one block within the policy and reports it; one commit per block', async () => {
    const host = await Host.open({ autoRun: false });
    try {
      const a = host.createVat(INNOCENT_VAT, { name: 'a' }).root;
      const results = Array.from({ length: 7 }, (_, i) => host.E(a).add(i));
      let commits = 0;
      const commit = host.store.commit.bind(host.store);
      host.store.commit = () => {
        commits++;
        commit();
      };
      const first = await host.run({ maxCranks: 5 });
      assert.deepEqual([first.cranks, first.stoppedBy, first.queueLength], [5, 'maxCranks', 2]);
      assert.equal(commits, 1, 'one commit for the block');
      const second = await host.run({ maxCranks: 5 });
      assert.deepEqual([second.cranks, second.stoppedBy, second.queueLength], [2, 'idle', 0]);
      assert.deepEqual(await Promise.all(results), [0, 1, 3, 6, 10, 15, 21]);
      const budgeted = host.E(a).burn(200_000);
      const byBudget = await host.run({ computeBudget: 1n });
      assert.equal(byBudget.stoppedBy, 'computeBudget');
      assert.ok(byBudget.computeUsed > 1n);
      assert.equal(typeof (await budgeted), 'number');
      await assert.rejects(host.run({ maxCranks: 0 }), /maxCranks must be a positive integer/);
    } finally {
      await host.close();
    }
  });

  it('a failed crank in a block rolls back only itself', async () => {
    const host = await Host.open({ autoRun: false, deliveryBudget: 20_000_000n });
    try {
      const a = host.createVat(INNOCENT_VAT, { name: 'a' }).root;
      const one = host.E(a).add(1);
      const spin = host.E(a).spin();
      const two = host.E(a).add(2);
      const report = await host.run();
      assert.equal(report.cranks, 3, 'three items, the failed one included');
      assert.equal(await one, 1);
      await assert.rejects(spin, /spin failed: the receiving vat exhausted its compute budget/);
      assert.equal(await two, 3);
    } finally {
      await host.close();
    }
  });
});

describe('suspension (issue #10)', () => {
  const CONTRACT_V1 = INNOCENT_VAT;
  const CONTRACT_V2 = INNOCENT_VAT.replace("'hello ' + who", "'hello from v2, ' + who");

  it('suspends, queues, survives restart, upgrades while suspended, resumes', async () => {
    const dir = tmpdir();
    let host = await Host.open({ path: dir });
    const installation = host.install(CONTRACT_V1, { label: 'innocent' });
    const kit = host.startInstance(installation);
    const id = kit.instanceId;
    host.suspend(kit.adminFacet, 'operator: investigating');
    let settled = false;
    const queued = host.E(kit.root).hello('queued').then(() => (settled = true));
    for (let i = 0; i < 10; i++) await tick();
    assert.equal(settled, false, 'nothing runs for a suspended vat');
    assert.deepEqual(
      { suspended: host.vatStats(id).suspended, queued: host.vatStats(id).queued, why: host.vatStats(id).suspendedBecause },
      { suspended: true, queued: 1, why: 'operator: investigating' },
    );
    await host.close();
    await assert.rejects(queued, /the host was closed before this message was answered; it stays queued and runs when the store is opened again/);

    host = await Host.open({ path: dir });
    try {
      assert.equal(host.vatStats(id).suspended, true, 'suspension survives restart');
      assert.equal(host.vatStats(id).queued, 1);
      const admin = host.adminFacet(id);
      assert.deepEqual(await host.upgrade(admin, CONTRACT_V2), { incarnation: 2 });
      assert.equal(host.vatStats(id).suspended, true, 'still suspended after the repair');
      host.resume(id);
      const root = host.instanceKit(id).root;
      assert.equal(await host.E(root).hello('after'), 'hello from v2, after');
      assert.equal(host.vatStats(id).queued, 0, 'the queued message ran too');
    } finally {
      await host.close();
    }
  });

  it('suspends a vat that exhausts its meter N times in a row in one block (policy)', async () => {
    const host = await Host.open({ deliveryBudget: 20_000_000n, runPolicy: { suspendAfterMeterFaults: 3 } });
    try {
      const { vatId, root } = host.createVat(INNOCENT_VAT, { name: 'spinner' });
      const spins = [1, 2, 3, 4, 5].map(() => host.E(root).spin());
      for (const p of spins.slice(0, 3)) await assert.rejects(p, /exhausted its compute budget/);
      for (let i = 0; i < 10; i++) await tick();
      const stats = host.vatStats(vatId);
      assert.equal(stats.suspended, true);
      assert.equal(stats.suspendedBecause, 'exhausted its meter 3 times in a row');
      assert.equal(stats.meterFaults, 3);
      assert.equal(stats.queued, 2);
      assert.ok(BigInt(stats.computeUsed) >= 60_000_000n);
      host.resume(vatId);
      for (const p of spins.slice(3)) await assert.rejects(p, /exhausted its compute budget/);
    } finally {
      await host.close();
    }
  });
});

describe('bounded host work and replay (issue #10)', () => {
  it('interleaved new-key writes and getNextKey: 32,000 iterations within one delivery budget', async () => {
    const host = await Host.open();
    try {
      const { vatId, root } = host.createVat(INNOCENT_VAT, { name: 'keys' });
      assert.equal(await host.E(root).interleave(32_000), 32_000);
      assert.ok(BigInt(host.vatStats(vatId).computeUsed) < 500_000_000n);
    } finally {
      await host.close();
    }
  });

  it('refuses an oversized argument by its size, before marshalling, with a short message', async () => {
    const host = await Host.open();
    try {
      const { root } = host.createVat(INNOCENT_VAT, { name: 'a' });
      const sparse: unknown[] = [];
      sparse.length = 10_000_000;
      const err = await host.E(root).hello(sparse).then(() => null, (e: Error) => e);
      assert.match(String(err?.message), /^argument 0 is an array of length 10000000, above the limit of 100000 elements$/);
      const deep = { s: 'x'.repeat(2_000_000) };
      await assert.rejects(host.E(root).hello(deep), /strings exceed 1048576 characters in total \(at argument 0\.s\)/);
      assert.equal(host.kernel.queue.length(), 0);
    } finally {
      await host.close();
    }
  });

  it('snapshots by meter units, so reloading replays a bounded amount of work', async () => {
    const every = 20_000_000n;
    const host = await Host.open({ snapshotEveryUnits: every, snapshotEvery: 1000 });
    try {
      const { vatId, root } = host.createVat(INNOCENT_VAT, { name: 'burner' });
      for (let i = 0; i < 10; i++) await host.E(root).burn(600_000); // ~16M units each
      for (let i = 0; i < 10; i++) await host.E(root).noop();
      const record = host.kernel.vatRecord(vatId);
      assert.ok(record.snapshotPos > 1, 'expensive deliveries triggered snapshots before 1000 deliveries');
      assert.ok(BigInt(record.unitsSinceSnapshot!) < every, `replay bounded: ${record.unitsSinceSnapshot} units since the snapshot`);
      const hash = host.kernel.vatMemoryHash(vatId);
      host.kernel.dropAllSandboxes();
      assert.equal(host.kernel.vatMemoryHash(vatId), hash, 'the reload replays to the same state');
    } finally {
      await host.close();
    }
  });
});

describe('suspension through the admin capability (issue #10)', () => {
  const HOLDER = `import { Far, E } from '@endo/far';
  export function buildRootObject(_p, _v, baggage) {
    return Far('governor', {
      hold(admin) { baggage.init('admin', admin); },
      suspend(why) { return E(baggage.get('admin')).suspend(why); },
      resume() { return E(baggage.get('admin')).resume(); },
      isSuspended() { return E(baggage.get('admin')).isSuspended(); },
    });
  }`;

  it('lets a vat holding the admin capability suspend and resume an instance', async () => {
    const host = await Host.open();
    try {
      const kit = host.startInstance(host.install(INNOCENT_VAT, { label: 'governed' }));
      const governor = host.startInstance(host.install(HOLDER, { label: 'governor' })).root as object;
      await host.E(governor).hold(host.adminPresence(kit.adminFacet));
      assert.equal(await host.E(governor).suspend('committee vote 7'), true);
      assert.equal(await host.E(governor).isSuspended(), true);
      assert.equal(host.vatStats(kit.instanceId).suspendedBecause, 'committee vote 7');
      let answered = false;
      const hello = host.E(kit.root).hello('waiting').then((v) => ((answered = true), v));
      for (let i = 0; i < 10; i++) await tick();
      assert.equal(answered, false);
      assert.equal(await host.E(governor).resume(), true);
      assert.equal(await hello, 'hello waiting');
      await assert.rejects(host.E(governor).suspend('x'.repeat(2000)), /at most 1000 characters/);
    } finally {
      await host.close();
    }
  });
});
