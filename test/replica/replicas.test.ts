// Three replicas on one etcd (issue #15): random sends and upgrades through
// different replicas; equal state hashes at every height, every send settled
// with the same value everywhere, batched into blocks.
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';
import path from 'node:path';
import type { SubmitError } from '../../host/replica/replica.js';
import { etcdForSuite, runCliAsync, tmpdir, until } from './etcd-fixture.js';
import { assertHashesAgree, counterSource, counterWithCutterStopped, openReplica, prng, settleCluster, type TestReplica } from './helpers.js';

const SENDS = Number(process.env.QUICKVAT_REPLICA_SENDS ?? 2000);

describe('replicas on etcd', function () {
  this.timeout(240_000);
  const etcd = etcdForSuite();

  it(`${SENDS} random sends and 3 upgrades through 3 replicas: equal hashes at every height, same values everywhere`, async () => {
    const replicas: TestReplica[] = [];
    for (const name of ['r0', 'r1', 'r2']) replicas.push(await openReplica(etcd.endpoints, 'sends', name));
    try {
      const [r0, r1, r2] = replicas;
      assert.throws(() => r1.host.install(counterSource(1)), /replica r1 of cluster sends: its state changes only through the log/);
      const installation = await r0.host.replica!.install(counterSource(1), { label: 'counter' });
      const kit = await r1.host.replica!.startInstance(installation);
      const ref = r1.host.refOf(kit.root);
      for (const r of replicas) await r.host.replica!.waitForHeight(r1.host.replica!.height());
      const roots = replicas.map((r) => r.host.presence(ref));

      const random = prng(15);
      let expectedTotal = 0;
      const sends: Promise<{ who: number; id: number; value: unknown; rejected: boolean }>[] = [];
      const upgrades: Promise<{ incarnation: number }>[] = [];
      for (let i = 0; i < SENDS; i++) {
        const who = Math.floor(random() * 3);
        const n = 1 + Math.floor(random() * 100);
        const fail = random() < 0.05;
        if (!fail) expectedTotal += n;
        const host = replicas[who].host;
        const p = fail ? host.E(roots[who]).fail(n) : host.E(roots[who]).add(n);
        sends.push(p.then((value) => ({ who, id: i, value, rejected: false }), (err) => ({ who, id: i, value: String(err.message), rejected: true })));
        if (i % Math.floor(SENDS / 4) === Math.floor(SENDS / 8) && upgrades.length < 3) {
          const u = replicas[upgrades.length];
          upgrades.push(u.host.upgrade(u.host.adminFacet(kit.instanceId), counterSource(upgrades.length + 2)));
        }
        if (i % 100 === 99) await new Promise((r) => setImmediate(r));
      }
      const results = await Promise.all(sends);
      assert.deepEqual(await Promise.all(upgrades), [{ incarnation: 2 }, { incarnation: 3 }, { incarnation: 4 }]);
      assert.equal(results.filter((r) => r.rejected).length > 0, true);
      for (const r of results) if (!r.rejected) assert.match(String(r.value), /^v[1-4]:\d+$/);

      const head = await settleCluster(replicas);
      await assertHashesAgree(etcd.endpoints, 'sends', ['r0', 'r1', 'r2']);
      assert.ok(head < SENDS / 5, `sends are batched into blocks (${head} blocks for ${SENDS} sends)`);
      const hashes = replicas.map((r) => r.host.stateHash());
      assert.equal(new Set(hashes).size, 1, 'final state hashes agree');

      // Every replica saw every input's outcome, with the same value.
      for (const r of [r1, r2]) {
        assert.equal(r.outcomes.size, r0.outcomes.size);
        for (const [id, outcome] of r0.outcomes) assert.equal(r.outcomes.get(id), outcome, `outcome of ${id} on ${r.name}`);
      }
      assert.ok(r0.outcomes.size >= SENDS + 5);

      const read = (await r2.host.E(roots[2]).read()) as { total: number; count: number; version: number };
      assert.deepEqual(read, { total: expectedTotal, count: SENDS, version: 4 }, 'no send lost or applied twice');
    } finally {
      for (const r of replicas) await r.host.close();
    }
  });

  it('applies an input written twice under one id (a client retrying a timed-out write) once; the repeat is told which block applied it', async () => {
    const r = await openReplica(etcd.endpoints, 'retry', 'solo');
    try {
      const installation = await r.host.replica!.install(counterSource(1));
      const { root } = await r.host.replica!.startInstance(installation);
      const input = { type: 'send' as const, target: r.host.refOf(root), method: 'add', args: r.host.toCapdata([5]) };
      const log = r.host.replica!.etcd;
      const outcomes: { rejected: boolean; body: string }[] = [];
      r.host.replica!.on('outcome', (o: { id: string; rejected: boolean; data: { body: string } }) => o.id === 'retried-1' && outcomes.push({ rejected: o.rejected, body: o.data.body }));
      await log.submit({ id: 'retried-1', origin: 'test', input });
      await until('the first write to be applied', () => outcomes.length === 1);
      const first = r.host.replica!.height();
      // Once the cutter has deleted it from in/: a write while it waits there is the same input, not a second copy.
      await until('the first write to leave in/', async () => (await log.ns.get('in/retried-1').string()) === null);
      await log.submit({ id: 'retried-1', origin: 'test', input });
      const height = (await log.head()).head.height;
      await r.host.E(root).add(0); // a later block: the retry was cut by then
      assert.ok((await log.blocks(1, 100)).filter(({ block }) => block.inputs.some((i) => i.id === 'retried-1')).length === 2, 'both writes were cut');
      assert.ok(r.host.replica!.height() > height);
      assert.equal(outcomes.length, 2);
      assert.equal(outcomes[0].rejected, false);
      assert.equal(outcomes[1].rejected, true);
      assert.match(outcomes[1].body, new RegExp(`DuplicateInput: input retried-1 was already applied, in block ${first}; it was not applied again`));
      assert.deepEqual(await r.host.E(root).read(), { total: 5, count: 2, version: 1 });

      // Through the API: a client-chosen id, reused by a retry.
      assert.match(String(await r.host.fromCapdata((await r.host.replica!.send(r.host.refOf(root), 'add', r.host.toCapdata([7]), { id: 'order-42' })).data)), /^v1:12$/);
      const again = await r.host.replica!.send(r.host.refOf(root), 'add', r.host.toCapdata([7]), { id: 'order-42' });
      assert.equal(again.rejected, true);
      assert.match((r.host.fromCapdata(again.data) as Error).message, /DuplicateInput: input order-42 was already applied, in block \d+/);
      assert.deepEqual(await r.host.E(root).read(), { total: 12, count: 3, version: 1 });
      await assert.rejects(r.host.replica!.send(r.host.refOf(root), 'add', r.host.toCapdata([1]), { id: 'bad id' }), /an input id is 1-100 letters/);
    } finally {
      await r.host.close();
    }
  });

  it('a client told that its input failed learns it may still commit, and a retry under its id is applied at most once (hostile review of #15)', async () => {
    const solo = path.join(tmpdir(), 'solo');
    let r = await openReplica(etcd.endpoints, 'idem', 'solo', {}, solo);
    const installation = await r.host.replica!.install(counterSource(1));
    const { root } = await r.host.replica!.startInstance(installation);
    const ref = r.host.refOf(root);
    await r.host.close();
    // No cutter is running: w's input is written to the log but no block holds it yet when w closes.
    const w = await openReplica(etcd.endpoints, 'idem', 'w', { cutter: false });
    const args = w.host.toCapdata([5]);
    const pending = w.host.replica!.send(ref, 'add', args, { id: 'late-1' });
    await until('the input to be in the log', async () => (await w.host.replica!.etcd.ns.getAll().prefix('in/').keys()).length === 1);
    await w.host.close();
    const err = await pending.then(
      () => assert.fail('settled'),
      (e: SubmitError) => e,
    );
    assert.match(err.message, /replica w was closed before the block holding input late-1 committed here; the input may still commit: retry with the same id \(late-1;/);
    assert.equal(err.inputId, 'late-1');
    assert.equal(err.mayCommit, true);
    // It does commit, once a cutter runs; the client's retry under the same id is not applied again.
    r = await openReplica(etcd.endpoints, 'idem', 'solo', {}, solo);
    try {
      await until('the input to be applied', async () => ((await r.host.E(r.host.presence(ref)).read()) as { total: number }).total === 5);
      const retry = await r.host.replica!.send(ref, 'add', args, { id: 'late-1' });
      assert.equal(retry.rejected, true);
      assert.match((r.host.fromCapdata(retry.data) as Error).message, /DuplicateInput: input late-1 was already applied/);
      const call = await runCliAsync(['replica', 'call', '--etcd', etcd.endpoints.join(','), '--cluster', 'idem', '--id', 'late-1', ref, 'add', '5']);
      assert.equal(call.status, 1);
      assert.match(call.stderr, /input late-1 was already applied/);
      assert.deepEqual(await r.host.E(r.host.presence(ref)).read(), { total: 5, count: 1, version: 1 });
    } finally {
      await r.host.close();
    }
  });

  it('a malformed input in the log is rejected alike on every replica, and the cluster goes on (hostile review of #15)', async () => {
    const replicas: TestReplica[] = [];
    for (const name of ['p0', 'p1']) replicas.push(await openReplica(etcd.endpoints, 'poison', name));
    try {
      const [p0, p1] = replicas;
      await assert.rejects(p0.host.replica!.submit({ type: 'bogus' } as never), /an input must be a record whose type is one of send, put/);
      // Written past the client's check, as anyone with access to etcd could.
      const log = (p0.host.replica as unknown as { log: { submit(logged: unknown): Promise<void>; ns: { put(key: string): { value(v: Buffer): Promise<unknown> } } } }).log;
      await log.submit({ id: 'poison-1', origin: 'mallory', input: { type: 'bogus' } });
      await log.submit({ id: 'poison-2', origin: 'mallory', input: null });
      // Raw keys no client API would write (break15b #1): an id no replica
      // accepts, one that is not its key's, and bytes that do not decode.
      const { codec } = await import('../../host/store/codec.js');
      const long = 'x'.repeat(101);
      await log.ns.put(`in/${long}`).value(Buffer.from(codec.encode({ id: long, origin: 'mallory', input: { type: 'bogus' } })));
      await log.ns.put('in/liar').value(Buffer.from(codec.encode({ id: 'other', origin: 'mallory', input: { type: 'bogus' } })));
      await log.ns.put('in/garbage').value(Buffer.from([0xc1, 0xc1, 0xc1]));
      // Too big for a block (break-15c #1): one input over the log's limit,
      // written raw (a client's submit refuses it, naming the limit), and
      // inputs one transaction wrote together, each under it but over it in all.
      const big = (id: string, n: number) => Buffer.from(codec.encode({ id, origin: 'mallory', input: { type: 'send', target: 'ko1', method: 'm', args: { body: `#${JSON.stringify('y'.repeat(n))}`, slots: [] } } }));
      await assert.rejects(log.submit({ id: 'big-0', origin: 'mallory', input: { type: 'send', target: 'ko1', method: 'm', args: { body: `#"${'y'.repeat(1_200_000)}"`, slots: [] } } }), /input big-0 takes \d+ bytes in the log, over its limit/);
      await log.ns.put('in/big-1').value(big('big-1', 1_400_000));
      const ns = log.ns as unknown as { if(...a: unknown[]): { then(...ops: unknown[]): { commit(): Promise<unknown> } }; put(key: string): { value(v: Buffer): unknown } };
      await ns.if('in/big-2', 'Create', '==', 0).then(ns.put('in/big-2').value(big('big-2', 700_000)), ns.put('in/big-3').value(big('big-3', 700_000))).commit();
      const installation = await p1.host.replica!.install(counterSource(1), { label: 'counter' });
      const kit = await p0.host.replica!.startInstance(installation);
      assert.match(String(await p0.host.E(kit.root).add(5)), /^v1:5$/);
      await settleCluster(replicas);
      assert.equal(new Set(replicas.map((r) => r.host.stateHash())).size, 1);
      assert.match(String(await p0.host.E(kit.root).add(1)), /^v1:6$/, 'blocks are still cut after the raw keys');
      for (const r of replicas) assert.equal(r.host.replica!.halted, null, `${r.name} did not halt`);
    } finally {
      for (const r of replicas) await r.host.close();
    }
  });

  it('a backlog of waiting inputs is read a page at a time and cut in order (break-15d #1)', async () => {
    const replicas: TestReplica[] = [];
    try {
      const { ref, dir } = await counterWithCutterStopped(etcd.endpoints, 'backlog');
      const a = await openReplica(etcd.endpoints, 'backlog', 'a', { cutter: false });
      replicas.push(a);
      // More than two pages wait, with no cutter running.
      const sends = Array.from({ length: 75 }, (_, i) => a.host.replica!.send(ref, 'add', a.host.toCapdata([i + 1])));
      await until('75 inputs to wait in the log', async () => ((await a.host.replica!.etcd.ns.getAll().prefix('in/').keys()).length >= 75 ? true : undefined));
      const c = await openReplica(etcd.endpoints, 'backlog', 'c', { maxBlockInputs: 20 }, dir);
      replicas.push(c);
      const outcomes = await Promise.all(sends);
      assert.ok(outcomes.every((o) => !o.rejected));
      assert.deepEqual(await c.host.E(c.host.presence(ref)).read(), { total: (75 * 76) / 2, count: 75, version: 1 });
      // The read is an input too: settled before the hashes are compared.
      await settleCluster(replicas);
      assert.equal(new Set(replicas.map((r) => r.host.stateHash())).size, 1);
    } finally {
      for (const r of replicas) await r.host.close();
    }
  });

  it('a hash publish that fails in etcd is published again, leaving no hole (break-15c #5)', async () => {
    const replicas: TestReplica[] = [];
    try {
      for (const name of ['h0', 'h1']) replicas.push(await openReplica(etcd.endpoints, 'holes', name, name === 'h1' ? { cutter: false } : {}));
      const [h0, h1] = replicas;
      const { root } = await h0.host.replica!.startInstance(await h0.host.replica!.install(counterSource(1)));
      await settleCluster(replicas);
      const log = h1.host.replica!.etcd;
      const publish = log.publish.bind(log);
      let failed = 0;
      log.publish = async (...args: Parameters<typeof publish>) => {
        if (failed++ === 0) throw new Error('injected: etcd unavailable');
        return publish(...args);
      };
      await h0.host.E(root).add(1);
      const height = await settleCluster(replicas);
      assert.ok(failed >= 1, 'the injected failure happened');
      await until(`h1's hash at every height up to ${height}`, async () => {
        const all = await log.allHashes();
        for (let h = 1; h <= height; h++) if (!all.get(h)?.has('h1')) return undefined;
        return true;
      }, 10_000);
    } finally {
      for (const r of replicas) await r.host.close();
    }
  });

  it('refuses bad replicate options and local writes with clear errors', async () => {
    await assert.rejects(Host.open({ replicate: { endpoints: [], cluster: 'x', name: 'a' } }), /replicate.endpoints must be a non-empty list/);
    await assert.rejects(Host.open({ replicate: { endpoints: etcd.endpoints, cluster: 'bad name', name: 'a' } }), /cluster name/);
    await assert.rejects(Host.open({ replicate: { endpoints: etcd.endpoints, cluster: 'x', name: '' } }), /replicate.name/);
  });
});
