// SIGKILL on replicas (issue #15): a replica killed mid-block catches up on
// restart with no input lost or applied twice; the block cutter killed, another
// takes over after its lease and no block is cut twice.
import assert from 'node:assert/strict';
import path from 'node:path';
import { EtcdLog } from '../../host/replica/etcd-log.js';
import { etcdForSuite, runCli, runCliAsync, spawnReplica, stopProcess, tmpdir, until } from './etcd-fixture.js';
import { assertHashesAgree, counterSource, openReplica, settleCluster, type TestReplica } from './helpers.js';

describe('replicas on etcd: SIGKILL', function () {
  this.timeout(240_000);
  const etcd = etcdForSuite();

  // The test process's replica: the client, and (unless told otherwise) the cutter.
  async function startCounter(client: TestReplica) {
    const installation = await client.host.replica!.install(counterSource(1), { label: 'counter' });
    const kit = await client.host.replica!.startInstance(installation);
    return kit.root;
  }

  async function publishedHeight(log: EtcdLog, name: string): Promise<number> {
    const status = (await log.statuses()).find((s) => s.name === name);
    return status?.height ?? 0;
  }

  it('a replica killed mid-block restarts from its applied height: no input lost or applied twice', async () => {
    const cluster = 'kill-replica';
    // Small blocks, so that `a` is killed with blocks behind and ahead of it.
    const client = await openReplica(etcd.endpoints, cluster, 'client', { maxBlockInputs: 40 });
    const stateA = path.join(tmpdir(), 'a');
    let a = spawnReplica({ state: stateA, endpoints: etcd.endpoints, cluster, name: 'a', cutter: false });
    const b = spawnReplica({ state: path.join(tmpdir(), 'b'), endpoints: etcd.endpoints, cluster, name: 'b', cutter: false });
    const log = client.host.replica!.etcd;
    try {
      const root = await startCounter(client);
      // Both children running and caught up before the sends start, so that `a` is killed amid them however fast they go.
      const started = client.host.replica!.height();
      await until('a and b to start', async () => (await publishedHeight(log, 'a')) >= started && (await publishedHeight(log, 'b')) >= started);
      const sends: Promise<unknown>[] = [];
      for (let i = 0; i < 800; i++) sends.push(client.host.E(root).add(1));
      // Kill `a` while blocks keep coming: it is applying one, or about to.
      let settled = 0;
      for (const s of sends) void s.then(() => settled++);
      await until('a to be applying blocks', async () => (await publishedHeight(log, 'a')) >= started + 3 && settled < 700);
      await stopProcess(a, 'SIGKILL');
      const killedAt = await publishedHeight(log, 'a');
      assert.equal(a.signalCode, 'SIGKILL');
      await Promise.all(sends);
      a = spawnReplica({ state: stateA, endpoints: etcd.endpoints, cluster, name: 'a', cutter: false });
      const head = await settleCluster([client]);
      await until('a and b to catch up', async () => (await publishedHeight(log, 'a')) === head && (await publishedHeight(log, 'b')) === head, 60_000);
      await assertHashesAgree(etcd.endpoints, cluster, ['client', 'a', 'b']);
      assert.ok(killedAt < head, `a was killed before the end (at ${killedAt} of ${head})`);
      assert.match(a.output(), new RegExp(`replica a of cluster ${cluster}: .* at height ([1-9]\\d*)`), 'it resumed from its applied height, not from 0');
      assert.deepEqual(await client.host.E(root).read(), { total: 800, count: 800, version: 1 });
    } finally {
      await stopProcess(a, 'SIGTERM');
      await stopProcess(b, 'SIGTERM');
      await client.host.close();
    }
  });

  it('the block cutter killed: another takes over after its lease, no block is cut twice', async () => {
    const cluster = 'kill-cutter';
    const client = await openReplica(etcd.endpoints, cluster, 'client', { cutter: false });
    const children = new Map(['a', 'b'].map((name) => [name, spawnReplica({ state: path.join(tmpdir(), name), endpoints: etcd.endpoints, cluster, name, lease: 2 })]));
    const log = client.host.replica!.etcd;
    try {
      const root = await startCounter(client);
      const first = await until('a cutter', () => log.election(2).leader());
      const sends: Promise<unknown>[] = [];
      for (let round = 0; round < 30; round++) {
        for (let i = 0; i < 10; i++) sends.push(client.host.E(root).add(1));
        if (round === 10) await stopProcess(children.get(first)!, 'SIGKILL');
        await new Promise((r) => setTimeout(r, 40));
      }
      await Promise.all(sends);
      const second = await log.election(2).leader();
      assert.ok(second && second !== first, `another replica cuts now (${first} -> ${second})`);
      const survivor = [...children.keys()].find((n) => n !== first)!;
      const head = await settleCluster([client]);
      await until('the survivor to publish the head', async () => (await publishedHeight(log, survivor)) === head);
      await assertHashesAgree(etcd.endpoints, cluster, ['client', survivor]);

      // Blocks 1..head, each written once; every input in exactly one block.
      const versions = await log.blockVersions();
      assert.deepEqual(versions.map((v) => v.height), Array.from({ length: head }, (_, i) => i + 1));
      assert.ok(versions.every((v) => v.version === 1), 'no block record was ever rewritten');
      const ids = (await log.blocks(1, head)).flatMap(({ block }) => block.inputs.map((i) => i.id));
      assert.equal(new Set(ids).size, ids.length, 'no input is in two blocks');
      assert.equal(ids.length, 300 + 2);
      assert.deepEqual(await client.host.E(root).read(), { total: 300, count: 300, version: 1 });

      // A client outside the cluster: the CLI writes to the log and a replica reports the outcome.
      const call = await runCliAsync(['replica', 'call', '--etcd', etcd.endpoints.join(','), '--cluster', cluster, client.host.refOf(root), 'add', '2']);
      assert.equal(call.status, 0, call.stderr);
      assert.equal(call.stdout.trim(), '"v1:302"');
      const refused = await runCliAsync(['replica', 'call', '--etcd', etcd.endpoints.join(','), '--cluster', cluster, client.host.refOf(root), 'fail', '7']);
      assert.equal(refused.status, 1);
      assert.match(refused.stderr, /add|refused 7/);

      const status = runCli(['replica', 'status', '--etcd', etcd.endpoints.join(','), '--cluster', cluster]);
      assert.equal(status.status, 0, status.stderr);
      assert.match(status.stdout, new RegExp(`cluster ${cluster}: head \\d+, cutter ${second}`));
      assert.match(status.stdout, new RegExp(`${survivor} +height +\\d+ +hash [0-9a-f]{16}… +\\(cutter\\)`));
    } finally {
      for (const c of children.values()) await stopProcess(c, 'SIGTERM');
      await client.host.close();
    }
  });
});
