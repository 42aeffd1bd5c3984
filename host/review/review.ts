// What a voter needs to judge a proposed bundle: every module with its hash,
// size and the voter's own name for that hash, whether the running version
// already has that exact code, and a diff where a module changed.
import path from 'node:path';
import { manifestBundleId, sha256Hex, validateManifest, type Manifest } from '../bundles/manifest.js';
import { diffLines, formatUnifiedDiff, type DiffLine } from './diff.js';
import type { ReviewInstance, ReviewPreflight, UpgradeSummary } from './upgrade-summary.js';

/** What a review against a running instance adds (made by host.reviewContext). */
export interface ReviewContext {
  readonly instance: ReviewInstance;
  readonly summary?: UpgradeSummary;
  readonly preflight?: ReviewPreflight;
}

/** Piece bytes by hash: a Map (a SourceBundle's pieces) or a lookup (a module store). */
export type PieceSource = ReadonlyMap<string, Uint8Array> | ((hash: string) => Uint8Array | undefined);

export interface BundleForReview {
  readonly manifest: Manifest | unknown;
  readonly pieces: PieceSource;
}

export interface ReviewOptions {
  /** the running version to compare against */
  readonly against?: BundleForReview;
  /** the voter's names for piece hashes, e.g. `mathStuff v4 (audited)` */
  readonly petnames?: Readonly<Record<string, string>>;
  /** unchanged lines around each change in diffs (default 3) */
  readonly context?: number;
  /** when `against` is a running instance: which, the upgrade summary and pre-flight results */
  readonly upgrade?: ReviewContext;
}

/**
 * known: a module of the same name with the same bytes (same hash) and the
 * same import map is in the compared bundle;
 * changed: a module of that name (or the same path relative to the entry, or
 * the same package file at another version) has other bytes or other imports
 * there, or the same bytes are there under another name (a name's extension
 * decides how the bytes compile, so a rename is a change, issue 13);
 * novel: neither.
 */
export type ModuleStatus = 'known' | 'changed' | 'novel';

export interface ReviewedPiece {
  readonly name: string;
  readonly hash: string;
  readonly size: number;
  readonly petname?: string;
}

export interface ReviewModule extends ReviewedPiece {
  readonly status: ModuleStatus;
  readonly entry: boolean;
  readonly exits: readonly string[];
  /** the module's source as its author wrote it, if its piece was available */
  readonly source?: string;
  /** for `changed`: the module it replaces */
  readonly previous?: ReviewedPiece;
  /** for `changed`: every line of both versions, marked; absent if a piece was unavailable */
  readonly diff?: readonly DiffLine[];
  /** for `changed`: a unified diff of the two sources */
  readonly unifiedDiff?: string;
  /** for `changed`: imports whose target module differs (from/to absent where the specifier is new/gone), by specifier */
  readonly importChanges?: readonly ImportChange[];
}

export interface ImportChange {
  readonly specifier: string;
  readonly from?: string;
  readonly to?: string;
}

export interface ReviewExit {
  readonly specifier: string;
  /** known: the compared bundle uses this exit too */
  readonly status: 'known' | 'novel';
  readonly modules: readonly string[];
}

export interface Review {
  readonly bundleId: string;
  readonly entry: string;
  readonly against?: { readonly bundleId: string; readonly entry: string };
  /** the entry module's name changed from the compared bundle's (`from` -> this bundle's entry) */
  readonly entryChange?: { readonly from: string; readonly to: string };
  /** entry first, then by name */
  readonly modules: readonly ReviewModule[];
  /** modules of the compared bundle whose code is gone and that nothing replaced */
  readonly removed: readonly ReviewedPiece[];
  readonly exits: readonly ReviewExit[];
  /** exits the compared bundle used that this one does not */
  readonly removedExits: readonly string[];
  readonly summary: { readonly known: number; readonly changed: number; readonly novel: number; readonly removed: number };
  readonly upgrade?: ReviewContext;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function pieceText(pieces: PieceSource, hash: string, what: string): string | undefined {
  const bytes = typeof pieces === 'function' ? pieces(hash) : pieces.get(hash);
  if (bytes === undefined) return undefined;
  // The voter must read the very bytes the hash names, or the review means nothing.
  if (sha256Hex(bytes) !== hash) throw new Error(`${what}: piece ${hash} does not match its bytes (their sha256 is ${sha256Hex(bytes)})`);
  try {
    return decoder.decode(bytes);
  } catch {
    throw new Error(`${what}: piece ${hash} is not valid UTF-8`);
  }
}

const PACKAGE_NAME = /^((?:@[^/@]+\/)?[^/@]+)@[^/]+\/(.+)$/;

/** How a module is recognised across versions when its name changed: package file without version, or path relative to the entry. */
function matchKey(name: string, entry: string): string {
  const pkg = PACKAGE_NAME.exec(name);
  if (pkg) return `pkg:${pkg[1]}/${pkg[2]}`;
  return `local:${path.posix.relative(path.posix.dirname(entry), name)}`;
}

export function reviewBundle(proposed: BundleForReview, options: ReviewOptions = {}): Review {
  const manifest = validateManifest(proposed?.manifest);
  const petnames = options.petnames ?? {};
  const petname = (hash: string) => (Object.prototype.hasOwnProperty.call(petnames, hash) ? petnames[hash] : undefined);
  const piece = (name: string, hash: string, size: number): ReviewedPiece => {
    const p = petname(hash);
    return p === undefined ? { name, hash, size } : { name, hash, size, petname: p };
  };

  const against = options.against ? validateManifest(options.against.manifest) : undefined;
  const oldByHash = new Map<string, string[]>();
  const oldByKey = new Map<string, string[]>();
  if (against) {
    for (const [name, record] of Object.entries(against.modules)) {
      oldByHash.set(record.piece, [...(oldByHash.get(record.piece) ?? []), name]);
      const key = matchKey(name, against.entry);
      oldByKey.set(key, [...(oldByKey.get(key) ?? []), name]);
    }
  }

  const names = Object.keys(manifest.modules).sort((a, b) => (a === manifest.entry ? -1 : b === manifest.entry ? 1 : a < b ? -1 : a > b ? 1 : 0));
  const newHashes = new Set(Object.values(manifest.modules).map((m) => m.piece));
  const has = (record: object, key: string) => Object.prototype.hasOwnProperty.call(record, key);
  // Known: the very module the compared bundle has: the same bytes, at the
  // same place (name, or path relative to the entry, extension included) and
  // wired to the same modules.
  const isKnown = (name: string) => {
    if (!against) return false;
    const record = manifest.modules[name];
    const key = matchKey(name, manifest.entry);
    return (oldByHash.get(record.piece) ?? []).some(
      (n) => matchKey(n, against.entry) === key && diffImports(against.modules[n].imports, against.entry, record.imports, manifest.entry).length === 0,
    );
  };
  const replaced = new Set<string>();
  const pending: { name: string; previous?: string }[] = [];
  // Exact names first, so a renamed match cannot take a module its namesake needs.
  for (const name of names) {
    if (!against || isKnown(name)) pending.push({ name });
    else if (has(against.modules, name)) {
      replaced.add(name);
      pending.push({ name, previous: name });
    } else pending.push({ name });
  }
  if (against) {
    // The same bytes under another name: a change (the name decides how they compile and what imports them).
    for (const item of pending) {
      if (item.previous !== undefined || isKnown(item.name)) continue;
      const same = oldByHash.get(manifest.modules[item.name].piece) ?? [];
      const free = same.filter((n) => !replaced.has(n) && !has(manifest.modules, n));
      if (free.length > 0) {
        item.previous = free[0];
        replaced.add(free[0]);
      } else if (same.length > 0) item.previous = same[0]; // a copy of a module that stays
    }
    for (const item of pending) {
      const record = manifest.modules[item.name];
      if (item.previous !== undefined || isKnown(item.name) || oldByHash.has(record.piece)) continue;
      if (manifest.entry === item.name && !replaced.has(against.entry) && !newHashes.has(against.modules[against.entry].piece)) {
        item.previous = against.entry;
        replaced.add(against.entry);
        continue;
      }
      const candidates = (oldByKey.get(matchKey(item.name, manifest.entry)) ?? []).filter(
        (n) => !replaced.has(n) && !newHashes.has(against.modules[n].piece) && !Object.prototype.hasOwnProperty.call(manifest.modules, n),
      );
      if (candidates.length === 1) {
        item.previous = candidates[0];
        replaced.add(candidates[0]);
      }
    }
  }

  const modules: ReviewModule[] = pending.map(({ name, previous }) => {
    const record = manifest.modules[name];
    const source = pieceText(proposed.pieces, record.piece, `module ${name}`);
    const base = { ...piece(name, record.piece, record.size), entry: name === manifest.entry, exits: record.exits, ...(source === undefined ? {} : { source }) };
    if (isKnown(name)) return { ...base, status: 'known' as const };
    if (!against || previous === undefined) return { ...base, status: 'novel' as const };
    const old = against.modules[previous];
    const oldSource = pieceText(options.against!.pieces, old.piece, `compared module ${previous}`);
    const importChanges = diffImports(old.imports, against.entry, record.imports, manifest.entry);
    const changed: ReviewModule = { ...base, status: 'changed', previous: piece(previous, old.piece, old.size), ...(importChanges.length > 0 ? { importChanges } : {}) };
    if (source === undefined || oldSource === undefined) return changed;
    const lines = diffLines(oldSource, source);
    return { ...changed, diff: lines, unifiedDiff: formatUnifiedDiff(lines, `a/${previous}`, `b/${name}`, options.context ?? 3) };
  });

  const removed: ReviewedPiece[] = against
    ? Object.keys(against.modules)
        .sort()
        .filter((n) => !replaced.has(n) && !newHashes.has(against.modules[n].piece) && !has(manifest.modules, n))
        .map((n) => piece(n, against.modules[n].piece, against.modules[n].size))
    : [];

  const oldExits = new Set(against?.exits ?? []);
  const exits: ReviewExit[] = manifest.exits.map((specifier) => ({
    specifier,
    status: oldExits.has(specifier) ? 'known' : 'novel',
    modules: names.filter((n) => manifest.modules[n].exits.includes(specifier)),
  }));
  const count = (status: ModuleStatus) => modules.filter((m) => m.status === status).length;
  return {
    bundleId: manifestBundleId(manifest),
    entry: manifest.entry,
    ...(against ? { against: { bundleId: manifestBundleId(against), entry: against.entry } } : {}),
    ...(against && against.entry !== manifest.entry ? { entryChange: { from: against.entry, to: manifest.entry } } : {}),
    modules,
    removed,
    exits,
    removedExits: [...oldExits].filter((e) => !manifest.exits.includes(e)),
    summary: { known: count('known'), changed: count('changed'), novel: count('novel'), removed: removed.length },
    ...(options.upgrade ? { upgrade: options.upgrade } : {}),
  };
}

/** Specifiers whose target module differs (by place: name or path relative to the entry) between two import maps, sorted by specifier. */
function diffImports(from: Readonly<Record<string, string>>, fromEntry: string, to: Readonly<Record<string, string>>, toEntry: string): ImportChange[] {
  const own = (r: object, k: string) => Object.prototype.hasOwnProperty.call(r, k);
  const specifiers = [...new Set([...Object.keys(from), ...Object.keys(to)])].sort();
  const out: ImportChange[] = [];
  for (const specifier of specifiers) {
    const f = own(from, specifier) ? from[specifier] : undefined;
    const t = own(to, specifier) ? to[specifier] : undefined;
    const same = f !== undefined && t !== undefined && (f === t || matchKey(f, fromEntry) === matchKey(t, toEntry));
    if (!same) out.push({ specifier, ...(f === undefined ? {} : { from: f }), ...(t === undefined ? {} : { to: t }) });
  }
  return out;
}
