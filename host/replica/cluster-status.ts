// What `quickvat replica status` shows (issue #15, hostile review): every
// member with its liveness (its live key, on its lease), its height and how
// far behind the head it is, its hash, a dispute, and its halt as recorded in
// halted/<name> (authoritative: a halted replica's late status updates cannot
// hide it).
import type { EtcdLog } from './etcd-log.js';
import { liveNames, readGenesis } from './membership.js';

export interface MemberStatus {
  readonly name: string;
  /** Running now (its live key is in etcd). */
  readonly live: boolean;
  readonly height: number | null;
  /** Blocks between the head and this member's height. */
  readonly behind: number | null;
  readonly hash: string | null;
  readonly cutter: boolean;
  readonly halted: { readonly height: number; readonly reason: string } | null;
  readonly disputed: { readonly height: number; readonly detail: string } | null;
}

export interface ClusterStatus {
  readonly cluster: string;
  readonly genesis: string | null;
  readonly head: number;
  readonly cutter: string | null;
  readonly pruned: number;
  readonly majority: number;
  readonly replicas: readonly MemberStatus[];
}

/** A member this many blocks behind the head while running is flagged as lagging. */
export const LAG_BLOCKS = 10;

/** The cluster's status; null when no replica ever joined it (no genesis, no members). */
export async function clusterStatus(log: EtcdLog): Promise<ClusterStatus | null> {
  const [genesis, { head }, cutter, pruned, members, statuses, halts, live] = await Promise.all([
    readGenesis(log),
    log.head(),
    log.election(5).leader(),
    log.pruned(),
    log.members(),
    log.statuses(),
    log.halts(),
    liveNames(log),
  ]);
  if (genesis === undefined && members.length === 0) return null;
  const byName = new Map(statuses.map((s) => [s.name, s]));
  const replicas = members.map((name): MemberStatus => {
    const s = byName.get(name);
    return {
      name,
      live: live.has(name),
      height: s?.height ?? null,
      behind: s ? head.height - s.height : null,
      hash: s?.hash ?? null,
      cutter: name === cutter,
      halted: halts.get(name) ?? s?.halted ?? null,
      disputed: s?.disputed ?? null,
    };
  });
  return { cluster: log.cluster, genesis: genesis ?? null, head: head.height, cutter: cutter ?? null, pruned, majority: Math.floor(members.length / 2) + 1, replicas };
}

export function showClusterStatus(s: ClusterStatus): string {
  const lines = [
    `cluster ${s.cluster}: head ${s.head}, cutter ${s.cutter ?? '(none)'}${s.pruned ? `, blocks through ${s.pruned} pruned` : ''};` +
      ` ${s.replicas.length} members, a majority is ${s.majority}`,
  ];
  for (const r of s.replicas) {
    const flags: string[] = [];
    if (r.cutter) flags.push('(cutter)');
    flags.push(r.live ? 'live' : 'DOWN');
    if (r.live && r.behind !== null && r.behind >= LAG_BLOCKS && !r.halted) flags.push(`LAGGING ${r.behind} blocks behind`);
    if (r.disputed && !r.halted) flags.push(`DISPUTED at ${r.disputed.height}: ${r.disputed.detail}`);
    if (r.halted) {
      flags.push(`HALTED at ${r.halted.height}: ${r.halted.reason}`);
      // A halted member still counts towards the majority (break15b #7b: a newcomer that failed its join).
      flags.push(`(to replace it: stop it, \`quickvat replica remove ${r.name}\`, then start a new replica under a new name from another replica's export)`);
    }
    lines.push(`  ${r.name.padEnd(16)} height ${String(r.height ?? '-').padStart(6)}  hash ${r.hash ? `${r.hash.slice(0, 16)}…` : '-'}  ${flags.join('  ')}`);
  }
  return lines.join('\n');
}
