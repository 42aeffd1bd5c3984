// The content-addressed form of a bundle: a small manifest naming each module's
// piece (sha256 of the module file as its author wrote it) and import map. The manifest is what
// a proposer publishes and a voter reviews; pieces travel separately, once each.
import crypto from 'node:crypto';
import type { VatBundle } from '../kernel/kernel.js';
import { canonicalJson } from './vat-bundle.js';
import { SourceMissingError } from './errors.js';
import { assertBuiltinImports, isVatBuiltin } from './builtin-modules.js';
import { compilePiece } from './compile-piece.js';

export const MANIFEST_FORMAT = 'quickvat-manifest-1';

export { isVatBuiltin, vatBuiltinModules } from './builtin-modules.js';

/** `host:*` specifiers are named exits: the hosting environment supplies them at load time. */
export function isNamedExit(specifier: string): boolean {
  return specifier.startsWith('host:') && specifier.length > 'host:'.length;
}

export interface ManifestModule {
  /** sha256 (lowercase hex) of the module file's bytes, as written (= `sha256sum` of the file) */
  readonly piece: string;
  /** specifier as written in the source -> module name in this manifest */
  readonly imports: Readonly<Record<string, string>>;
  /** `host:*` specifiers this module imports, sorted */
  readonly exits: readonly string[];
  /** byte length of the piece */
  readonly size: number;
}

export interface Manifest {
  readonly format: typeof MANIFEST_FORMAT;
  readonly entry: string;
  readonly modules: Readonly<Record<string, ManifestModule>>;
  /** union of every module's exits, sorted */
  readonly exits: readonly string[];
}

export interface SourceBundle {
  readonly manifest: Manifest;
  /** piece hash -> the module file's bytes (UTF-8 source as the author wrote it) */
  readonly pieces: Map<string, Uint8Array>;
  /** sha256 of canonicalJson(manifest) */
  readonly bundleId: string;
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

export function manifestBundleId(manifest: Manifest): string {
  return sha256Hex(canonicalJson(manifest));
}

const HASH = /^[0-9a-f]{64}$/;

export function isPieceHash(value: unknown): value is string {
  return typeof value === 'string' && HASH.test(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return quoted(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function fail(field: string, problem: string): never {
  throw new TypeError(`invalid manifest: ${field ? `${field} ` : ''}${problem}`);
}

function checkKeys(value: Record<string, unknown>, field: string, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) fail(`${field}${field ? '.' : ''}${key}`, `is not a manifest field (expected only ${allowed.join(', ')})`);
  }
  for (const key of allowed) {
    if (!Object.prototype.hasOwnProperty.call(value, key)) fail(`${field}${field ? '.' : ''}${key}`, 'is missing');
  }
}

// A name carrying a machine's directory layout would make the bundleId depend
// on where the proposer happened to keep the files.
function checkModuleName(name: string, field: string): void {
  if (name === '') fail(field, 'is an empty module name');
  checkPrintable(name, field, 'module name');
  if (name.startsWith('/') || /^[A-Za-z]:[\\/]/.test(name) || name.startsWith('\\\\')) {
    fail(field, `is an absolute path (${describe(name)}); module names must be machine-independent`);
  }
}

// Control, line-terminator, zero-width and bidi characters in a name would
// let it redraw a reviewer's terminal or look like another name (issue 13).
const CONTROL = /[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;

/** JSON-quoted with control characters escaped, for naming a field in an error message. */
function quoted(text: string): string {
  return JSON.stringify(text).replace(new RegExp(CONTROL.source, 'g'), (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function checkPrintable(text: string, field: string, what: string): void {
  const bad = CONTROL.exec(text);
  if (bad) fail(field, `is a ${what} containing the control character U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}; names must be printable`);
}

function checkExitList(value: unknown, field: string): string[] {
  if (!Array.isArray(value)) fail(field, `must be an array of host:* specifiers, got ${describe(value)}`);
  value.forEach((exit, i) => {
    if (typeof exit !== 'string' || !isNamedExit(exit)) fail(`${field}[${i}]`, `must be a host:* specifier, got ${describe(exit)}`);
    if (i > 0 && !(value[i - 1] < exit)) fail(field, 'must be sorted and free of duplicates');
  });
  return value as string[];
}

/**
 * Checks that `value` is a well-formed manifest and returns it typed. Every
 * import must name a module of the manifest, the top-level exits must be the
 * union of the modules' exits, and nothing else may be present, so two
 * manifests describing the same graph are byte-identical once canonicalized.
 */
export function validateManifest(value: unknown): Manifest {
  if (!isPlainRecord(value)) fail('', `must be a plain object, got ${describe(value)}`);
  checkKeys(value, '', ['format', 'entry', 'modules', 'exits']);
  if (value.format !== MANIFEST_FORMAT) fail('format', `must be ${JSON.stringify(MANIFEST_FORMAT)}, got ${describe(value.format)}`);
  const { modules } = value;
  if (!isPlainRecord(modules)) fail('modules', `must be an object of module records, got ${describe(modules)}`);
  const names = Object.keys(modules);
  if (names.length === 0) fail('modules', 'is empty');
  if (typeof value.entry !== 'string') fail('entry', `must be a module name, got ${describe(value.entry)}`);
  if (!Object.prototype.hasOwnProperty.call(modules, value.entry)) fail('entry', `names ${describe(value.entry)}, which is not in modules`);
  const union = new Set<string>();
  for (const name of names) {
    const field = `modules[${quoted(name)}]`;
    checkModuleName(name, field);
    const record = modules[name];
    if (!isPlainRecord(record)) fail(field, `must be an object, got ${describe(record)}`);
    checkKeys(record, field, ['piece', 'imports', 'exits', 'size']);
    if (!isPieceHash(record.piece)) fail(`${field}.piece`, `must be a sha256 as 64 lowercase hex digits, got ${describe(record.piece)}`);
    if (typeof record.size !== 'number' || !Number.isSafeInteger(record.size) || record.size < 0) {
      fail(`${field}.size`, `must be a non-negative integer byte count, got ${describe(record.size)}`);
    }
    const { imports } = record;
    if (!isPlainRecord(imports)) fail(`${field}.imports`, `must be an object mapping specifiers to module names, got ${describe(imports)}`);
    for (const [specifier, target] of Object.entries(imports)) {
      const at = `${field}.imports[${quoted(specifier)}]`;
      if (specifier === '') fail(at, 'has an empty specifier');
      checkPrintable(specifier, at, 'specifier');
      if (isVatBuiltin(specifier)) fail(at, 'maps a built-in module, which the runtime provides and a bundle must not');
      if (isNamedExit(specifier)) fail(at, 'maps a named exit, which belongs in exits, not imports');
      if (typeof target !== 'string') fail(at, `must be a module name, got ${describe(target)}`);
      if (!Object.prototype.hasOwnProperty.call(modules, target)) fail(at, `names ${describe(target)}, which is not in modules`);
    }
    for (const exit of checkExitList(record.exits, `${field}.exits`)) union.add(exit);
  }
  const exits = checkExitList(value.exits, 'exits');
  const expected = [...union].sort();
  if (exits.length !== expected.length || exits.some((e, i) => e !== expected[i])) {
    fail('exits', `must list exactly the modules' exits ${JSON.stringify(expected)}, got ${JSON.stringify(exits)}`);
  }
  return value as unknown as Manifest;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * The VatBundle the guest runtime evaluates: each module's piece, compiled to
 * the loader's CommonJS shape (compile-piece.ts, cached by piece hash). Pieces
 * are re-hashed here: this is where stored or received bytes become code, so
 * a corrupted or substituted piece must stop here. Throws SourceMissingError
 * for absent pieces, PieceCompileError for a module that does not compile, and
 * BundleError for a module importing a name a built-in module does not export.
 */
export function manifestToVatBundle(manifest: Manifest, getPiece: (hash: string) => Uint8Array | undefined): VatBundle {
  validateManifest(manifest);
  const names = Object.keys(manifest.modules).sort();
  const missing = new Set<string>();
  // Collected as entries: a module named "__proto__" must stay an own property.
  const modules: [string, { source: string; imports: Record<string, string> }][] = [];
  const authored: { name: string; source: string; piece: string }[] = [];
  for (const name of names) {
    const record = manifest.modules[name];
    const bytes = getPiece(record.piece);
    if (bytes === undefined) {
      missing.add(record.piece);
      continue;
    }
    if (bytes.byteLength !== record.size || sha256Hex(bytes) !== record.piece) {
      throw new Error(`piece ${record.piece} of module ${JSON.stringify(name)} does not match its hash or size (${bytes.byteLength} bytes, manifest says ${record.size})`);
    }
    let source: string;
    try {
      source = decoder.decode(bytes);
    } catch {
      throw new Error(`piece ${record.piece} of module ${JSON.stringify(name)} is not valid UTF-8`);
    }
    authored.push({ name, source, piece: record.piece });
    modules.push([name, { source: compilePiece(name, record.piece, source), imports: Object.fromEntries(Object.entries(record.imports)) }]);
  }
  if (missing.size > 0) throw new SourceMissingError([...missing].sort());
  // A name a built-in module does not export would otherwise be `undefined` at run time (issue 12).
  assertBuiltinImports(manifest.entry, authored);
  return { entry: manifest.entry, modules: Object.fromEntries(modules) };
}
