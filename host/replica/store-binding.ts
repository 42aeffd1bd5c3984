// A replica's store belongs to one cluster (hostile review of #15): at its
// first join the store records the cluster's name and genesis id (created in
// etcd by the cluster's first replica), the replica's name and a random store
// id. Opened later against another cluster (a typo in --cluster), a cluster
// recreated under the same name, or under another replica name, it is
// refused: applying another log's blocks on top of this state would corrupt
// it silently. The keys are node-local (LOCAL_PREFIX): outside the state hash
// and exports.
import crypto from 'node:crypto';
import type { Store } from '../store/index.js';
import type { ExportMeta } from '../store/state-export.js';

export const CLUSTER_BINDING_KEY = 'local.replica.cluster';
/** Where a replica keeps its halt, so that a restart does not clear it. */
export const HALT_KEY = 'local.replica.halted';
/** [height, hash] pairs whose publish failed in etcd, published again from the poll and at the next start. */
export const UNPUBLISHED_KEY = 'local.replica.unpublished';

export interface StoreBinding {
  readonly cluster: string;
  readonly genesis: string;
  readonly name: string;
  /** Tells this store's own earlier process (killed, its name lease not yet expired) from another replica of the same name. */
  readonly storeId: string;
}

/**
 * Checks the store against the cluster it is joining, binding it at its first
 * join; returns the binding. `genesis` is the cluster's id in etcd (undefined
 * when no replica ever joined it); `create` makes it. Throws naming the
 * mismatch. `write` stores a node-local key.
 */
export async function bindStore(
  store: Store,
  want: { cluster: string; name: string; height: number; hasState: boolean; imported?: ExportMeta },
  genesis: { read(): Promise<string | undefined>; create(): Promise<string> },
  write: (key: string, value: unknown) => void,
): Promise<StoreBinding> {
  const bound = store.get(CLUSTER_BINDING_KEY) as StoreBinding | undefined;
  const existing = await genesis.read();
  if (bound) {
    if (bound.cluster !== want.cluster || bound.genesis !== existing) {
      const now = existing === undefined ? `cluster ${want.cluster}, which does not exist in this etcd` : `cluster ${want.cluster} (genesis ${existing})`;
      throw new Error(
        `this store belongs to cluster ${bound.cluster} (genesis ${bound.genesis}), not to ${now}: check --cluster and --etcd,` +
          ` or start a new replica of ${want.cluster} in an empty state directory (with --import of one of its exports)`,
      );
    }
    if (bound.name !== want.name) {
      throw new Error(`this store is replica ${bound.name} of cluster ${bound.cluster}; start it with the name ${bound.name}, not ${want.name}`);
    }
    return bound;
  }
  const from = want.imported?.cluster;
  if (from && (from.name !== want.cluster || from.genesis !== existing)) {
    throw new Error(
      `the imported export is of cluster ${from.name} (genesis ${from.genesis}), not of cluster ${want.cluster}` +
        `${existing === undefined ? ', which does not exist in this etcd' : ` (genesis ${existing})`}: export from a replica of ${want.cluster}`,
    );
  }
  // Any state, not only a replica height: a plain host's directory with
  // contracts in it would have the log applied on top of foreign state
  // (break15b #7b).
  if (want.hasState && !want.imported) {
    throw new Error(
      `this store has state (${want.height > 0 ? `height ${want.height}` : 'a host that never was a replica'}) but belongs to no cluster:` +
        ` a replica starts from an empty state directory, or from --import of an export of the cluster (into an empty directory)`,
    );
  }
  if (want.height > 0 && existing === undefined) {
    throw new Error(`cluster ${want.cluster} does not exist in this etcd, but the imported state is at height ${want.height}: check --cluster and --etcd`);
  }
  const binding: StoreBinding = { cluster: want.cluster, genesis: existing ?? (await genesis.create()), name: want.name, storeId: crypto.randomUUID() };
  write(CLUSTER_BINDING_KEY, binding);
  return binding;
}
