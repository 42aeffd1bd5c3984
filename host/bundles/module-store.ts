// Content-addressed storage of bundle pieces and manifests in the host's store.
// A piece is stored once however many bundles use it; a proposer uploads only
// what missing() lists. Keys (all under `b.`):
//   b.piece.<sha256>            piece bytes
//   b.manifest.<bundleId>       validated manifest
//   b.hold.<bundleId>.<holder>  1 while `holder` (an installation, an instance...) uses the bundle
import type { VatBundle } from '../kernel/kernel.js';
import type { Store } from '../store/index.js';
import { PieceHashMismatchError, SourceMissingError } from './errors.js';
import { canonicalJson } from './vat-bundle.js';
import { isPieceHash, manifestBundleId, manifestToVatBundle, sha256Hex, validateManifest, type Manifest, type SourceBundle } from './manifest.js';

export { PieceHashMismatchError, SourceMissingError } from './errors.js';

const PIECE = 'b.piece.';
const MANIFEST = 'b.manifest.';
const HOLD = 'b.hold.';

/** Proof that every piece of a manifest was present when it was issued; only a ModuleStore makes one. */
export interface Bundlecap {
  readonly bundleId: string;
}

interface CapRecord {
  readonly bundleId: string;
  readonly manifest: Manifest;
  readonly issuer: ModuleStore;
}

// The registry, not the object's shape, is what makes a bundlecap genuine: a
// look-alike { bundleId } built elsewhere is not in it.
const caps = new WeakMap<object, CapRecord>();

export function isBundlecap(value: unknown): value is Bundlecap {
  return typeof value === 'object' && value !== null && caps.has(value);
}

export function bundlecapInfo(cap: Bundlecap): { bundleId: string; manifest: Manifest } {
  const record = typeof cap === 'object' && cap !== null ? caps.get(cap) : undefined;
  if (!record) throw new TypeError(`not a bundlecap: ${describeCap(cap)}; get one from bundles.install(manifest)`);
  return { bundleId: record.bundleId, manifest: record.manifest };
}

function describeCap(value: unknown): string {
  if (value === null || typeof value !== 'object') return String(value);
  const id = (value as { bundleId?: unknown }).bundleId;
  return typeof id === 'string' ? `an object claiming bundleId ${id}` : 'an object';
}

function checkBundleId(bundleId: unknown, what: string): string {
  if (!isPieceHash(bundleId)) throw new TypeError(`${what} needs a bundleId (64 lowercase hex digits), got ${JSON.stringify(bundleId) ?? String(bundleId)}`);
  return bundleId;
}

function checkHolder(holder: unknown, what: string): string {
  if (typeof holder !== 'string' || holder === '') throw new TypeError(`${what} needs a non-empty holder name, got ${JSON.stringify(holder) ?? String(holder)}`);
  return holder;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** A frozen copy with sorted keys, so stored bytes are the same on every host. */
function canonicalCopy(manifest: unknown): Manifest {
  return deepFreeze(validateManifest(JSON.parse(canonicalJson(manifest))));
}

export class ModuleStore {
  readonly #store: Store;
  readonly #caps = new Map<string, Bundlecap>();

  constructor(store: Store) {
    this.#store = store;
  }

  /** Piece hashes of `manifest` this store lacks, sorted and deduplicated. */
  missing(manifest: unknown): string[] {
    const valid = validateManifest(manifest);
    const wanted = new Set(Object.values(valid.modules).map((m) => m.piece));
    return [...wanted].filter((hash) => !this.#store.has(PIECE + hash)).sort();
  }

  hasPiece(hash: string): boolean {
    return isPieceHash(hash) && this.#store.has(PIECE + hash);
  }

  getPiece(hash: string): Uint8Array | undefined {
    if (!isPieceHash(hash)) return undefined;
    const value = this.#store.get(PIECE + hash);
    return value instanceof Uint8Array ? value : undefined;
  }

  /**
   * Stores pieces after checking each against its hash. All are checked
   * before any is written, so a single bad piece leaves the store untouched.
   */
  put(pieces: Iterable<readonly [string, Uint8Array]> | ReadonlyMap<string, Uint8Array>): { stored: string[]; alreadyHad: string[] } {
    const verified = new Map<string, Uint8Array>();
    for (const item of pieces as Iterable<readonly [string, Uint8Array]>) {
      if (!Array.isArray(item) || item.length !== 2) throw new TypeError('put() takes [hash, bytes] pairs or a Map of hash -> bytes; nothing was stored');
      const [hash, bytes] = item as [unknown, unknown];
      if (!isPieceHash(hash)) throw new TypeError(`piece name ${JSON.stringify(hash) ?? String(hash)} is not a sha256 (64 lowercase hex digits); nothing was stored`);
      if (!(bytes instanceof Uint8Array)) throw new TypeError(`piece ${hash} is not a Uint8Array; nothing was stored`);
      const actual = sha256Hex(bytes);
      if (actual !== hash) throw new PieceHashMismatchError(hash, actual);
      verified.set(hash, bytes);
    }
    const stored: string[] = [];
    const alreadyHad: string[] = [];
    this.#store.atomically(() => {
      for (const [hash, bytes] of verified) {
        if (this.#store.has(PIECE + hash)) {
          alreadyHad.push(hash);
        } else {
          // A copy: the caller may reuse its buffer, and a Buffer view could pin a larger one.
          this.#store.set(PIECE + hash, new Uint8Array(bytes));
          stored.push(hash);
        }
      }
    });
    return { stored: stored.sort(), alreadyHad: alreadyHad.sort() };
  }

  /**
   * Records a manifest whose pieces are all present and returns its
   * bundlecap (the same object for the same bundle, for this store).
   * Throws SourceMissingError listing the absent pieces otherwise.
   */
  install(manifest: unknown): Bundlecap {
    validateManifest(manifest);
    // From here on only a frozen canonical copy is used: the caller keeps its
    // object and could change it after the check.
    const valid = canonicalCopy(manifest);
    const absent = this.missing(valid);
    if (absent.length > 0) throw new SourceMissingError(absent, `bundle with entry ${JSON.stringify(valid.entry)}`);
    for (const [name, record] of Object.entries(valid.modules)) {
      const bytes = this.getPiece(record.piece)!;
      if (bytes.byteLength !== record.size) {
        throw new TypeError(`invalid manifest: modules[${JSON.stringify(name)}].size is ${record.size}, but piece ${record.piece} has ${bytes.byteLength} bytes`);
      }
    }
    // Compiled now (and cached by piece hash): a module the guest could not
    // load is refused at install, naming it, not at the first start.
    manifestToVatBundle(valid, (hash) => this.getPiece(hash));
    const bundleId = manifestBundleId(valid);
    if (!this.#store.has(MANIFEST + bundleId)) this.#store.atomically(() => this.#store.set(MANIFEST + bundleId, valid));
    return this.#cap(bundleId, valid);
  }

  /**
   * put() then install() for a whole bundle from bundleSource or
   * readBundleFile: stores the pieces this store lacks, returns the bundlecap.
   */
  add(bundle: Pick<SourceBundle, 'manifest' | 'pieces'>): Bundlecap {
    if (typeof bundle !== 'object' || bundle === null || !(bundle.pieces instanceof Map)) {
      throw new TypeError('add() takes a bundle { manifest, pieces } from bundleSource or readBundleFile');
    }
    const missing = new Set(this.missing(bundle.manifest));
    this.put([...bundle.pieces].filter(([hash]) => missing.has(hash)));
    return this.install(bundle.manifest);
  }

  /** The bundlecap of a bundle installed earlier (also by an earlier process), if its pieces are still here. */
  bundlecap(bundleId: string): Bundlecap | undefined {
    const manifest = this.manifest(bundleId);
    if (!manifest || this.missing(manifest).length > 0) return undefined;
    return this.#cap(bundleId, manifest);
  }

  manifest(bundleId: string): Manifest | undefined {
    if (!isPieceHash(bundleId)) return undefined;
    const value = this.#store.get(MANIFEST + bundleId);
    return value === undefined ? undefined : canonicalCopy(value);
  }

  /** The bundle as the guest runtime evaluates it; pieces are re-verified on the way. */
  loadVatBundle(cap: Bundlecap): VatBundle {
    const record = caps.get(cap as object);
    if (!record) throw new TypeError(`not a bundlecap: ${describeCap(cap)}; get one from bundles.install(manifest)`);
    if (record.issuer !== this) throw new TypeError(`bundlecap for ${record.bundleId} was issued by another host's module store`);
    return manifestToVatBundle(record.manifest, (hash) => this.getPiece(hash));
  }

  /**
   * Marks `holder` as using the bundle, keeping its pieces from collect().
   * Holding twice is holding once. `commit: false` leaves the write in the
   * store's current crank (for callers inside one).
   */
  hold(bundle: string | Bundlecap, holder: string, options: { commit?: boolean } = {}): void {
    const bundleId = this.#idOf(bundle, 'hold()');
    checkHolder(holder, 'hold()');
    if (!this.#store.has(MANIFEST + bundleId)) throw new Error(`cannot hold bundle ${bundleId}: it is not installed here`);
    const key = `${HOLD}${bundleId}.${holder}`;
    if (this.#store.has(key)) return;
    if (options.commit === false) this.#store.set(key, 1);
    else this.#store.atomically(() => this.#store.set(key, 1));
  }

  release(bundle: string | Bundlecap, holder: string, options: { commit?: boolean } = {}): void {
    const bundleId = this.#idOf(bundle, 'release()');
    checkHolder(holder, 'release()');
    const key = `${HOLD}${bundleId}.${holder}`;
    if (!this.#store.has(key)) throw new Error(`${JSON.stringify(holder)} does not hold bundle ${bundleId}`);
    if (options.commit === false) this.#store.delete(key);
    else this.#store.atomically(() => this.#store.delete(key));
  }

  /** Who holds the bundle, sorted. */
  holders(bundle: string | Bundlecap): string[] {
    const prefix = `${HOLD}${this.#idOf(bundle, 'holders()')}.`;
    return [...this.#keys(prefix)].map((key) => key.slice(prefix.length));
  }

  /**
   * Deletes every manifest no one holds and every piece no held manifest
   * uses (including pieces uploaded for a bundle not yet installed).
   * Returns the deleted piece hashes, sorted.
   */
  collect(): string[] {
    const held = new Set<string>();
    for (const key of this.#keys(HOLD)) held.add(key.slice(HOLD.length, HOLD.length + 64));
    const live = new Set<string>();
    const doomedManifests: string[] = [];
    for (const key of this.#keys(MANIFEST)) {
      const bundleId = key.slice(MANIFEST.length);
      if (!held.has(bundleId)) {
        doomedManifests.push(key);
        continue;
      }
      const manifest = this.manifest(bundleId)!;
      for (const record of Object.values(manifest.modules)) live.add(record.piece);
    }
    const deleted: string[] = [];
    for (const key of this.#keys(PIECE)) {
      const hash = key.slice(PIECE.length);
      if (!live.has(hash)) deleted.push(hash);
    }
    this.#store.atomically(() => {
      for (const key of doomedManifests) this.#store.delete(key);
      for (const hash of deleted) this.#store.delete(PIECE + hash);
    });
    for (const key of doomedManifests) this.#caps.delete(key.slice(MANIFEST.length));
    return deleted.sort();
  }

  /** Number of pieces stored (for tools and tests). */
  pieceCount(): number {
    let n = 0;
    for (const _ of this.#keys(PIECE)) n++;
    return n;
  }

  *#keys(prefix: string): Generator<string> {
    for (let key = this.#store.getNextKey(prefix); key !== undefined; key = this.#store.getNextKey(prefix, key)) yield key;
  }

  #idOf(bundle: string | Bundlecap, what: string): string {
    if (typeof bundle === 'string') return checkBundleId(bundle, what);
    return bundlecapInfo(bundle).bundleId;
  }

  #cap(bundleId: string, manifest: Manifest): Bundlecap {
    let cap = this.#caps.get(bundleId);
    if (!cap) {
      cap = Object.freeze({ bundleId, toString: () => `[bundlecap ${bundleId}]` });
      caps.set(cap, Object.freeze({ bundleId, manifest, issuer: this }));
      this.#caps.set(bundleId, cap);
    }
    return cap;
  }
}
