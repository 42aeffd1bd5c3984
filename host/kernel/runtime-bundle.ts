// The guest runtime (runtime/main.ts and what it imports: SES, marshal,
// eventual-send) bundled by esbuild into one script for the base image.
import fs from 'node:fs';
import path from 'node:path';
import { BUILD_DIR, RUNTIME_BUNDLE_PATH } from '../engine/build-paths.js';

export { RUNTIME_BUNDLE_PATH };
const ROOT = path.dirname(BUILD_DIR);

// esbuild is loaded only when building, never by a running host.
export async function buildRuntimeBundle(log: (msg: string) => void = () => {}): Promise<string> {
  const { default: esbuild } = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [path.join(ROOT, 'runtime', 'main.ts')],
    bundle: true,
    format: 'iife',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    conditions: ['import', 'default'],
    target: 'es2022',
    minify: false,
    legalComments: 'none',
    write: false,
    logLevel: 'silent',
    plugins: [unpinPresences],
  });
  const code = result.outputFiles[0].text;
  fs.mkdirSync(BUILD_DIR, { recursive: true });
  fs.writeFileSync(`${RUNTIME_BUNDLE_PATH}.tmp`, code);
  fs.renameSync(`${RUNTIME_BUNDLE_PATH}.tmp`, RUNTIME_BUNDLE_PATH);
  log(`wrote ${RUNTIME_BUNDLE_PATH} (${(code.length / 1024).toFixed(0)} KiB)`);
  return RUNTIME_BUNDLE_PATH;
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
const unpinPresences = {
  name: 'unpin-presences',
  setup(build: { onLoad(o: { filter: RegExp }, cb: (args: { path: string }) => { contents: string; loader: 'js' }): void }) {
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
