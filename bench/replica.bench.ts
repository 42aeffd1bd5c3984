// Replicas on etcd (issue #15): inputs per second and the latency from submit
// to settled, with 1 and with 3 replicas, in one run. Report only (no target
// yet). All replicas run in this one process on a single-node etcd, so with 3
// they share its cores: the 3-replica numbers include applying every block
// three times here.
import { performance } from 'node:perf_hooks';
import { etcdInstalled, startEtcd } from '../test/replica/etcd-fixture.js';
import { counterSource, openReplica, settleCluster, type TestReplica } from '../test/replica/helpers.js';

const BURST = 1000;
const SEQUENTIAL = 30;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function runCluster(endpoints: string[], size: number): Promise<void> {
  const cluster = `bench-${size}`;
  const replicas: TestReplica[] = [];
  for (let i = 0; i < size; i++) replicas.push(await openReplica(endpoints, cluster, `r${i}`));
  try {
    const installation = await replicas[0].host.replica!.install(counterSource(1));
    const kit = await replicas[0].host.replica!.startInstance(installation);
    await settleCluster(replicas);
    const roots = replicas.map((r) => r.host.presence(replicas[0].host.refOf(kit.root)));
    // Sequential: one send at a time, each waits for its block.
    const seq: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      const t = performance.now();
      await replicas[i % size].host.E(roots[i % size]).add(1);
      seq.push(performance.now() - t);
    }
    // Burst: BURST sends at once, spread over the replicas; batched into blocks.
    const startHeight = replicas[0].host.replica!.height();
    const latencies: number[] = [];
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: BURST }, (_, i) => {
        const t = performance.now();
        return replicas[i % size].host.E(roots[i % size]).add(1).then(() => latencies.push(performance.now() - t));
      }),
    );
    const elapsed = performance.now() - t0;
    await settleCluster(replicas);
    const blocks = replicas[0].host.replica!.height() - startHeight;
    seq.sort((a, b) => a - b);
    latencies.sort((a, b) => a - b);
    console.log(
      `  ${size} replica${size > 1 ? 's' : ' '}: burst of ${BURST} sends: ${(BURST / (elapsed / 1000)).toFixed(0)} inputs/s in ${blocks} blocks;` +
        ` submit->settled median ${percentile(latencies, 50).toFixed(0)} ms, p95 ${percentile(latencies, 95).toFixed(0)} ms`,
    );
    console.log(`             one send at a time (${SEQUENTIAL}): submit->settled median ${percentile(seq, 50).toFixed(1)} ms, p95 ${percentile(seq, 95).toFixed(1)} ms`);
  } finally {
    for (const r of replicas) await r.host.close();
  }
}

export async function runReplicaBench(): Promise<void> {
  console.log('\n== replicas on etcd (single-node etcd 3.4, all replicas in this process)');
  if (!etcdInstalled) {
    console.log('  skipped: /usr/bin/etcd is not installed (apt-get install etcd-server)');
    return;
  }
  const etcd = await startEtcd(1);
  try {
    await runCluster(etcd.endpoints, 1);
    await runCluster(etcd.endpoints, 3);
  } finally {
    await etcd.stop();
  }
}
