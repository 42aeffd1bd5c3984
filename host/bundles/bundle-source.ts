// Turns an ES module graph on disk into a content-addressed SourceBundle: one
// piece per module (the module file as the author wrote it, byte for byte)
// plus a manifest of names, hashes and import maps.
//
// esbuild does the resolution, so packages resolve as they would for a
// bundler (exports maps, main fields, .js -> .ts), but its output is thrown
// away: the graph is read off the resolve calls. What the guest evaluates is
// made from each piece later (compile-piece.ts); it is compiled here once so
// that a module that cannot be compiled fails the bundle, naming it.
//
// Only files inside the package root (or inside an installed package) may
// become pieces: an absolute path, a file: URL or a ../ that climbs out of
// the root is refused, so a bundle cannot carry arbitrary files of the
// proposer's machine.
import fs from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import esbuild from 'esbuild';
import { builtinImportProblems } from './builtin-modules.js';
import { BundleError, type BundleProblem } from './errors.js';
import { LOADER_BY_EXTENSION, PieceCompileError, compilePiece } from './compile-piece.js';
import {
  MANIFEST_FORMAT,
  isNamedExit,
  isVatBuiltin,
  manifestBundleId,
  sha256Hex,
  type Manifest,
  type ManifestModule,
  type SourceBundle,
} from './manifest.js';

export {
  MANIFEST_FORMAT,
  isNamedExit,
  isVatBuiltin,
  vatBuiltinModules,
  manifestBundleId,
  manifestToVatBundle,
  validateManifest,
  type Manifest,
  type ManifestModule,
  type SourceBundle,
} from './manifest.js';
export { BundleError, type BundleProblem } from './errors.js';

export interface BundleSourceOptions {
  /**
   * The package root: local module names are relative to it, and no local
   * module may live outside it. Default: the nearest directory above the
   * entry with a package.json, else the entry's directory.
   */
  readonly root?: string;
}

const LOADERS: Readonly<Record<string, esbuild.Loader>> = LOADER_BY_EXTENSION;
const ENTRY_EXTENSIONS = ['.js', '.mjs', '.ts', '.mts'];

type Edge = { kind: 'file'; file: string } | { kind: 'builtin' } | { kind: 'exit' } | { kind: 'bad'; reason: string };

/** Marks our own nested resolve calls so the plugin lets esbuild's resolver answer them. */
const INNER = Symbol('quickvat-inner-resolve');

interface PackageInfo {
  readonly dir: string;
  readonly name?: string;
  readonly version?: string;
  /** what shows the package carries native code, if it does */
  readonly native?: string;
}

/**
 * Bundles the module graph rooted at `entryPath`. Built-in vat modules stay
 * as bare imports, `host:*` named exits are recorded, never packed; anything
 * that cannot exist inside a vat fails the whole bundle with a BundleError
 * naming the import chain.
 */
export async function bundleSource(entryPath: string, options: BundleSourceOptions = {}): Promise<SourceBundle> {
  if (typeof entryPath !== 'string' || entryPath === '') throw new TypeError(`bundleSource needs an entry file path, got ${String(entryPath)}`);
  const ext = path.extname(entryPath);
  if (!ENTRY_EXTENSIONS.includes(ext)) {
    throw new BundleError(entryPath, [problem(entryPath, [], `the entry must be a ${ENTRY_EXTENSIONS.join('/')} file`, `the entry must be a ${ENTRY_EXTENSIONS.join('/')} file, not ${ext || 'an extensionless file'}`)]);
  }
  let entry: string;
  try {
    entry = fs.realpathSync(path.resolve(entryPath));
    if (!fs.statSync(entry).isFile()) throw new Error('not a file');
  } catch {
    throw new BundleError(entryPath, [problem(entryPath, [], 'no such file', 'no such file')]);
  }

  const root = packageRoot(entry, options.root);
  if (!isInside(root, entry)) {
    throw new BundleError(entryPath, [problem(entryPath, [], `outside the package root ${root}`, `the entry is outside the package root ${root}`)]);
  }
  const edges = new Map<string, Map<string, Edge>>();
  const original = new Map<string, Uint8Array>();
  const loadErrors = new Map<string, string>();
  // Source of each JS/TS module, for the built-in import check (issue 12).
  const authored = new Map<string, string>();
  const packages = new Map<string, PackageInfo | undefined>();
  const edgesOf = (file: string) => {
    let map = edges.get(file);
    if (!map) edges.set(file, (map = new Map()));
    return map;
  };

  const plugin: esbuild.Plugin = {
    name: 'quickvat-pieces',
    setup(build) {
      build.onResolve({ filter: /.*/ }, async (args) => {
        if (args.pluginData === INNER || args.kind === 'entry-point') return undefined;
        const specifier = args.path;
        const record = (edge: Edge) => edgesOf(args.importer).set(specifier, edge);
        const refuse = (reason: string) => {
          record({ kind: 'bad', reason });
          return { path: specifier, external: true };
        };
        if (isVatBuiltin(specifier)) {
          record({ kind: 'builtin' });
          return { path: specifier, external: true };
        }
        if (isNamedExit(specifier)) {
          record({ kind: 'exit' });
          return { path: specifier, external: true };
        }
        if (specifier.startsWith('host:')) return refuse('a named exit without a name');
        if (specifier.startsWith('node:') || isBuiltin(specifier)) return refuse('a Node built-in that does not exist inside a vat');
        if (/^file:/i.test(specifier)) return refuse('a file: URL; modules must be named relative to the package root');
        if (path.isAbsolute(specifier) || /^[A-Za-z]:[\\/]/.test(specifier)) return refuse('an absolute path; modules must be named relative to the package root');
        // Resolving as an import first gives a CommonJS require of a package
        // the same file an import of it gets.
        const resolve = (kind: esbuild.ImportKind) =>
          build.resolve(specifier, { kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: INNER, with: args.with });
        let resolved = await resolve('import-statement');
        if (resolved.errors.length > 0 && args.kind !== 'import-statement') resolved = await resolve(args.kind);
        if (resolved.errors.length > 0 || !resolved.path || resolved.external || resolved.namespace !== 'file') {
          return refuse('which cannot be resolved');
        }
        const file = resolved.path;
        const fileExt = path.extname(file);
        if (fileExt === '.node') return refuse('a native addon (.node file), which cannot run inside a vat');
        const pkg = packageOf(file, packages);
        if (pkg?.native) return refuse(`a package containing native code (${pkg.native}), which cannot run inside a vat`);
        if (!Object.prototype.hasOwnProperty.call(LOADERS, fileExt)) {
          return refuse(`a ${fileExt || 'extensionless'} file, which cannot be a module inside a vat`);
        }
        // A node_modules file is exempt from the root only when it was reached as
        // a package: by a bare specifier, or by a relative one from inside that
        // same package. A relative path from local code (../../x/node_modules/..)
        // names a file, not a package, and may not escape the root (issue 13).
        const relative = specifier === '.' || specifier === '..' || specifier.startsWith('./') || specifier.startsWith('../');
        const importerPkg = relative ? packageOf(args.importer, packages) : undefined;
        const asPackage = pkg !== undefined && (!relative || (importerPkg !== undefined && importerPkg.dir === pkg.dir));
        if (!asPackage && !isInside(root, file)) return refuse(`outside the package root ${root}`);
        record({ kind: 'file', file });
        return { path: file };
      });

      build.onLoad({ filter: /.*/, namespace: 'file' }, async (args) => {
        const file = args.path;
        const loader = LOADERS[path.extname(file)] ?? 'js';
        edgesOf(file);
        try {
          const bytes = new Uint8Array(await fs.promises.readFile(file));
          const source = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
          // What the guest will evaluate must exist: a module that cannot be
          // compiled fails here, named, rather than at install.
          compilePiece(path.basename(file), sha256Hex(bytes), source);
          original.set(file, bytes);
          if (loader !== 'json') authored.set(file, source);
          return { contents: source, loader, resolveDir: path.dirname(file) };
        } catch (err) {
          loadErrors.set(file, err instanceof PieceCompileError ? err.reason : err instanceof TypeError ? 'it is not valid UTF-8 text' : (err as Error).message);
          return { contents: '', loader: 'js', resolveDir: path.dirname(file) };
        }
      });
    },
  };

  try {
    await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      platform: 'neutral',
      format: 'esm',
      mainFields: ['module', 'main'],
      // A tsconfig.json near the files could otherwise steer resolution
      // differently on machines with different surroundings.
      tsconfigRaw: '{}',
      logLevel: 'silent',
      plugins: [plugin],
    });
  } catch (err) {
    // Everything we refuse is marked external, so a failure here is esbuild
    // rejecting the graph itself; report its own messages.
    const messages = ((err as esbuild.BuildFailure).errors ?? []).map((m) => m.text);
    if (loadErrors.size === 0 && ![...edges.values()].some((m) => [...m.values()].some((e) => e.kind === 'bad'))) {
      throw new BundleError(entryPath, [problem(entryPath, [], 'esbuild failed', messages.join('; ') || String(err))]);
    }
  }

  const files = [...new Set([entry, ...edges.keys(), ...original.keys(), ...loadErrors.keys()])];
  const names = nameModules(files, root, packages);
  const order = walkOrder(entry, edges);
  const chainTo = (file: string) => {
    const chain: string[] = [];
    for (let at: string | undefined = file; at !== undefined; at = order.parent.get(at)) chain.unshift(names.get(at)!);
    return chain;
  };

  const problems: BundleProblem[] = [];
  for (const file of order.files) {
    const chain = chainTo(file);
    const failure = loadErrors.get(file);
    if (failure !== undefined) {
      const name = names.get(file)!;
      problems.push(problem(name, chain, failure, `module ${name} (${chain.join(' -> ')}) cannot be transformed: ${failure}`));
    }
    const source = authored.get(file);
    if (source !== undefined) problems.push(...builtinImportProblems(names.get(file)!, source, chain));
    for (const [specifier, edge] of sortedEntries(edges.get(file))) {
      if (edge.kind !== 'bad') continue;
      const reason = edge.reason === 'which cannot be resolved' ? `which cannot be resolved from ${names.get(file)}` : edge.reason;
      problems.push(problem(specifier, [...chain, specifier], reason, `it imports ${JSON.stringify(specifier)} (${[...chain, specifier].join(' -> ')}), ${reason}`));
    }
  }
  if (problems.length > 0) throw new BundleError(entryPath, problems);

  // Built from entries so that even a specifier or module named "__proto__" stays an own property.
  const moduleEntries: [string, ManifestModule][] = [];
  const pieces = new Map<string, Uint8Array>();
  for (const file of [...order.files].sort((a, b) => compare(names.get(a)!, names.get(b)!))) {
    const bytes = original.get(file);
    if (!bytes) throw new Error(`internal: module ${names.get(file)} was resolved but never loaded`);
    const hash = sha256Hex(bytes);
    pieces.set(hash, bytes);
    const imports: [string, string][] = [];
    const exits: string[] = [];
    for (const [specifier, edge] of sortedEntries(edges.get(file))) {
      if (edge.kind === 'file') imports.push([specifier, names.get(edge.file)!]);
      else if (edge.kind === 'exit') exits.push(specifier);
    }
    moduleEntries.push([names.get(file)!, Object.freeze({ piece: hash, imports: Object.freeze(Object.fromEntries(imports)), exits: Object.freeze(exits), size: bytes.byteLength })]);
  }
  const modules = Object.fromEntries(moduleEntries);
  const allExits = [...new Set(Object.values(modules).flatMap((m) => m.exits))].sort(compare);
  const manifest: Manifest = Object.freeze({ format: MANIFEST_FORMAT, entry: names.get(entry)!, modules: Object.freeze(modules), exits: Object.freeze(allExits) });
  const sortedPieces = new Map([...pieces].sort(([a], [b]) => compare(a, b)));
  return Object.freeze({ manifest, pieces: sortedPieces, bundleId: manifestBundleId(manifest) });
}

function problem(specifier: string, chain: string[], reason: string, message: string): BundleProblem {
  return Object.freeze({ specifier, chain: Object.freeze(chain), reason, message });
}

function isInside(root: string, file: string): boolean {
  const rel = path.relative(root, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

function packageRoot(entry: string, rootOption: string | undefined): string {
  return rootOption !== undefined ? fs.realpathSync(path.resolve(rootOption)) : (nearestPackageDir(path.dirname(entry)) ?? path.dirname(entry));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortedEntries(map: Map<string, Edge> | undefined): [string, Edge][] {
  return map ? [...map].sort(([a], [b]) => compare(a, b)) : [];
}

/** Breadth-first from the entry, specifiers in sorted order, so chains are shortest and deterministic. */
function walkOrder(entry: string, edges: Map<string, Map<string, Edge>>): { files: string[]; parent: Map<string, string> } {
  const files = [entry];
  const parent = new Map<string, string>();
  const seen = new Set(files);
  for (let i = 0; i < files.length; i++) {
    for (const [, edge] of sortedEntries(edges.get(files[i]))) {
      if (edge.kind !== 'file' || seen.has(edge.file)) continue;
      seen.add(edge.file);
      parent.set(edge.file, files[i]);
      files.push(edge.file);
    }
  }
  return { files, parent };
}

function posixRelative(from: string, to: string): string {
  return path.relative(from, to).split(path.sep).join('/');
}

function nearestPackageDir(dir: string): string | undefined {
  for (let at = dir; ; at = path.dirname(at)) {
    if (fs.existsSync(path.join(at, 'package.json'))) return at;
    if (path.dirname(at) === at) return undefined;
  }
}

/** The package a file in node_modules belongs to, or undefined for a local file. */
function packageOf(file: string, cache: Map<string, PackageInfo | undefined>): PackageInfo | undefined {
  const parts = file.split(path.sep);
  const at = parts.lastIndexOf('node_modules');
  if (at < 0 || at + 1 >= parts.length - 1) return undefined;
  const depth = parts[at + 1].startsWith('@') ? at + 3 : at + 2;
  const dir = parts.slice(0, depth).join(path.sep);
  if (cache.has(dir)) return cache.get(dir);
  let info: PackageInfo = { dir };
  try {
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
    info = {
      dir,
      name: typeof json.name === 'string' ? json.name : undefined,
      version: typeof json.version === 'string' ? json.version : undefined,
      native: json.gypfile === true ? '"gypfile": true in package.json' : undefined,
    };
  } catch {
    // No readable package.json: named by its path, still checked for native code.
  }
  if (!info.native && fs.existsSync(path.join(dir, 'binding.gyp'))) info = { ...info, native: 'binding.gyp' };
  if (!info.native) {
    const addon = findAddon(dir, dir);
    if (addon) info = { ...info, native: addon };
  }
  cache.set(dir, info);
  return info;
}

/** The first .node file in a package (nested packages excluded), as a package-relative path. */
function findAddon(pkgDir: string, dir: string): string | undefined {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return undefined;
  }
  entries.sort((a, b) => compare(a.name, b.name));
  for (const entry of entries) {
    if (entry.isFile() && entry.name.endsWith('.node')) return posixRelative(pkgDir, path.join(dir, entry.name));
  }
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name === 'node_modules') continue;
    const found = findAddon(pkgDir, path.join(dir, entry.name));
    if (found) return found;
  }
  return undefined;
}

/**
 * Machine-independent module names: local files relative to the root;
 * package files as `<name>@<version>/<path in package>`, so they do not
 * depend on where a package manager put the package. Two distinct copies that
 * would share such a name (nested installs) are named by their path instead.
 */
function nameModules(files: string[], root: string, packages: Map<string, PackageInfo | undefined>): Map<string, string> {
  const names = new Map<string, string>();
  const byName = new Map<string, string[]>();
  for (const file of files) {
    const pkg = packageOf(file, packages);
    const name = pkg?.name && pkg.version ? `${pkg.name}@${pkg.version}/${posixRelative(pkg.dir, file)}` : posixRelative(root, file);
    names.set(file, name);
    byName.set(name, [...(byName.get(name) ?? []), file]);
  }
  for (const sharing of byName.values()) {
    if (sharing.length > 1) for (const file of sharing) names.set(file, posixRelative(root, file));
  }
  const taken = new Map<string, string>();
  for (const [file, name] of names) {
    const other = taken.get(name);
    if (other !== undefined) throw new Error(`cannot name modules ${other} and ${file} apart (both would be ${JSON.stringify(name)})`);
    taken.set(name, file);
  }
  return names;
}
