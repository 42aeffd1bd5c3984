// What the replica tests share: a counter contract with versions to upgrade
// to, opening in-process replicas, and reading the cluster's hashes.
import assert from 'node:assert/strict';
import path from 'node:path';
import { Host } from '../../host/index.js';
import { EtcdLog } from '../../host/replica/etcd-log.js';
import type { ReplicateOptions } from '../../host/replica/replica.js';
import { tmpdir, until } from './etcd-fixture.js';

/** A counter whose durable state is its vatstore; `version` is baked into its answers. */
export const counterSource = (version: number) => `
  import { Far } from '@endo/far';
  export function buildRootObject({ vatstore }) {
    const bump = (key, n) => { const t = Number(vatstore.get(key) ?? '0') + n; vatstore.set(key, String(t)); return t; };
    return Far('counter', {
      add(n) { bump('count', 1); return 'v${version}:' + bump('total', n); },
      read() { return { total: Number(vatstore.get('total') ?? '0'), count: Number(vatstore.get('count') ?? '0'), version: ${version} }; },
      fail(n) { bump('count', 1); throw new RangeError('refused ' + n); },
    });
  }`;

export { prng } from '../prng.js';

export interface TestReplica {
  readonly host: Host;
  readonly name: string;
  readonly dir: string;
  /** input id -> outcome body (every outcome this replica saw, also of others' inputs). */
  readonly outcomes: Map<string, string>;
}

export async function openReplica(endpoints: string[], cluster: string, name: string, extra: Partial<ReplicateOptions> = {}, dir = path.join(tmpdir(), name)): Promise<TestReplica> {
  const host = await Host.open({ path: dir, replicate: { endpoints, cluster, name, leaseSeconds: 2, ...extra } });
  const outcomes = new Map<string, string>();
  host.replica!.on('outcome', (o: { id: string; rejected: boolean; data: { body: string } }) => outcomes.set(o.id, `${o.rejected ? 'rejected' : 'fulfilled'} ${o.data.body}`));
  return { host, name, dir, outcomes };
}

/**
 * A cluster holding one counter instance, its cutter replica `c` stopped so
 * that inputs written next wait in the log; `c` restarts from `dir`.
 */
export async function counterWithCutterStopped(endpoints: string[], cluster: string): Promise<{ ref: string; dir: string }> {
  const cutter = await openReplica(endpoints, cluster, 'c');
  try {
    const { root } = await cutter.host.replica!.startInstance(await cutter.host.replica!.install(counterSource(1)));
    return { ref: cutter.host.refOf(root), dir: cutter.dir };
  } finally {
    await cutter.host.close();
  }
}

/** Every height's hashes from etcd; asserts that at each height every replica that published agrees. */
export async function assertHashesAgree(endpoints: string[], cluster: string, expectReplicas: readonly string[]): Promise<number> {
  const log = new EtcdLog(endpoints, cluster);
  try {
    const all = await log.allHashes();
    const { head } = await log.head();
    for (let h = (await log.pruned()) + 1; h <= head.height; h++) {
      const at = all.get(h);
      assert.ok(at, `no hashes published at height ${h}`);
      const distinct = new Set(at.values());
      assert.equal(distinct.size, 1, `replicas disagree at height ${h}: ${JSON.stringify([...at])}`);
    }
    const last = all.get(head.height)!;
    for (const name of expectReplicas) assert.ok(last.has(name), `${name} did not publish the head height ${head.height}`);
    return head.height;
  } finally {
    log.close();
  }
}

/** Waits until every replica has applied the cluster's head and the head is stable. */
export async function settleCluster(replicas: readonly TestReplica[], ms = 60_000): Promise<number> {
  const log = replicas[0].host.replica!.etcd;
  return until(
    'the replicas to reach the head',
    async () => {
      const { head } = await log.head();
      const hasWork = replicas.some((r) => r.host.kernel.hasRunnableWork());
      if (hasWork || !replicas.every((r) => r.host.replica!.height() === head.height)) return undefined;
      const published = await log.hashesAt(head.height);
      return replicas.every((r) => published.has(r.name)) ? head.height : undefined;
    },
    ms,
  );
}

/** Changes a running replica's store behind the log's back (a bit flip, an operator's mistake): its next hash differs. */
export function tamper(r: TestReplica, key = 'tampered'): void {
  const replica = r.host.replica as unknown as { applying: boolean };
  replica.applying = true;
  try {
    r.host.store.atomically(() => r.host.store.set(key, 1));
  } finally {
    replica.applying = false;
  }
}
