// An input id is bound to its content (hostile review of #15, break15b #2):
// two clients that submit different inputs under one id must not have one
// input vanish and both be told it ran. The second is refused at submit while
// the first waits in the log, and refused at apply once the first was applied;
// a retry of the same content still gets the original (or DuplicateInput).
import assert from 'node:assert/strict';
import { SubmitError } from '../../host/replica/replica.js';
import { etcdForSuite, runCliAsync, until } from './etcd-fixture.js';
import { counterSource, counterWithCutterStopped, openReplica, settleCluster, type TestReplica } from './helpers.js';

describe('replicas on etcd: input ids', function () {
  this.timeout(120_000);
  const etcd = etcdForSuite();

  it('refuses an id reused for different content, at submit and after apply; the same content is one input', async () => {
    const replicas: TestReplica[] = [];
    try {
      const cutter = await openReplica(etcd.endpoints, 'reuse', 'c');
      replicas.push(cutter);
      const installation = await cutter.host.replica!.install(counterSource(1));
      const { root } = await cutter.host.replica!.startInstance(installation);
      const ref = cutter.host.refOf(root);
      // No cutter while the clients write: both inputs wait in the log together.
      await cutter.host.close();
      replicas.length = 0;
      const a = await openReplica(etcd.endpoints, 'reuse', 'a', { cutter: false });
      const b = await openReplica(etcd.endpoints, 'reuse', 'b', { cutter: false });
      replicas.push(a, b);
      const args = (n: number) => a.host.toCapdata([n]);
      const first = a.host.replica!.send(ref, 'add', args(1), { id: 'order-1' });
      await until('order-1 to be in the log', async () => (await a.host.replica!.etcd.ns.get('in/order-1').string()) !== null);
      // Refused by the write itself (no block is cut meanwhile: without the check it would wait for ever).
      const accepted = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('a second input under order-1 was written to the log')), 10_000).unref());
      const clash = await Promise.race([b.host.replica!.send(ref, 'add', args(1000), { id: 'order-1' }), accepted]).then(
        () => assert.fail('a second input under order-1 was accepted'),
        (e: SubmitError) => e,
      );
      assert.ok(clash instanceof SubmitError);
      assert.match(clash.message, /id order-1 was already used for a different input: submit this input under a new id.*input order-1 was not written to the log/);
      assert.equal(clash.mayCommit, false);
      // A retry of the same content through another replica is the same input.
      const retry = b.host.replica!.send(ref, 'add', args(1), { id: 'order-1' });

      const c = await openReplica(etcd.endpoints, 'reuse', 'c', {}, cutter.dir);
      replicas.push(c);
      const [o1, o2] = await Promise.all([first, retry]);
      assert.deepEqual(o1, o2);
      assert.equal(o1.rejected, false);
      assert.equal(a.host.fromCapdata(o1.data), 'v1:1');
      await settleCluster(replicas);
      assert.deepEqual(await c.host.E(c.host.presence(ref)).read(), { total: 1, count: 1, version: 1 }, 'only the first content ran');

      // After it was applied (its in/ key is gone), a reuse with other content is refused alike on every replica.
      const late = await c.host.replica!.send(ref, 'add', args(7), { id: 'order-1' });
      assert.equal(late.rejected, true);
      assert.match((c.host.fromCapdata(late.data) as Error).message, /DuplicateInput: id order-1 was already used for a different input, in block \d+; this input was not applied: submit it under a new id/);
      const same = await a.host.replica!.send(ref, 'add', args(1), { id: 'order-1' });
      assert.match((a.host.fromCapdata(same.data) as Error).message, /DuplicateInput: input order-1 was already applied, in block \d+; it was not applied again/);
      // A cut input whose in/ key outlived its block (the cutter died before
      // deleting it): a retry of the same content settles, told it was
      // applied, instead of waiting for a block that never comes (break-15c #3).
      const log = c.host.replica!.etcd;
      const forget = log.forgetInputs.bind(log);
      log.forgetInputs = async () => {};
      const kept = await a.host.replica!.send(ref, 'add', args(2), { id: 'order-2' });
      assert.equal(a.host.fromCapdata(kept.data), 'v1:3');
      assert.notEqual(await log.ns.get('in/order-2').buffer(), null, 'the cut input was left in the log');
      log.forgetInputs = forget;
      const stale = await Promise.race([
        b.host.replica!.send(ref, 'add', args(2), { id: 'order-2' }),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the retry of order-2 never settled')), 20_000).unref()),
      ]);
      assert.match((b.host.fromCapdata(stale.data) as Error).message, /DuplicateInput: input order-2 was already applied, in block \d+/);
      assert.deepEqual(await b.host.E(b.host.presence(ref)).read(), { total: 3, count: 2, version: 1 });
      const call = await runCliAsync(['replica', 'call', '--etcd', etcd.endpoints.join(','), '--cluster', 'reuse', '--id', 'order-1', ref, 'add', '9']);
      assert.equal(call.status, 1, call.stderr);
      assert.match(call.stderr, /id order-1 was already used for a different input/);
      assert.deepEqual(await b.host.E(b.host.presence(ref)).read(), { total: 3, count: 2, version: 1 });
      await settleCluster(replicas);
      assert.equal(new Set(replicas.map((r) => r.host.stateHash())).size, 1, JSON.stringify(replicas.map((r) => [r.name, r.host.replica!.height(), r.host.stateHash()])));
    } finally {
      for (const r of replicas) await r.host.close();
    }
  });

  it('a submitter whose in/ key other content overwrote is told so; content the log would change is refused (break-15c #4, #7)', async () => {
    const replicas: TestReplica[] = [];
    try {
      const { ref, dir } = await counterWithCutterStopped(etcd.endpoints, 'overwrite');
      const cutter = await openReplica(etcd.endpoints, 'overwrite', 'c', {}, dir);
      replicas.push(cutter);
      await assert.rejects(cutter.host.replica!.submit({ type: 'installBundle', manifest: new Map([['x', 1]]) } as never), /an input must be plain data: the input at \.manifest is an instance of Map/);
      await assert.rejects(cutter.host.replica!.send(ref, 'a\uD800', cutter.host.toCapdata([])), /lone surrogate/);
      await assert.rejects(cutter.host.replica!.submit(JSON.parse('{"type":"suspend","instance":"x","__proto__":1}')), /"__proto__" key/);
      // An optional field set to undefined is an absent one (break-15d #6): refused only for what it names.
      const absent = await cutter.host.replica!.submit({ type: 'suspend', instanceId: 'nobody', reason: undefined });
      assert.equal(absent.rejected, true, 'applied, and refused for the instance it names');
      assert.doesNotMatch(String((cutter.host.fromCapdata(absent.data) as Error).message), /plain data/);
      await cutter.host.close();
      replicas.length = 0;
      const a = await openReplica(etcd.endpoints, 'overwrite', 'a', { cutter: false });
      replicas.push(a);
      const mine = a.host.replica!.send(ref, 'add', a.host.toCapdata([1]), { id: 'x-1' });
      mine.catch(() => {});
      const log = a.host.replica!.etcd;
      await until('x-1 to be in the log', async () => (await log.ns.get('in/x-1').string()) !== null);
      // Another etcd client overwrites it (a plain put keeps the key's create revision).
      const { codec } = await import('../../host/store/codec.js');
      const waiting = codec.decode((await log.ns.get('in/x-1').buffer())!) as { input: { args: unknown } };
      await log.ns.put('in/x-1').value(Buffer.from(codec.encode({ ...waiting, input: { ...waiting.input, args: a.host.toCapdata([1000]) } })));
      // ... or with bytes that hold no input, which the cutter skips (break-15d #2).
      const skipped = a.host.replica!.send(ref, 'add', a.host.toCapdata([5]), { id: 'x-2' });
      skipped.catch(() => {});
      await until('x-2 to be in the log', async () => (await log.ns.get('in/x-2').string()) !== null);
      await log.ns.put('in/x-2').value(Buffer.from([0xc1, 0xc1]));
      const c = await openReplica(etcd.endpoints, 'overwrite', 'c', {}, cutter.dir);
      replicas.push(c);
      await assert.rejects(mine, /id x-1 was taken in the log by a different input, which was applied instead; this input was not applied/);
      await assert.rejects(skipped, /input x-2 was not applied: its key in the log was overwritten with something that is not an input/);
      assert.deepEqual(await c.host.E(c.host.presence(ref)).read(), { total: 1000, count: 1, version: 1 });
    } finally {
      for (const r of replicas) await r.host.close();
    }
  });

  // break15b #8: every id ever applied stayed in the hashed state for good.
  it('forgets applied ids after the retry window (blocks, recorded in each block): bounded, alike on every replica', async () => {
    const replicas = [await openReplica(etcd.endpoints, 'window', 'w0', { retryWindow: 3 }), await openReplica(etcd.endpoints, 'window', 'w1', { cutter: false })];
    try {
      const [w0, w1] = replicas;
      const { root } = await w0.host.replica!.startInstance(await w0.host.replica!.install(counterSource(1)));
      const ref = w0.host.refOf(root);
      const add = (n: number, id: string) => w0.host.replica!.send(ref, 'add', w0.host.toCapdata([n]), { id });
      const seenIds = (r: TestReplica) => [...r.host.store.entries('replica.seen.')].map(([k]) => k.slice('replica.seen.'.length));
      assert.equal((await add(1, 'w-1')).rejected, false);
      const applied = w0.host.replica!.height();
      const within = await add(1, 'w-1');
      assert.match((w0.host.fromCapdata(within.data) as Error).message, /DuplicateInput: input w-1 was already applied/);
      for (let i = 0; i < 6; i++) await add(1, `fill-${i}`);
      await settleCluster(replicas);
      assert.ok(w0.host.replica!.height() > applied + 3);
      for (const r of replicas) {
        assert.equal(r.host.store.get('replica.seen.w-1'), undefined, `${r.name} forgot w-1 after 3 blocks`);
        assert.ok(seenIds(r).length <= 4, `${r.name} remembers only the last blocks' ids: ${seenIds(r)}`);
        assert.equal([...r.host.store.entries('replica.seenAt.')].length <= 4, true);
      }
      // Past the window a repeat is a new input: the documented contract.
      assert.equal((await add(1, 'w-1')).rejected, false);
      assert.deepEqual(await w1.host.E(w1.host.presence(ref)).read(), { total: 8, count: 8, version: 1 });
      await settleCluster(replicas);
      assert.equal(new Set(replicas.map((r) => r.host.stateHash())).size, 1);
      await assert.rejects(openReplica(etcd.endpoints, 'window', 'w2', { retryWindow: 0 }), /replicate.retryWindow must be a positive integer/);
    } finally {
      for (const r of replicas) await r.host.close();
    }
  });
});
