// Evaluates a vat's module graph inside one Compartment, one module per
// piece. A piece is the author's ES module; the host hands the guest its
// CommonJS-shaped compilation (host/bundles/compile-piece.ts, cached by piece
// hash). Specifiers resolve through the piece's own import map, or to a
// built-in module the runtime provides.
export interface ModuleRecord {
  readonly source: string;
  /** specifier as written in the source -> module name in this bundle */
  readonly imports: Readonly<Record<string, string>>;
}

export interface VatBundle {
  readonly entry: string;
  readonly modules: Readonly<Record<string, ModuleRecord>>;
}

export function loadBundle(
  bundle: VatBundle,
  builtins: Readonly<Record<string, unknown>>,
  globals: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  if (!bundle || typeof bundle.entry !== 'string' || !bundle.modules || typeof bundle.modules !== 'object') {
    throw Error('vat bundle must have an entry name and a modules record');
  }
  const compartment = new Compartment({ globals: { ...globals }, __options__: true });
  const instances = new Map<string, { exports: Record<string, unknown> }>();

  const load = (name: string, importer: string): Record<string, unknown> => {
    const existing = instances.get(name);
    if (existing) return existing.exports;
    const record = Object.prototype.hasOwnProperty.call(bundle.modules, name) ? bundle.modules[name] : undefined;
    if (!record) throw Error(`module ${JSON.stringify(name)} (imported by ${importer}) is not in the bundle`);
    const module = { exports: {} as Record<string, unknown> };
    instances.set(name, module);
    const fn = compartment.evaluate(`(function (require, module, exports) {\n${record.source}\n})`);
    const require = (specifier: string) => {
      if (Object.prototype.hasOwnProperty.call(builtins, specifier)) return builtins[specifier];
      const target = record.imports[specifier];
      if (target === undefined) {
        if (specifier.startsWith('host:')) throw Error(`module ${name} imports named exit ${JSON.stringify(specifier)}, which this installation does not grant`);
        throw Error(`module ${name} imports ${JSON.stringify(specifier)}, which its import map does not name`);
      }
      return load(target, name);
    };
    fn(harden(require), module, module.exports);
    return module.exports;
  };
  return load(bundle.entry, '<vat>');
}
