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
import { inputDigest, type BlockRecord, type CodeRef, type Input, type Outcome } from './inputs.js';

/** The store key holding the height of the last block applied. */
export const HEIGHT_KEY = 'replica.height';

// Every input id applied, with its height and the digest of its content. A
// client cannot always know whether its input reached the log (a write that
// timed out, a replica that halted or closed before the block committed), so
// it writes it again under the same id; a replica applies an id at most once,
// however late the retry comes (issue #15: no input applied twice; the
// hostile review found a window of 1000 blocks too short). A repeat gets a
// rejection that names the block that applied the id, on every replica alike;
// a repeat with different content is told that the id was already used for a
// different input (hostile review of #15: an id is bound to its content).
const SEEN = 'replica.seen.';

/** Whether input `id` has been applied (within the retry window). */
export function wasApplied(host: Host, id: string): boolean {
  return host.store.get(SEEN + id) !== undefined;
}
// The ids first applied in block H (replica.seenAt.<H>), so that they can be
// forgotten once H is older than the retry window (break15b #8: every id
// ever applied stayed in the hashed state, and stateHash, a full scan after
// every block, grew with history); and the last height whose ids were
// forgotten. All of it is replicated state: every replica forgets alike.
const SEEN_AT = 'replica.seenAt.';
const FORGOTTEN = 'replica.seenForgotten';
/** Most heights' ids forgotten per block (a window made much smaller catches up over several blocks). */
const FORGET_HEIGHTS_PER_BLOCK = 64;
const heightKey = (h: number) => String(h).padStart(12, '0');

/** What a seen id records: [height, content digest] (a bare height in stores written before digests). */
type Seen = readonly [number, string] | number;

export function appliedHeight(host: Host): number {
  return (host.store.get(HEIGHT_KEY) as number | undefined) ?? 0;
}

export interface AppliedBlock {
  readonly cranks: number;
  /** Outcomes of the block's inputs other than sends, known once the block has committed: [id, content digest, outcome, log revision]. */
  readonly outcomes: readonly (readonly [string, string, Promise<Outcome>, string])[];
}

/** Where a settled input's outcome goes: its id, the digest of its content (inputDigest) and the log revision it was written at. */
export type OnSettled = (id: string, digest: string, outcome: Outcome, rev: string) => void;

/**
 * Applies `block` (the next height) and commits it. Sends' outcomes reach
 * `onSettled` when the block that settles them commits (maybe a later one).
 * Throws only for a failure of the replica itself (then nothing is stored).
 */
export function applyBlock(host: Host, block: BlockRecord, onSettled: OnSettled): AppliedBlock {
  const { store, kernel } = host;
  const expected = appliedHeight(host) + 1;
  if (block.height !== expected) throw new Error(`block ${block.height} cannot be applied at height ${expected - 1}`);
  const outcomes: [string, string, Promise<Outcome>, string][] = [];
  let cranks = 0;
  store.hold();
  let done = false;
  try {
    const firstSeen: string[] = [];
    for (const { id, input, rev } of block.inputs) {
      const digest = inputDigest(input);
      const seen = store.get(SEEN + id) as Seen | undefined;
      if (seen !== undefined) {
        const [first, firstDigest] = typeof seen === 'number' ? [seen, digest] : seen;
        // Twice in one block with the same content: the first copy's outcome answers the id.
        if (first < block.height || firstDigest !== digest) outcomes.push([id, digest, Promise.resolve(repeated(host, id, first, firstDigest === digest)), rev]);
        continue;
      }
      store.set(SEEN + id, [block.height, digest]);
      firstSeen.push(id);
      const outcome = applyInput(host, input, (o) => onSettled(id, digest, o, rev));
      if (outcome) outcomes.push([id, digest, outcome, rev]);
    }
    if (firstSeen.length > 0) store.set(SEEN_AT + heightKey(block.height), firstSeen);
    forgetSeen(host, block);
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

// Forgets the ids first applied at heights older than the block's retry
// window (a bounded number of heights per block).
function forgetSeen(host: Host, block: BlockRecord): void {
  const window = block.retryWindow;
  if (!(typeof window === 'number' && Number.isSafeInteger(window) && window > 0)) return;
  const { store } = host;
  const done = (store.get(FORGOTTEN) as number | undefined) ?? 0;
  const through = Math.min(block.height - window, done + FORGET_HEIGHTS_PER_BLOCK);
  if (through <= done) return;
  for (let h = done + 1; h <= through; h++) {
    const ids = store.get(SEEN_AT + heightKey(h)) as string[] | undefined;
    if (!ids) continue;
    for (const id of ids) {
      const seen = store.get(SEEN + id) as Seen | undefined;
      if (seen !== undefined && (typeof seen === 'number' ? seen : seen[0]) === h) store.delete(SEEN + id);
    }
    store.delete(SEEN_AT + heightKey(h));
  }
  store.set(FORGOTTEN, through);
}

function repeated(host: Host, id: string, height: number, sameContent: boolean): Outcome {
  const err = harden(
    new Error(
      sameContent
        ? `DuplicateInput: input ${id} was already applied, in block ${height}; it was not applied again`
        : `DuplicateInput: id ${id} was already used for a different input, in block ${height}; this input was not applied: submit it under a new id`,
    ),
  );
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
