// Whose state is right at a height: the hash a strict majority of the
// cluster's members published. A replica outvoted at some height halts there
// (issue #15); with no majority possible (every member published, no hash
// reaches one), every replica halts rather than guess.

export type Verdict = { readonly kind: 'agreed' } | { readonly kind: 'undecided' } | { readonly kind: 'diverged'; readonly detail: string };

/** `hashes`: replica name -> hash at one height; `members`: how many replicas the cluster has. */
export function judgeHashes(hashes: ReadonlyMap<string, string>, me: string, members: number): Verdict {
  const mine = hashes.get(me);
  if (mine === undefined) return { kind: 'undecided' };
  const counts = new Map<string, string[]>();
  for (const [name, hash] of hashes) counts.set(hash, [...(counts.get(hash) ?? []), name]);
  const majority = Math.floor(Math.max(members, hashes.size) / 2) + 1;
  if (counts.get(mine)!.length >= majority) return { kind: 'agreed' };
  for (const [hash, names] of counts) {
    if (hash !== mine && names.length >= majority) return { kind: 'diverged', detail: `${hash}, which ${names.sort().join(', ')} (a majority of ${members}) reached` };
  }
  if (hashes.size >= members && counts.size > 1) {
    return { kind: 'diverged', detail: `the other replicas' hashes (${[...counts.keys()].filter((h) => h !== mine).join(', ')}) and no hash has a majority` };
  }
  return { kind: 'undecided' };
}
