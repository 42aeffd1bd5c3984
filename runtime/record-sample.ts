// The shape of what a vat reports about its stored records for pre-flight
// checks (issue 13): the guest's side makes it (vat-data.ts), the host's
// side judges it (host/upgrade/preflight.ts); and which records are sampled.

export interface RecordSample {
  /** the record's object reference, o+d<kind>/<n> */
  vref: string;
  /** the state version the record is stored at */
  version: number;
  /** its fields as stored */
  fields: string[];
  /** its fields once read through the new definition (after migrate) */
  readFields?: string[];
  failure?: 'version-lowered' | 'no-migrate' | 'migrate-threw' | 'unreadable' | 'shape-mismatch';
  error?: string;
}

export interface KindSample {
  tag: string;
  stateVersion: number;
  /** facet name -> method names, sorted ('' for a single-facet kind) */
  facets: Record<string, string[]>;
  hasMigrate: boolean;
  /** how many records the kind has made (deleted ones included) */
  records: number;
  /** the fields init makes when called with no arguments, if it can be */
  initFields?: string[];
  /** init cannot be called without arguments, so initFields is unknown */
  initNeedsArgs?: boolean;
  /** the keys of the kind's stateShape, when declared (used when init needs arguments) */
  shapeFields?: string[];
  samples: RecordSample[];
}

/** Object numbers 1..count to read: all of them up to `k`, else the first, the last and k-2 evenly spaced between. */
export function sampleIds(count: number, k: number): number[] {
  if (count <= 0 || k <= 0) return [];
  if (count <= k) return Array.from({ length: count }, (_, i) => i + 1);
  if (k === 1) return [1];
  const ids = new Set<number>();
  for (let i = 0; i < k; i++) ids.add(1 + Math.round((i * (count - 1)) / (k - 1)));
  return [...ids];
}
