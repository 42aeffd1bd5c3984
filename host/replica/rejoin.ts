// A replica that fell behind a prune of the log halts asking for an export at
// the prune height or later. Restarted with `--import` of one into its own
// state directory, it replaces its state by the export's (hostile review of
// #15, break15b #6a: the import used to be ignored for a store with state, so
// the documented recovery halted again). Only then: the store belongs to
// this cluster (same name and genesis), it is strictly behind the prune
// height (there is no other way forward for it), and the export is of this
// cluster at the prune height or later. Otherwise the store resumes from its
// own height and the export is not used.
import type { Store } from '../store/index.js';
import { loadStateExport, type ExportMeta } from '../store/state-export.js';
import { HEIGHT_KEY } from './apply-block.js';
import { EtcdLog } from './etcd-log.js';
import { readGenesis } from './membership.js';
import type { ReplicateOptions } from './replica.js';
import { CLUSTER_BINDING_KEY, HALT_KEY, type StoreBinding } from './store-binding.js';

/** Replaces the store's state by the export's when the rules above allow; returns the export's meta then. Throws naming a bad export. */
export async function importBehindPrune(store: Store, options: ReplicateOptions): Promise<ExportMeta | undefined> {
  const bound = store.get(CLUSTER_BINDING_KEY) as StoreBinding | undefined;
  const height = (store.get(HEIGHT_KEY) as number | undefined) ?? 0;
  // A store of no cluster, or of another one: Replica.start refuses it with the reason.
  if (!bound || bound.cluster !== options.cluster) return undefined;
  const log = new EtcdLog(options.endpoints, options.cluster, options.callTimeoutMs);
  try {
    const [pruned, genesis] = await Promise.all([log.pruned(), readGenesis(log)]);
    if (bound.genesis !== genesis || height >= pruned) return undefined;
    const file = options.importFrom!;
    const { meta, entries } = loadStateExport(file);
    if (meta.cluster?.name !== bound.cluster || meta.cluster.genesis !== bound.genesis) {
      const of = meta.cluster ? `cluster ${meta.cluster.name} (genesis ${meta.cluster.genesis})` : 'no cluster';
      throw new Error(`the export ${file} is of ${of}, not of this store's cluster ${bound.cluster} (genesis ${bound.genesis}): export from a replica of ${bound.cluster}`);
    }
    if (meta.height < pruned) {
      throw new Error(`the export ${file} is at height ${meta.height}, but blocks through ${pruned} were pruned from the log: export a replica at height ${pruned} or later`);
    }
    store.replaceRawEntries(entries);
    // A halt kept in the store was about the state just replaced.
    if (store.get(HALT_KEY) !== undefined) store.atomically(() => store.delete(HALT_KEY));
    return meta;
  } finally {
    log.close();
  }
}
