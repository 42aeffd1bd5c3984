// A replica's writes under its name are fenced on its name's lease (hostile
// review of #15, break15b #3): a replica frozen longer than its lease and
// replaced under its name must, once it runs again, neither overwrite its
// replacement's hashes nor record a halt that would silence it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { clusterStatus } from '../../host/replica/cluster-status.js';
import { etcdForSuite, stopProcess, tmpdir, until } from './etcd-fixture.js';
import { counterSource, openReplica, settleCluster, type TestReplica } from './helpers.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'replica-child.js');

describe('replicas on etcd: a replica that lost its name', function () {
  this.timeout(120_000);
  const etcd = etcdForSuite();

  it('frozen past its lease and replaced, a diverged old process publishes nothing under the name; the replacement stays checked', async () => {
    const cluster = 'fence';
    const replicas: TestReplica[] = [];
    const old = spawn(process.execPath, [CHILD, etcd.endpoints.join(','), cluster, path.join(tmpdir(), 'old-b'), 'b'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    old.stdout.on('data', (d) => (output += d));
    old.stderr.on('data', (d) => (output += d));
    try {
      const [a, c] = [await openReplica(etcd.endpoints, cluster, 'a'), await openReplica(etcd.endpoints, cluster, 'c', { cutter: false })];
      replicas.push(a, c);
      await until('the old b to start', () => output.includes('started'), 30_000);
      const installation = await a.host.replica!.install(counterSource(1));
      const { root } = await a.host.replica!.startInstance(installation);
      const log = a.host.replica!.etcd;
      await until('the old b to reach the head', () => output.includes(`applied ${a.host.replica!.height()}`));
      // Its store diverges (shown at its next block); then it freezes past its lease.
      old.kill('SIGUSR2');
      await until('the old b to tamper', () => output.includes('tampered'));
      old.kill('SIGSTOP');
      await until('the old b\'s live key to expire', async () => (await log.ns.get('live/b').string()) === null, 15_000);
      const b = await openReplica(etcd.endpoints, cluster, 'b', { cutter: false });
      replicas.push(b);
      for (let i = 0; i < 3; i++) await a.host.E(root).add(1);
      old.kill('SIGCONT');
      for (let i = 0; i < 10; i++) {
        await a.host.E(root).add(1);
        await new Promise((r) => setTimeout(r, 100));
      }
      await until('the old b to stop', () => output.includes('halt'), 20_000);
      for (let i = 0; i < 3; i++) await a.host.E(root).add(1);
      await settleCluster(replicas);

      const all = await log.allHashes();
      for (const [height, hashes] of all) assert.equal(hashes.get('b') ?? hashes.get('a'), hashes.get('a'), `hash/${height}/b is the replacement's, not the old process's`);
      assert.equal((await log.halts()).has('b'), false, 'no halt recorded under b');
      assert.equal(b.host.replica!.halted, null);
      const status = (await clusterStatus(log))!;
      assert.deepEqual(
        status.replicas.map((r) => [r.name, r.live, r.halted, r.height]),
        ['a', 'b', 'c'].map((name) => [name, true, null, a.host.replica!.height()]),
      );
      assert.match(String(await b.host.E(b.host.presence(a.host.refOf(root))).add(0)), /^v1:16$/, 'the replacement serves, and its hashes are checked');
    } finally {
      old.kill('SIGCONT');
      await stopProcess(old, 'SIGKILL');
      for (const r of replicas) await r.host.close();
    }
  });

  it('a copy of a running replica\'s state directory is refused its name, and a restart after a kill waits out the old lease (break-15c #2)', async () => {
    const cluster = 'copies';
    const replicas: TestReplica[] = [];
    try {
      const a = await openReplica(etcd.endpoints, cluster, 'a');
      replicas.push(a);
      const b = await openReplica(etcd.endpoints, cluster, 'b', { cutter: false });
      await a.host.replica!.install(counterSource(1));
      await settleCluster([a, b]);
      await b.host.close();
      const copy = path.join(tmpdir(), 'b-copy');
      fs.cpSync(b.dir, copy, { recursive: true, filter: (f) => !f.endsWith('quickvat.lock') });
      const running = await openReplica(etcd.endpoints, cluster, 'b', { cutter: false }, b.dir);
      replicas.push(running);
      // Same store id, another process's run: waited out for the lease's TTL, then refused.
      await assert.rejects(openReplica(etcd.endpoints, cluster, 'b', { cutter: false }, copy), /replica name b is already in use in cluster copies by a running replica \(.*a copy of this state directory\)/);
      await a.host.replica!.install(counterSource(2));
      await settleCluster(replicas);
      assert.equal(running.host.replica!.halted, null);
      // A killed process's key (this store's, another run, its lease still running) gives way at restart.
      const log = a.host.replica!.etcd;
      const held = JSON.parse((await log.ns.get('live/b').string())!);
      assert.ok(held.run, 'the live key names the process run');
      await running.host.close();
      replicas.pop();
      const lease = log.ns.lease(2, { autoKeepAlive: false });
      await lease.put('live/b').value(JSON.stringify({ ...held, pid: 1, run: 'killed' }));
      const restarted = await openReplica(etcd.endpoints, cluster, 'b', { cutter: false }, b.dir);
      replicas.push(restarted);
      assert.equal(restarted.host.replica!.halted, null);
    } finally {
      for (const r of replicas) await r.host.close();
    }
  });
});
