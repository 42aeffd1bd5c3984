// What an upgrade changes in a contract's durable surface, for voters
// (issue 13): durable kinds added and removed, facets and methods added and
// removed per kind, each kind's stateVersion old -> new, and named exits old
// -> new. Computed from descriptions of both versions as loaded in trial vats
// (host/upgrade); here only the comparison and its data shape.

/** One version's durable kind as a trial vat reports it. */
export interface KindDescription {
  readonly tag: string;
  readonly stateVersion: number;
  /** facet name -> method names ('' for a single-facet kind) */
  readonly facets: Readonly<Record<string, readonly string[]>>;
}

export interface KindChange {
  readonly tag: string;
  readonly status: 'added' | 'removed' | 'kept';
  readonly stateVersion: { readonly from?: number; readonly to?: number };
  readonly facetsAdded: readonly string[];
  readonly facetsRemoved: readonly string[];
  /** `method` or `facet.method` */
  readonly methodsAdded: readonly string[];
  readonly methodsRemoved: readonly string[];
}

export interface UpgradeSummary {
  /** sorted by tag */
  readonly kinds: readonly KindChange[];
  readonly exits: { readonly from: readonly string[]; readonly to: readonly string[] };
}

/** What a review is "against" when it is against a running instance. */
export interface ReviewInstance {
  readonly id: string;
  readonly incarnation: number;
  readonly bundleId: string;
}

/** Pre-flight results as a review shows them. */
export interface ReviewPreflight {
  readonly ok: boolean;
  readonly problems: readonly { readonly code: string; readonly message: string }[];
  /** what pre-flight could not check (not blocking) */
  readonly warnings?: readonly { readonly code: string; readonly message: string }[];
}

const minus = (a: readonly string[], b: readonly string[]) => a.filter((x) => !b.includes(x));
const qualified = (facet: string, methods: readonly string[]) => methods.map((m) => (facet === '' ? m : `${facet}.${m}`));

/**
 * The change from `before` to `after`. `removedTags` names kinds known to be
 * gone even when the new version could not be described (it failed to start
 * because it did not redefine them).
 */
export function summarizeUpgrade(
  before: readonly KindDescription[],
  after: readonly KindDescription[] | undefined,
  exits: { from: readonly string[]; to: readonly string[] },
  removedTags: readonly string[] = [],
): UpgradeSummary {
  const old = new Map(before.map((k) => [k.tag, k]));
  const now = new Map((after ?? []).map((k) => [k.tag, k]));
  const tags = [...new Set([...old.keys(), ...now.keys(), ...removedTags])].sort();
  const kinds: KindChange[] = [];
  for (const tag of tags) {
    const a = old.get(tag);
    const b = now.get(tag);
    if (removedTags.includes(tag) || (after !== undefined && !b)) {
      if (a) kinds.push({ tag, status: 'removed', stateVersion: { from: a.stateVersion }, facetsAdded: [], facetsRemoved: [], methodsAdded: [], methodsRemoved: [] });
      continue;
    }
    if (!b) continue;
    if (!a) {
      kinds.push({
        tag,
        status: 'added',
        stateVersion: { to: b.stateVersion },
        facetsAdded: Object.keys(b.facets).filter((f) => f !== ''),
        facetsRemoved: [],
        methodsAdded: Object.entries(b.facets).flatMap(([f, m]) => qualified(f, m)),
        methodsRemoved: [],
      });
      continue;
    }
    const facets = [...new Set([...Object.keys(a.facets), ...Object.keys(b.facets)])].sort();
    kinds.push({
      tag,
      status: 'kept',
      stateVersion: { from: a.stateVersion, to: b.stateVersion },
      facetsAdded: minus(Object.keys(b.facets), Object.keys(a.facets)).filter((f) => f !== ''),
      facetsRemoved: minus(Object.keys(a.facets), Object.keys(b.facets)).filter((f) => f !== ''),
      methodsAdded: facets.flatMap((f) => qualified(f, minus(b.facets[f] ?? [], a.facets[f] ?? []))),
      methodsRemoved: facets.flatMap((f) => qualified(f, minus(a.facets[f] ?? [], b.facets[f] ?? []))),
    });
  }
  return { kinds, exits: { from: [...exits.from].sort(), to: [...exits.to].sort() } };
}
