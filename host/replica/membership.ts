// Who is in a cluster, and who is running (issue #15, hostile review).
// - Members (member/<name>) are the replicas whose hashes count (divergence.ts).
//   A replica registers at its first start; it stays a member while down, so
//   that a down replica cannot lower the majority; `replica remove NAME`
//   takes it out for good (removed/<name>: the name is never used again), so
//   that replacing a dead replica does not raise the majority for ever.
// - Liveness (live/<name>) is a key on the running replica's lease: it
//   vanishes within the lease's TTL when the replica stops or dies, and it
//   claims the name: a second replica starting under a live name is refused.
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Lease } from 'etcd3';
import type { EtcdLog } from './etcd-log.js';
import { removalHalts } from './divergence.js';

interface LiveRecord {
  readonly storeId: string;
  readonly host: string;
  readonly pid: number;
  /** This process's run (not replicated state): two processes of one state directory are told apart. */
  readonly run?: string;
}

/**
 * A name held by a running replica: the lease keeps it; releasing revokes it
 * at once. Every write a replica makes under its name (hash/, status/,
 * halted/) is fenced on `lease`: it lands only while live/<name> is still on
 * this process's lease (etcd-log.ts), so a process that lost its name (frozen
 * longer than its lease, and replaced) can neither overwrite its
 * replacement's hashes nor record a halt under its name (hostile review of
 * #15, break15b #3).
 */
export class NameClaim {
  private current: Lease | null = null;
  private leaseId: string | null = null;
  private released = false;
  private reclaiming: Promise<void> | null = null;
  /** Names this process's claims: a copy of the same state directory running elsewhere is another run. */
  private readonly run = randomUUID();

  constructor(
    private readonly log: EtcdLog,
    readonly name: string,
    private readonly storeId: string,
    private readonly ttlSeconds: number,
    private readonly events: {
      /** The name was lost for good (another replica took it while this one could not reach etcd). */
      lost(reason: string): void;
      /** The name is held again (after a lapse): publishing may go on. */
      held(): void;
      /** The name lapsed (lease lost, or a fenced write found live/<name> not ours): stop publishing. */
      lapsed(): void;
    },
  ) {}

  /** The lease live/<name> must be on for this process's writes; null while the name is not held. */
  get lease(): string | null {
    return this.leaseId;
  }

  /**
   * Takes the name, or throws naming who holds it. At start (`waitForSameStore`),
   * a live key of this state directory's earlier process (killed, its lease
   * not yet expired) is waited out for up to the lease's TTL; one that stays
   * is another running copy of this directory (restored from a backup, say)
   * and is refused like any other holder: two processes must never publish
   * as one name (break-15c #2). Taking the name back after a lapse never
   * waits: any other holder means the name is lost.
   */
  async claim(waitForSameStore = false): Promise<void> {
    const { ns } = this.log;
    const key = `live/${this.name}`;
    const record: LiveRecord = { storeId: this.storeId, host: os.hostname(), pid: process.pid, run: this.run };
    const lease = this.log.lease(this.ttlSeconds);
    lease.on('lost', () => {
      if (this.current !== lease || this.released) return;
      // etcd was out of reach longer than the TTL: take the name again.
      this.lapse();
    });
    try {
      const id = await lease.grant();
      // etcd may grant a longer lease than asked (its minimum follows its
      // election timeout): a killed process's key can outlive our own TTL
      // (break-15d #5). A copy that stays is refused only after this.
      const waitUntil = waitForSameStore ? Date.now() + (Math.max(this.ttlSeconds * 3, 15) + 1) * 1000 : 0;
      for (let attempt = 0; attempt < 3; ) {
        const current = await ns.get(key).exec();
        const kv = current.kvs[0];
        const holder = kv ? (JSON.parse(kv.value.toString()) as LiveRecord) : undefined;
        if (holder && holder.run !== this.run) {
          if (holder.storeId === this.storeId && Date.now() < waitUntil) {
            await new Promise((r) => setTimeout(r, 250));
            continue;
          }
          const which = holder.storeId === this.storeId ? 'a copy of this state directory' : 'another state directory';
          throw new Error(
            `replica name ${this.name} is already in use in cluster ${this.log.cluster} by a running replica (host ${holder.host}, pid ${holder.pid}, ${which}):` +
              ` give this replica another --name, or stop the other one`,
          );
        }
        attempt++;
        const put = ns.put(key).value(JSON.stringify(record)).lease(id);
        const res = await (kv ? ns.if(key, 'Mod', '==', Number(kv.mod_revision)) : ns.if(key, 'Create', '==', 0)).then(put).commit();
        if (res.succeeded) {
          this.current = lease;
          this.leaseId = id;
          return;
        }
      }
      throw new Error(`replica name ${this.name}: could not take its live key in etcd (it kept changing)`);
    } catch (err) {
      await lease.revoke().catch(() => {});
      throw err;
    }
  }

  /**
   * The name is not (or may not be) ours any more: stop publishing at once,
   * then take it back if it is free, or give up if another replica holds it.
   * Called when the lease is lost, and when a fenced write failed.
   */
  lapse(): void {
    if (this.released || (this.current === null && this.reclaiming)) return;
    const old = this.current;
    this.current = null;
    this.leaseId = null;
    void old?.revoke().catch(() => {});
    this.events.lapsed();
    this.reclaiming ??= this.reclaim().finally(() => (this.reclaiming = null));
  }

  private async reclaim(): Promise<void> {
    for (let delay = 250; !this.released && !this.log.closed; delay = Math.min(delay * 2, 5000)) {
      try {
        await this.claim();
        // Released while it was taking the name back: give it up again.
        if (this.released) return void (await this.current?.revoke().catch(() => {}));
        return this.events.held();
      } catch (err) {
        if (/already in use/.test((err as Error).message)) return this.events.lost((err as Error).message);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Runs a fenced write (given the lease, null while the name is not held); one refused for want of the name lapses it. */
  async write(fenced: (lease: string | null) => Promise<boolean>): Promise<void> {
    if (this.released) return;
    if (!(await fenced(this.leaseId))) this.lapse();
  }

  /** Gives the name up (revokes the lease, so the live key goes at once). */
  async release(): Promise<void> {
    this.released = true;
    const lease = this.current;
    this.current = null;
    this.leaseId = null;
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
export async function removeMember(log: EtcdLog, name: string, options: { force?: boolean } = {}): Promise<void> {
  const [member, live] = await Promise.all([log.ns.get(`member/${name}`).string(), log.ns.get(`live/${name}`).string()]);
  if (member === null) throw new Error(`${name} is not a member of cluster ${log.cluster}`);
  if (live !== null) throw new Error(`replica ${name} is running (its live key is in etcd): stop it first, then remove it`);
  const halts = options.force ? undefined : removalHalts(await log.allHashes(), await log.members(), name);
  if (halts) {
    throw new Error(
      `removing ${name} would halt ${halts.halted.join(', ')} for good: at height ${halts.height} the members left disagree and too few would be left to decide.` +
        ` Start ${name} again to decide, or stop the replica whose state is wrong and remove that one instead; --force removes ${name} anyway`,
    );
  }
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
