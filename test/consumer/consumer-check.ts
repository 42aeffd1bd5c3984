// The consumer check (issue 14), run by `npm test` after the suite: packs this
// package as `npm publish` would, installs the tarball into a scratch project
// in a temporary directory, and uses it from there as a dependent would:
// `import { Host, bundleSource } from 'quickvat'` in an .mjs file that runs a
// contract end to end, the same in a .ts file type-checked (tsc --noEmit)
// against the shipped declarations, and `npx quickvat --help`.
// Expects `npm run build` to have run (npm test does that first). The
// tarball's dependencies come from the npm registry (or npm's cache).
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const APP = path.join(ROOT, 'test', 'consumer', 'app');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function sh(what: string, command: string, args: string[], options: SpawnSyncOptions): string {
  const r = spawnSync(command, args, { encoding: 'utf8', ...options });
  if (r.status !== 0) {
    throw new Error(`consumer check: ${what} failed (exit ${r.status ?? r.signal}):\n${r.stdout ?? ''}${r.stderr ?? ''}`);
  }
  return String(r.stdout);
}

function main(): void {
  for (const built of ['dist/host/index.js', 'dist/host/index.d.ts', 'build/quickjs-metered.wasm', 'build/vat-runtime.js', 'build/builtin-modules.json']) {
    if (!fs.existsSync(path.join(ROOT, built))) throw new Error(`consumer check: ${built} is missing; run \`npm run build\` first`);
  }
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-consumer-'));
  let ok = false;
  try {
    // --ignore-scripts: npm test has just built; prepack would build again.
    const packed = JSON.parse(sh('npm pack', NPM, ['pack', '--json', '--ignore-scripts', '--pack-destination', scratch], { cwd: ROOT })) as {
      filename: string;
      size: number;
      entryCount: number;
      files: { path: string }[];
    }[];
    const { filename, size, entryCount, files } = packed[0];
    const shipped = files.map((f) => f.path);
    const unwanted = shipped.filter((f) => /(^|\/)test\/|\.map$|\.test\.|^bench\//.test(f));
    if (unwanted.length) throw new Error(`consumer check: the tarball ships ${unwanted.join(', ')}`);
    console.log(`consumer check: packed ${filename}: ${entryCount} files, ${(size / 1024).toFixed(0)} KiB`);

    const app = path.join(scratch, 'app');
    fs.mkdirSync(app);
    for (const f of fs.readdirSync(APP)) fs.copyFileSync(path.join(APP, f), path.join(app, f));
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'quickvat-consumer', private: true, type: 'module' }, null, 2));
    const typesNode = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', '@types', 'node', 'package.json'), 'utf8')).version as string;
    sh('npm install of the tarball', NPM, ['install', '--no-audit', '--no-fund', '--prefer-offline', path.join(scratch, filename), `@types/node@${typesNode}`], {
      cwd: app,
    });

    process.stdout.write(sh('node use.mjs', process.execPath, ['use.mjs'], { cwd: app }));
    // The repository's TypeScript, against the scratch project's node_modules
    // (the shipped .d.ts and what they reference), libraries checked too.
    sh('tsc --noEmit use.ts', process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], { cwd: app });
    console.log('consumer check: use.ts type-checks against the shipped declarations');
    const help = sh('npx quickvat --help', NPM, ['exec', '--offline', '--', 'quickvat', '--help'], { cwd: app });
    if (!/^Usage: quickvat/m.test(help)) throw new Error(`consumer check: npx quickvat --help printed:\n${help}`);
    const version = sh('npx quickvat --version', NPM, ['exec', '--offline', '--', 'quickvat', '--version'], { cwd: app }).trim();
    const expected = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string;
    if (version !== expected) throw new Error(`consumer check: npx quickvat --version printed ${version}, expected ${expected}`);
    console.log('consumer check: npx quickvat --help and --version work; passed');
    ok = true;
  } finally {
    if (ok) fs.rmSync(scratch, { recursive: true, force: true });
    else console.error(`consumer check: scratch project kept in ${scratch}`);
  }
}

try {
  main();
} catch (err) {
  console.error((err as Error).message);
  process.exitCode = 1;
}
