// Who is in a cluster, and who is running (issue #15, hostile review).
// - Members (member/<name>) are the replicas whose hashes count (divergence.ts).
//   A replica registers at its first start; it stays a member while down, so
//   that a down replica cannot lower the majority; `replica remove NAME`
//   takes it out for good (removed/<name>: the name is never used again), so
//   that replacing a dead replica does not raise the majority for ever.
// - Liveness (live/<name>) is a key on the running replica's lease: it
//   vanishes within the lease's TTL when the replica stops or dies, and it
//   claims the name: a second replica starting under a live name is refused.
import os from 'node:os';
import type { Lease } from 'etcd3';
import type { EtcdLog } from './etcd-log.js';

interface LiveRecord {
  readonly storeId: string;
  readonly host: string;
  readonly pid: number;
}

/** A name held by a running replica: the lease keeps it; releasing revokes it at once. */
export class NameClaim {
  private lease: Lease | null = null;
  private released = false;

  constructor(
    private readonly log: EtcdLog,
    readonly name: string,
    private readonly storeId: string,
    private readonly ttlSeconds: number,
    /** Called when the name was lost for good (another replica took it while this one could not reach etcd). */
    private readonly onLost: (reason: string) => void,
  ) {}

  /** Takes the name, or throws naming who holds it. */
  async claim(): Promise<void> {
    const { ns } = this.log;
    const key = `live/${this.name}`;
    const record: LiveRecord = { storeId: this.storeId, host: os.hostname(), pid: process.pid };
    const lease = ns.lease(this.ttlSeconds, { autoKeepAlive: true });
    lease.on('lost', () => {
      if (this.lease !== lease || this.released) return;
      this.lease = null;
      // etcd was out of reach longer than the TTL: take the name again.
      void this.reclaim();
    });
    try {
      const id = await lease.grant();
      for (let attempt = 0; attempt < 3; attempt++) {
        const current = await ns.get(key).exec();
        const kv = current.kvs[0];
        const holder = kv ? (JSON.parse(kv.value.toString()) as LiveRecord) : undefined;
        // Our own store's earlier process (killed; its lease has not expired yet) gives way.
        if (holder && holder.storeId !== this.storeId) {
          throw new Error(
            `replica name ${this.name} is already in use in cluster ${this.log.cluster} by a running replica (host ${holder.host}, pid ${holder.pid}, another state directory):` +
              ` give this replica another --name, or stop the other one`,
          );
        }
        const put = ns.put(key).value(JSON.stringify(record)).lease(id);
        const res = await (kv ? ns.if(key, 'Mod', '==', Number(kv.mod_revision)) : ns.if(key, 'Create', '==', 0)).then(put).commit();
        if (res.succeeded) {
          this.lease = lease;
          return;
        }
      }
      throw new Error(`replica name ${this.name}: could not take its live key in etcd (it kept changing)`);
    } catch (err) {
      await lease.revoke().catch(() => {});
      throw err;
    }
  }

  private async reclaim(): Promise<void> {
    for (let delay = 250; !this.released && !this.log.closed; delay = Math.min(delay * 2, 5000)) {
      try {
        await this.claim();
        return;
      } catch (err) {
        if (/already in use/.test((err as Error).message)) return this.onLost((err as Error).message);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Gives the name up (revokes the lease, so the live key goes at once). */
  async release(): Promise<void> {
    this.released = true;
    const lease = this.lease;
    this.lease = null;
    await lease?.revoke().catch(() => {});
  }
}

/** The cluster's id, created by its first replica (undefined: no replica ever joined this cluster). */
export async function readGenesis(log: EtcdLog): Promise<string | undefined> {
  return (await log.ns.get('genesis').string()) ?? undefined;
}

export async function createGenesis(log: EtcdLog, id: string): Promise<string> {
  await log.ns.if('genesis', 'Create', '==', 0).then(log.ns.put('genesis').value(id)).commit();
  return (await readGenesis(log))!;
}

/** Makes `name` a member (if it is not one), unless it was removed. */
export async function register(log: EtcdLog, name: string): Promise<void> {
  if ((await log.ns.get(`removed/${name}`).string()) !== null) {
    throw new Error(`replica ${name} was removed from cluster ${log.cluster} (replica remove); a removed name is not used again: start the replacement under a new --name`);
  }
  await log.ns.if(`member/${name}`, 'Create', '==', 0).then(log.ns.put(`member/${name}`).value('1')).commit();
}

/**
 * Takes `name` out of the cluster for good: its hashes stop counting, and the
 * majority is of the members left. Refuses while the replica runs.
 */
export async function removeMember(log: EtcdLog, name: string): Promise<void> {
  const [member, live] = await Promise.all([log.ns.get(`member/${name}`).string(), log.ns.get(`live/${name}`).string()]);
  if (member === null) throw new Error(`${name} is not a member of cluster ${log.cluster}`);
  if (live !== null) throw new Error(`replica ${name} is running (its live key is in etcd): stop it first, then remove it`);
  const res = await log.ns
    .if(`live/${name}`, 'Create', '==', 0)
    .then(log.ns.delete().key(`member/${name}`), log.ns.put(`removed/${name}`).value("1"), log.ns.delete().key(`status/${name}`), log.ns.delete().key(`halted/${name}`))
    .commit();
  if (!res.succeeded) throw new Error(`replica ${name} started while it was being removed: stop it first`);
}

/** Names of the replicas running now. */
export async function liveNames(log: EtcdLog): Promise<Set<string>> {
  const keys = await log.ns.getAll().prefix('live/').keys();
  return new Set(keys.map((k) => k.slice('live/'.length)));
}
