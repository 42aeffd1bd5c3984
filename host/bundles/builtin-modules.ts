// The modules the guest runtime provides to every vat (runtime/builtin-modules.ts)
// and the names each exports. The names are read from the runtime itself at
// build time (build/builtin-modules.json), so this list cannot drift from
// what a vat really gets. A bundle never packs these specifiers; a module that
// imports a name one of them does not export is refused when it is bundled or
// installed, with the list of names that module does provide (issue 12), not
// left to be `undefined` and fail later, elsewhere.
//
// The check is fed by `builtinImportsOf(source)`, the built-in names an ES
// module's source text imports, so it applies wherever authors' ES source is
// seen (bundleSource, source text given to install/upgrade).
import fs from 'node:fs';
import { parse } from 'es-module-lexer/js';
import { BUILTIN_EXPORTS_PATH } from '../engine/build-paths.js';

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

/** The sentence for one refusal: the module, the names asked for, and what the built-in module offers. */
export function describeMissingImport(moduleName: string, m: MissingBuiltinImport): string {
  const asked = m.missing.map((n) => (n === 'default' ? 'a default export' : JSON.stringify(n))).join(', ');
  return `module ${moduleName} imports ${asked} from built-in module "${m.specifier}", which does not export ${m.missing.length === 1 ? 'it' : 'them'}; "${m.specifier}" exports: ${m.provided.join(', ')}`;
}
