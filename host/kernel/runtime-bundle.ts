// The guest runtime (runtime/main.ts and what it imports: SES, marshal,
// eventual-send) bundled by esbuild into one script for the base image.
import type { Plugin } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD_DIR, BUILTIN_EXPORTS_PATH, RUNTIME_BUNDLE_PATH } from '../engine/build-paths.js';
import { Sandbox } from '../engine/index.js';

export { RUNTIME_BUNDLE_PATH };
const ROOT = path.dirname(BUILD_DIR);

/**
 * The guest runtime as one script. `substitutes` maps a module the runtime
 * imports by a relative path (e.g. './exo.js') to another file to bundle in
 * its place, and `minify: false` keeps the text as written: benchmarks use
 * both to build the runtime as it was before a change.
 *
 * Minified by default because QuickJS keeps every function's source text in
 * the heap: with the Endo libraries bundled, minifying (names kept, so
 * function and class names read as written) takes the base image from 1073
 * to 791 pages of 4 KiB, which every fork restores (issue 12; bench/exo.bench.ts).
 */
export async function bundleRuntime(substitutes: Readonly<Record<string, string>> = {}, options: { minify?: boolean } = {}): Promise<string> {
  const minify = options.minify ?? true;
  // esbuild is loaded only when building, never by a running host.
  const { default: esbuild } = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [path.join(ROOT, 'runtime', 'main.ts')],
    bundle: true,
    format: 'iife',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    conditions: ['import', 'default'],
    target: 'es2022',
    minify,
    keepNames: minify,
    legalComments: 'none',
    write: false,
    logLevel: 'silent',
    plugins: [
      {
        name: 'quickvat-runtime-substitutes',
        setup(build) {
          build.onResolve({ filter: /^\.\// }, (args) =>
            Object.prototype.hasOwnProperty.call(substitutes, args.path) ? { path: substitutes[args.path] } : undefined,
          );
        },
      },
      unpinPresences,
    ],
  });
  return result.outputFiles[0].text;
}

export async function buildRuntimeBundle(log: (msg: string) => void = () => {}): Promise<string> {
  const code = await bundleRuntime();
  fs.mkdirSync(BUILD_DIR, { recursive: true });
  fs.writeFileSync(`${RUNTIME_BUNDLE_PATH}.tmp`, code);
  fs.renameSync(`${RUNTIME_BUNDLE_PATH}.tmp`, RUNTIME_BUNDLE_PATH);
  log(`wrote ${RUNTIME_BUNDLE_PATH} (${(code.length / 1024).toFixed(0)} KiB)`);
  return RUNTIME_BUNDLE_PATH;
}

/**
 * Asks the runtime just built which names each built-in module exports and
 * writes them to build/builtin-modules.json, for the host's import check.
 */
export function writeBuiltinExports(log: (msg: string) => void = () => {}): string {
  const sandbox = Sandbox.create({ identity: 'quickvat-build' });
  try {
    sandbox.evaluate(fs.readFileSync(RUNTIME_BUNDLE_PATH, 'utf8'), { budget: 100_000_000_000n, filename: 'vat-runtime.js' });
    const json = sandbox.evaluate('__quickvat_builtin_exports()');
    if (typeof json !== 'string') throw new Error('the runtime did not list its built-in modules');
    const names = JSON.parse(json) as Record<string, string[]>;
    fs.writeFileSync(`${BUILTIN_EXPORTS_PATH}.tmp`, `${JSON.stringify(names, null, 1)}\n`);
    fs.renameSync(`${BUILTIN_EXPORTS_PATH}.tmp`, BUILTIN_EXPORTS_PATH);
    log(`wrote ${BUILTIN_EXPORTS_PATH} (${Object.keys(names).length} built-in modules)`);
    return BUILTIN_EXPORTS_PATH;
  } finally {
    sandbox.dispose();
  }
}

/**
 * Presences must be collectable for distributed GC (issue #11). Eventual-send
 * maps each presence to the promise resolved with it (presenceToPromise), an
 * optimisation only (HandledPromise.resolve(presence) then makes a fresh
 * resolved promise). In QuickJS a WeakMap value that references its key keeps
 * the key alive forever (no ephemerons), so that entry would pin every
 * presence. The bundle leaves it out; the build fails if the line moved.
 */
const PRESENCE_PIN = 'presenceToPromise.set(resolvedTarget, handledP);';
const unpinPresences: Plugin = {
  name: 'unpin-presences',
  setup(build) {
    build.onLoad({ filter: /eventual-send[\\/]src[\\/]handled-promise\.js$/ }, (args) => {
      const source = fs.readFileSync(args.path, 'utf8');
      if (!source.includes(PRESENCE_PIN)) throw new Error(`${args.path} no longer contains "${PRESENCE_PIN}": revisit unpinPresences`);
      return { contents: source.replace(PRESENCE_PIN, '/* presence -> promise entry left out: see quickvat runtime-bundle.ts */'), loader: 'js' };
    });
  },
};

let cached: string | undefined;
export function runtimeBundleSource(): string {
  if (cached === undefined) {
    try {
      cached = fs.readFileSync(RUNTIME_BUNDLE_PATH, 'utf8');
    } catch {
      throw new Error(`vat runtime bundle missing at ${RUNTIME_BUNDLE_PATH}; run \`npm run build\``);
    }
  }
  return cached;
}
