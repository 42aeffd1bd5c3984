// Whose state is right at a height (issue #15; the rule is in
// docs/operators-guide.md, "Agreement"). Only the cluster's current members
// vote (membership.ts: a replica registers at its first start and stays a
// member until `replica remove`). A hash is *confirmed* at H when a strict
// majority of the current members published it. A replica
//   - agrees when its own hash is confirmed;
//   - halts when its hash can no longer be confirmed: another hash is
//     confirmed, or too few members are left to publish for a majority (in a
//     2-member cluster, any disagreement halts both sides);
//   - is *disputed* when another member published a different hash and
//     neither is confirmed yet, but the members still missing could decide:
//     it stops applying, cutting and taking submissions until they do;
//   - is undecided while members have yet to publish and nobody disagrees.
// A member that never comes back must be removed (`replica remove`), or the
// heights it would have decided stay undecided or disputed.

export type Verdict =
  | { readonly kind: 'agreed' }
  | { readonly kind: 'undecided' }
  | { readonly kind: 'disputed'; readonly detail: string }
  | { readonly kind: 'diverged'; readonly detail: string };

/** The strict majority of `members` members. */
export const majorityOf = (members: number) => Math.floor(members / 2) + 1;

/** Only the votes of current members. */
function votes(hashes: ReadonlyMap<string, string>, members: readonly string[]): Map<string, string[]> {
  const counts = new Map<string, string[]>();
  for (const name of members) {
    const hash = hashes.get(name);
    if (hash !== undefined) counts.set(hash, [...(counts.get(hash) ?? []), name]);
  }
  return counts;
}

/** The hash a majority of the current members published at one height, if any. */
export function confirmedHash(hashes: ReadonlyMap<string, string>, members: readonly string[]): string | undefined {
  for (const [hash, names] of votes(hashes, members)) if (names.length >= majorityOf(members.length)) return hash;
  return undefined;
}

/** `hashes`: replica name -> hash at one height (anyone's); `members`: the current members' names. */
export function judgeHashes(hashes: ReadonlyMap<string, string>, me: string, members: readonly string[]): Verdict {
  const mine = hashes.get(me);
  if (mine === undefined || !members.includes(me)) return { kind: 'undecided' };
  const counts = votes(hashes, members);
  const majority = majorityOf(members.length);
  const published = [...counts.values()].reduce((n, names) => n + names.length, 0);
  const missing = members.filter((m) => !hashes.has(m));
  const describe = () =>
    [...counts]
      .map(([hash, names]) => `${names.sort().join(', ')}: ${hash}`)
      .join('; ') + (missing.length > 0 ? `; not yet published: ${missing.sort().join(', ')}` : '');
  if (counts.get(mine)!.length >= majority) return { kind: 'agreed' };
  for (const [hash, names] of counts) {
    if (hash !== mine && names.length >= majority) {
      return { kind: 'diverged', detail: `${hash}, which ${names.sort().join(', ')} (a majority of the ${members.length} members) reached` };
    }
  }
  if (counts.get(mine)!.length + (members.length - published) < majority) {
    return { kind: 'diverged', detail: `the other members' hashes, and no hash can reach a majority of the ${members.length} members (${describe()})` };
  }
  if (counts.size > 1) {
    return {
      kind: 'disputed',
      detail:
        `members disagree and no hash has a majority of ${members.length} yet (${describe()}); to decide: start ${missing.sort().join(', ')} again,` +
        ` or stop the replica whose state is wrong and \`replica remove\` it (removing a member that has not published would halt every side)`,
    };
  }
  return { kind: 'undecided' };
}

/**
 * What removing `name` would do to the replicas left, at each height whose
 * hashes are in `all` (height -> replica -> hash): the first height where a
 * member left that is not diverged now would be (halt) without `name`, with
 * who would halt. Undefined when the removal halts nobody (break15b #5:
 * removing the down member mid-dispute halted the honest replica too).
 */
export function removalHalts(all: ReadonlyMap<number, ReadonlyMap<string, string>>, members: readonly string[], name: string): { height: number; halted: string[] } | undefined {
  const left = members.filter((m) => m !== name);
  for (const height of [...all.keys()].sort((a, b) => a - b)) {
    const hashes = all.get(height)!;
    const halted = left.filter((m) => judgeHashes(hashes, m, members).kind !== 'diverged' && judgeHashes(hashes, m, left).kind === 'diverged');
    if (halted.length > 0) return { height, halted: halted.sort() };
  }
  return undefined;
}
