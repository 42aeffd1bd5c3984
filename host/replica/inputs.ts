// What the replicated log carries (issue #15): every input that changes
// state, and blocks that fix which inputs, in which order, a block applies.
// Values that may hold presences (send arguments, privateArgs, options) travel
// as capdata whose slots are krefs: the same kernel objects on every replica.
import crypto from 'node:crypto';
import type { Capdata } from '../kernel/refs.js';
import { codec, encodeValue } from '../store/codec.js';

/** Contract code in an input: source text, or a bundle installed through the log earlier. */
export type CodeRef = { readonly source: string } | { readonly bundleId: string };

export type Input =
  | { readonly type: 'send'; readonly target: string; readonly method: string; readonly args: Capdata }
  | { readonly type: 'put'; readonly pieces: readonly (readonly [string, Uint8Array])[] }
  | { readonly type: 'installBundle'; readonly manifest: unknown }
  | { readonly type: 'install'; readonly code: CodeRef; readonly options: Capdata }
  | { readonly type: 'start'; readonly installationId: string; readonly options: Capdata }
  | { readonly type: 'upgrade'; readonly instanceId: string; readonly code: CodeRef; readonly options: Capdata }
  | { readonly type: 'suspend'; readonly instanceId: string; readonly reason?: string }
  | { readonly type: 'resume'; readonly instanceId: string };

export type InputType = Input['type'];
export const INPUT_TYPES: readonly InputType[] = ['send', 'put', 'installBundle', 'install', 'start', 'upgrade', 'suspend', 'resume'];

/** An input as written to etcd: a unique id (so its submitter can find its outcome) and who submitted it. */
export interface LoggedInput {
  readonly id: string;
  readonly origin: string;
  readonly input: Input;
  /** Publish the outcome in etcd (out/<id>) for a client that is not a replica (`quickvat replica call`). */
  readonly reply?: boolean;
}

/** The default retry window, in blocks (BlockRecord.retryWindow). */
export const DEFAULT_RETRY_WINDOW = 100_000;

/** The most bytes one input may take in the log (etcd refuses requests over 1.5 MiB). */
export const MAX_INPUT_BYTES = 1024 * 1024;

/** How an input ended: its result or rejection, as capdata (the same on every replica). */
export interface Outcome {
  readonly rejected: boolean;
  readonly data: Capdata;
}

/** Block H: the inputs with revisions in (from, to], in revision order, then cranks under `policy`. */
export interface BlockRecord {
  readonly height: number;
  readonly from: string;
  readonly to: string;
  readonly policy: { readonly maxCranks: number; readonly computeBudget: string; readonly suspendAfterMeterFaults: number };
  /**
   * The retry window, in blocks: the ids this block applies are remembered
   * (a repeat is refused) until block height + retryWindow, then forgotten
   * (apply-block.ts). Absent (blocks cut before it existed): never forgotten.
   */
  readonly retryWindow?: number;
  readonly inputs: readonly (LoggedInput & { readonly rev: string })[];
}

/** Throws naming what is wrong with a decoded block record (the log is input too). */
export function checkBlock(block: unknown, height: number): BlockRecord {
  const b = block as BlockRecord;
  const bad = (what: string) => new Error(`block ${height} in the log is malformed: ${what}`);
  if (typeof b !== 'object' || b === null) throw bad('not a record');
  if (b.height !== height) throw bad(`it says it is block ${String(b.height)}`);
  if (!Array.isArray(b.inputs)) throw bad('no inputs list');
  // An input's content is checked when it is applied, and a bad one gets a
  // rejected outcome on every replica alike: one malformed input must not
  // stop the cluster (found by a hostile review). Only what identifies it is
  // needed here.
  for (const i of b.inputs) {
    if (typeof i !== 'object' || i === null || typeof i.id !== 'string' || i.id.length === 0 || i.id.length > 100) throw bad(`an input has no id of 1 to 100 characters`);
  }
  if (typeof b.policy?.maxCranks !== 'number' || typeof b.policy.computeBudget !== 'string') throw bad('no run policy');
  return b;
}

/** Throws a TypeError unless `id` can name an input: 1-100 letters, digits, "_", ".", ":", "@", "-". */
export function checkInputId(id: unknown): string {
  if (typeof id !== 'string' || !/^[A-Za-z0-9_.:@-]{1,100}$/.test(id)) {
    throw new TypeError(`an input id is 1-100 letters, digits, "_", ".", ":", "@" or "-", got ${JSON.stringify(id) ?? typeof id}`);
  }
  return id;
}

/** Throws a TypeError naming what is wrong with an input before it is written to the log. */
export function checkInput(input: unknown): Input {
  const type = (input as { type?: unknown } | null)?.type;
  if (typeof input !== 'object' || input === null || !INPUT_TYPES.includes(type as InputType)) {
    throw new TypeError(`an input must be a record whose type is one of ${INPUT_TYPES.join(', ')}; got ${JSON.stringify(type) ?? typeof input}`);
  }
  // What the log holds is what every replica applies, and what the input's
  // id is bound to: content the encoding would change (a Map, a class
  // instance, a lone surrogate) is refused here, not applied as something
  // else (break-15c #4, #7). A property set to undefined is an absent one
  // (as the log would read it back), not an error: optional fields are often
  // passed that way.
  const misread: { found?: string } = {};
  input = asLogged(input, 0, misread);
  try {
    encodeValue('input', input);
  } catch (err) {
    throw new TypeError(`an input must be plain data: ${(err as Error).message.replace(/^store value for key \S+/, 'the input')}`);
  }
  const bad = misread.found;
  if (bad === '__proto__') throw new TypeError('an input must be plain data: the input holds a "__proto__" key, which the log would read back as another key');
  if (bad !== undefined) throw new TypeError(`an input must be plain data: the input holds a string with a lone surrogate (${JSON.stringify(bad.slice(0, 40))}), which the log would store as U+FFFD`);
  return input as Input;
}

// The input as the log will read it back: properties set to undefined
// dropped. Notes in `misread` the first key or string it would read back
// differently: an own "__proto__" key (msgpackr renames it) or a lone
// surrogate (UTF-8 has none). Class instances and binaries are left to
// encodeValue's checks.
function asLogged(value: unknown, depth: number, misread: { found?: string }): unknown {
  const note = (text: string, isKey: boolean) => {
    if (misread.found === undefined && ((isKey && text === '__proto__') || !(text as string & { isWellFormed(): boolean }).isWellFormed())) misread.found = text;
  };
  if (typeof value === 'string') note(value, false);
  if (typeof value !== 'object' || value === null || depth > 100 || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) return value.map((v) => asLogged(v, depth + 1, misread));
  if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value;
  const kept = Object.entries(value).filter(([, v]) => v !== undefined);
  return Object.fromEntries(kept.map(([k, v]) => (note(k, true), [k, asLogged(v, depth + 1, misread)])));
}

/**
 * The digest (sha256, hex) of an input's content, which binds its id to it
 * (hostile review of #15: two clients reusing one id must not have one input
 * vanish and both told it ran). Object keys are sorted first, so the same
 * content built in another key order (another client) has the same digest.
 * Never throws: content that cannot be encoded digests as its type's name.
 */
export function inputDigest(input: unknown): string {
  let bytes: Uint8Array;
  try {
    bytes = codec.encode(canonical(input));
  } catch {
    bytes = Buffer.from(`unencodable ${typeof input}`);
  }
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) out[key] = canonical((value as Record<string, unknown>)[key]);
  return out;
}

/** The id of an input already in the log (or applied) names different content: nothing was written. */
export class InputIdConflict extends Error {
  constructor(readonly inputId: string) {
    super(`id ${inputId} was already used for a different input: submit this input under a new id (an id names one input, and a retry must resend the same content)`);
    this.name = 'InputIdConflict';
  }
}
