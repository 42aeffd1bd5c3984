// A vat bundle in its simplest form: modules as CommonJS-shaped text with
// their import maps, named by the hash of a canonical encoding.
import crypto from 'node:crypto';
import type { VatBundle } from '../kernel/kernel.js';
import { assertBuiltinImports } from './builtin-modules.js';
import { compileText } from './compile-piece.js';
import { MANIFEST_FORMAT, manifestBundleId, sha256Hex, type Manifest, type SourceBundle } from './manifest.js';

/** Canonical JSON: object keys sorted, so equal bundles hash equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v,
  );
}

export function bundleId(bundle: VatBundle): string {
  return crypto.createHash('sha256').update(canonicalJson(bundle)).digest('hex');
}

/**
 * One ES module (imports limited to built-ins) as a single-module bundle.
 * Throws a BundleError if it imports a name a built-in module does not export.
 */
export function bundleFromSource(source: string, name = 'main.js'): VatBundle {
  const code = compileText(name, source);
  assertBuiltinImports(name, [{ name, source }]);
  return { entry: name, modules: { [name]: { source: code, imports: {} } } };
}

/**
 * The content-addressed form of one ES module given as text (a convenience
 * for tests and tools; files go through bundleSource): the text itself is the
 * piece. Its `host:*` imports are recorded as named exits.
 */
export function sourceBundleFromText(source: string, name = 'main.js'): SourceBundle {
  const code = compileText(name, source);
  const bytes = new TextEncoder().encode(source);
  const piece = sha256Hex(bytes);
  const exits = [...new Set([...code.matchAll(/require\("(host:[^"]+)"\)/g)].map((m) => m[1]))].sort();
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    entry: name,
    modules: { [name]: { piece, imports: {}, exits, size: bytes.length } },
    exits,
  };
  return { manifest, pieces: new Map([[piece, bytes]]), bundleId: manifestBundleId(manifest) };
}
