// The modules the guest runtime provides to every vat (runtime/builtin-modules.ts)
// and the names each exports. The names are read from the runtime itself at
// build time (build/builtin-modules.json), so this list cannot drift from
// what a vat really gets. A bundle never packs these specifiers; a module that
// imports a name one of them does not export is refused when it is bundled or
// installed, with the list of names that module does provide (issue 12), not
// left to be `undefined` and fail later, elsewhere.
//
// The check is fed by `builtinImportsOf(source)`, the built-in names an ES
// module's source text imports. Pieces are the authors' source (issue 13), so
// it runs on every module of every bundle when it becomes code
// (manifestToVatBundle: install, upgrade, pre-flight), and earlier, when a
// bundle is made (bundleSource) or one module's text is bundled.
import fs from 'node:fs';
import { parse } from 'es-module-lexer/js';
import { BUILTIN_EXPORTS_PATH } from '../engine/build-paths.js';
import { BundleError, type BundleProblem } from './errors.js';

let table: ReadonlyMap<string, readonly string[]> | undefined;

/** specifier -> sorted export names, as built from the runtime. */
export function builtinModuleExports(): ReadonlyMap<string, readonly string[]> {
  if (table === undefined) {
    let raw: string;
    try {
      raw = fs.readFileSync(BUILTIN_EXPORTS_PATH, 'utf8');
    } catch {
      throw new Error(`built-in module list missing at ${BUILTIN_EXPORTS_PATH}; run \`npm run build\``);
    }
    const parsed = JSON.parse(raw) as Record<string, string[]>;
    table = new Map(Object.entries(parsed).map(([k, v]) => [k, Object.freeze([...v])]));
  }
  return table;
}

/** Every specifier the runtime provides, sorted. */
export function vatBuiltinModules(): readonly string[] {
  return [...builtinModuleExports().keys()].sort();
}

export function isVatBuiltin(specifier: string): boolean {
  return builtinModuleExports().has(specifier);
}

/** What one module imports by name from one built-in specifier. */
export interface BuiltinImport {
  readonly specifier: string;
  /** imported names (`default` for a default import), sorted; a namespace import names none */
  readonly names: readonly string[];
}

// `{ a, b as c, type T, "x" as y }` -> the imported (left-hand) names, types dropped.
function namedList(list: string): string[] {
  const names: string[] = [];
  for (const part of list.split(',')) {
    const item = part.trim();
    if (item === '' || /^type\s/.test(item)) continue;
    const imported = item.split(/\s+as\s+/)[0].trim();
    names.push(imported.replace(/^(['"])(.*)\1$/, '$2'));
  }
  return names;
}

/**
 * The names `source` (an ES module or TypeScript file's text) imports from
 * built-in modules: import declarations and `export { … } from` re-exports.
 * Throws the lexer's error for text that is not a module it can read.
 */
export function builtinImportsOf(source: string): BuiltinImport[] {
  const [imports, exports] = parse(source);
  const bySpecifier = new Map<string, Set<string>>();
  const add = (specifier: string, name: string | null) => {
    if (!isVatBuiltin(specifier)) return;
    let set = bySpecifier.get(specifier);
    if (!set) bySpecifier.set(specifier, (set = new Set()));
    if (name !== null) set.add(name);
  };
  for (const imp of imports) {
    if (imp.type !== 'static' || imp.typeOnly) continue;
    const statement = source.slice(imp.importStart, imp.importEnd);
    if (!statement.startsWith('import')) continue; // re-exports come from the export list
    // The clause is what stands between `import` and `from '<specifier>'`.
    const clause = statement
      .slice('import'.length, imp.start - imp.importStart - 1)
      .replace(/\/\*[\s\S]*?\*\//g, ' ')
      .replace(/\/\/[^\n]*/g, ' ')
      .replace(/\bfrom\s*$/, '')
      .trim();
    add(imp.specifier, null);
    if (clause === '') continue;
    const braces = /\{([\s\S]*)\}/.exec(clause);
    if (braces) for (const name of namedList(braces[1])) add(imp.specifier, name);
    const head = clause.replace(/\{[\s\S]*\}/, '').split(',')[0].trim();
    if (head !== '' && !head.startsWith('*')) add(imp.specifier, 'default');
  }
  for (const exp of exports) {
    if (exp.type === 'reexport' && !exp.typeOnly && exp.importName !== null) add(exp.from, exp.importName);
  }
  return [...bySpecifier].sort(([a], [b]) => (a < b ? -1 : 1)).map(([specifier, names]) => Object.freeze({ specifier, names: Object.freeze([...names].sort()) }));
}

/** One built-in specifier from which a module imports names it does not export. */
export interface MissingBuiltinImport {
  readonly specifier: string;
  readonly missing: readonly string[];
  /** every name the built-in module does export, sorted */
  readonly provided: readonly string[];
}

export function missingBuiltinImports(imports: readonly BuiltinImport[]): MissingBuiltinImport[] {
  const out: MissingBuiltinImport[] = [];
  for (const { specifier, names } of imports) {
    const provided = builtinModuleExports().get(specifier);
    if (!provided) continue;
    const missing = names.filter((n) => !provided.includes(n));
    if (missing.length > 0) out.push(Object.freeze({ specifier, missing: Object.freeze(missing), provided }));
  }
  return out;
}

/**
 * The problems (one per built-in specifier) of module `name` (its ES or
 * TypeScript `source`): names it imports that the built-in module does not
 * export. `chain` is the import chain to the module (default: just it).
 */
export function builtinImportProblems(name: string, source: string, chain: readonly string[] = [name]): BundleProblem[] {
  let imports: BuiltinImport[];
  try {
    imports = builtinImportsOf(source);
  } catch (err) {
    const message = `module ${name}: its imports cannot be read (${(err as Error).message})`;
    return [Object.freeze({ specifier: name, chain: Object.freeze([...chain]), reason: message, message })];
  }
  return missingBuiltinImports(imports).map((m) => {
    const message = describeMissingImport(name, m);
    return Object.freeze({ specifier: m.specifier, chain: Object.freeze([...chain, m.specifier]), reason: message, message });
  });
}

// Built-in names never change within a process: a piece checked once is checked.
const checkedPieces = new Set<string>();
const MAX_CHECKED = 4096;

/**
 * Throws a BundleError (named for `entry`) listing every module whose source
 * imports a name a built-in module does not export. `modules` gives each
 * module's name, source and, when it is a stored piece, its hash (for the cache).
 * JSON modules import nothing.
 */
export function assertBuiltinImports(entry: string, modules: Iterable<{ name: string; source: string; piece?: string }>): void {
  const problems: BundleProblem[] = [];
  for (const { name, source, piece } of modules) {
    if (name.endsWith('.json') || (piece !== undefined && checkedPieces.has(piece))) continue;
    const found = builtinImportProblems(name, source);
    problems.push(...found);
    if (found.length === 0 && piece !== undefined) {
      if (checkedPieces.size >= MAX_CHECKED) checkedPieces.clear();
      checkedPieces.add(piece);
    }
  }
  if (problems.length > 0) throw new BundleError(entry, problems);
}

/** The sentence for one refusal: the module, the names asked for, and what the built-in module offers. */
export function describeMissingImport(moduleName: string, m: MissingBuiltinImport): string {
  const asked = m.missing.map((n) => (n === 'default' ? 'a default export' : JSON.stringify(n))).join(', ');
  return `module ${moduleName} imports ${asked} from built-in module "${m.specifier}", which does not export ${m.missing.length === 1 ? 'it' : 'them'}; "${m.specifier}" exports: ${m.provided.join(', ')}`;
}
