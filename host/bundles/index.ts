// Content-addressed bundles: bundling a module graph, storing pieces, bundlecaps.
export {
  BundleError,
  MANIFEST_FORMAT,
  bundleSource,
  isNamedExit,
  isVatBuiltin,
  vatBuiltinModules,
  manifestBundleId,
  manifestToVatBundle,
  validateManifest,
  type BundleProblem,
  type BundleSourceOptions,
  type Manifest,
  type ManifestModule,
  type SourceBundle,
} from './bundle-source.js';
export { ModuleStore, PieceHashMismatchError, SourceMissingError, bundlecapInfo, isBundlecap, type Bundlecap } from './module-store.js';
export { bundleFromSource, bundleId, canonicalJson, sourceBundleFromText } from './vat-bundle.js';
export { BUNDLE_FILE_FORMAT, readBundleFile, writeBundleFile } from './bundle-file.js';
export { builtinImportsOf, builtinModuleExports, missingBuiltinImports, type BuiltinImport, type MissingBuiltinImport } from './builtin-modules.js';
