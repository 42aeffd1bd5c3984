// Applying one block of the replicated log to a host: its inputs in order,
// then cranks under the block's run policy, then the block's height; all of
// it reaches lmdb as ONE transaction (store.hold), so a replica killed at any
// point has either applied the whole block or none of it (issue #15). What a
// block does depends only on the block record and the state before it.
import type { Host, Installation } from '../host.js';
import { bundlecapInfo, type Bundlecap } from '../bundles/module-store.js';
import { BlockMeter, resolveRunPolicy } from '../kernel/run-policy.js';
import { harden } from '../marshal/endo.js';
import type { Capdata } from '../kernel/refs.js';
import type { BlockRecord, CodeRef, Input, Outcome } from './inputs.js';

/** The store key holding the height of the last block applied. */
export const HEIGHT_KEY = 'replica.height';

// Every input id applied, with its height. A client cannot always know
// whether its input reached the log (a write that timed out, a replica that
// halted or closed before the block committed), so it writes it again under
// the same id; a replica applies an id at most once, however late the retry
// comes (issue #15: no input applied twice; the hostile review found a
// window of 1000 blocks too short). A repeat gets a rejection that names the
// block that applied the id, on every replica alike.
const SEEN = 'replica.seen.';

export function appliedHeight(host: Host): number {
  return (host.store.get(HEIGHT_KEY) as number | undefined) ?? 0;
}

export interface AppliedBlock {
  readonly cranks: number;
  /** Outcomes of the block's inputs other than sends, known once the block has committed. */
  readonly outcomes: readonly (readonly [string, Promise<Outcome>])[];
}

/**
 * Applies `block` (the next height) and commits it. Sends' outcomes reach
 * `onSettled` when the block that settles them commits (maybe a later one).
 * Throws only for a failure of the replica itself (then nothing is stored).
 */
export function applyBlock(host: Host, block: BlockRecord, onSettled: (id: string, outcome: Outcome) => void): AppliedBlock {
  const { store, kernel } = host;
  const expected = appliedHeight(host) + 1;
  if (block.height !== expected) throw new Error(`block ${block.height} cannot be applied at height ${expected - 1}`);
  const outcomes: [string, Promise<Outcome>][] = [];
  let cranks = 0;
  store.hold();
  let done = false;
  try {
    for (const { id, input } of block.inputs) {
      const first = store.get(SEEN + id) as number | undefined;
      if (first !== undefined) {
        // Twice in one block: the first copy's outcome answers the id.
        if (first < block.height) outcomes.push([id, Promise.resolve(repeated(host, id, first))]);
        continue;
      }
      store.set(SEEN + id, block.height);
      const outcome = applyInput(host, input, (o) => onSettled(id, o));
      if (outcome) outcomes.push([id, outcome]);
    }
    const { maxCranks, computeBudget, suspendAfterMeterFaults } = block.policy;
    const meter = new BlockMeter(resolveRunPolicy({ maxCranks, computeBudget: BigInt(computeBudget), suspendAfterMeterFaults }));
    while (!meter.limitReached() && kernel.crank(meter));
    cranks = meter.cranks;
    store.atomically(() => store.set(HEIGHT_KEY, block.height));
    done = true;
  } finally {
    store.release();
    if (!done) {
      store.abort();
      kernel.dropAllSandboxes();
    }
  }
  kernel.commit();
  return { cranks, outcomes };
}

function repeated(host: Host, id: string, height: number): Outcome {
  const err = harden(new Error(`DuplicateInput: input ${id} was already applied, in block ${height}; it was not applied again`));
  return { rejected: true, data: host.toCapdata(err) };
}

// Null for a send queued now: its outcome comes through `settled`.
function applyInput(host: Host, input: Input, settled: (o: Outcome) => void): Promise<Outcome> | null {
  const fulfilled = (value: unknown): Outcome => ({ rejected: false, data: host.toCapdata(value) });
  const rejected = (err: unknown): Outcome => {
    const e = err as Error;
    return { rejected: true, data: host.toCapdata(harden(new Error(`${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`))) };
  };
  try {
    if (typeof input !== 'object' || input === null) throw new TypeError('the input is not a record');
    switch (input.type) {
      case 'send':
        host.kernel.inputs.queueToKref(input.target, input.method, input.args, (isRejected, data) => settled({ rejected: isRejected, data }));
        return null;
      case 'put':
        return Promise.resolve(fulfilled(host.bundles.put(input.pieces)));
      case 'installBundle':
        return Promise.resolve(fulfilled(bundlecapInfo(host.bundles.install(input.manifest)).bundleId));
      case 'install': {
        const { installationId, label } = host.install(codeOf(host, input.code), options(host, input.options));
        return Promise.resolve(fulfilled(harden({ installationId, label })));
      }
      case 'start': {
        const installation: Installation = harden({ installationId: input.installationId, label: '' });
        return Promise.resolve(fulfilled(host.startInstance(installation, options(host, input.options)).instanceId));
      }
      case 'upgrade':
        return host.upgrade(host.adminFacet(input.instanceId), codeOf(host, input.code), options(host, input.options)).then(fulfilled, rejected);
      case 'suspend':
        host.suspend(input.instanceId, input.reason);
        return Promise.resolve(fulfilled(null));
      case 'resume':
        host.resume(input.instanceId);
        return Promise.resolve(fulfilled(null));
      default:
        throw new TypeError(`unknown input type ${JSON.stringify((input as { type: unknown }).type)}`);
    }
  } catch (err) {
    // Told after the commit, like every other outcome.
    return Promise.resolve(rejected(err));
  }
}

function codeOf(host: Host, code: CodeRef): Bundlecap | string {
  if ('source' in code && typeof code.source === 'string') return code.source;
  const id = (code as { bundleId?: unknown }).bundleId;
  const cap = typeof id === 'string' ? host.bundles.bundlecap(id) : undefined;
  if (!cap) throw new TypeError(`bundle ${JSON.stringify(id)} is not installed (install it through the log first)`);
  return cap;
}

function options(host: Host, data: Capdata): Record<string, any> {
  const value = host.fromCapdata(data);
  if (typeof value !== 'object' || value === null) throw new TypeError('input options must be a record');
  return value as Record<string, any>;
}
