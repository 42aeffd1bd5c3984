import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  BundleError,
  bundleSource,
  manifestToVatBundle,
  validateManifest,
  type Manifest,
  type SourceBundle,
} from '../../host/bundles/bundle-source.js';
import { SourceMissingError } from '../../host/bundles/module-store.js';
import { canonicalJson } from '../../host/bundles/vat-bundle.js';
import { Host } from '../../host/index.js';
import { removeTrees, TWO_CONTRACTS, TYPESCRIPT, USES_EXIT, USES_FS, USES_NATIVE, writeTree } from './fixtures.js';

const sha256 = (bytes: Uint8Array | string) => crypto.createHash('sha256').update(bytes).digest('hex');
const text = (b: SourceBundle, name: string) => Buffer.from(b.pieces.get(b.manifest.modules[name].piece)!).toString('utf8');

async function bundleError(entry: string): Promise<BundleError> {
  try {
    await bundleSource(entry);
  } catch (err) {
    assert.ok(err instanceof BundleError, `expected a BundleError, got ${String(err)}`);
    return err;
  }
  assert.fail(`bundling ${entry} should have failed`);
}

describe('bundles: bundleSource', function () {
  this.timeout(20_000);
  after(removeTrees);

  it('packs each module as its own piece, named relative to the package root, with import maps', async () => {
    const dir = writeTree(TWO_CONTRACTS);
    const b = await bundleSource(path.join(dir, 'contracts/beta/contract.js'));
    const { manifest } = b;
    assert.equal(manifest.format, 'quickvat-manifest-1');
    assert.equal(manifest.entry, 'contracts/beta/contract.js');
    assert.deepEqual(Object.keys(manifest.modules).sort(), [
      'contracts/beta/contract.js',
      'contracts/beta/label.js',
      'lib/shared.js',
      'mathlib@4.1.0/src/gcd.js',
      'mathlib@4.1.0/src/index.js',
    ]);
    assert.deepEqual(manifest.modules['contracts/beta/contract.js'].imports, {
      '../../lib/shared.js': 'lib/shared.js',
      './label.js': 'contracts/beta/label.js',
      mathlib: 'mathlib@4.1.0/src/index.js',
    });
    assert.deepEqual(manifest.modules['lib/shared.js'].imports, { mathlib: 'mathlib@4.1.0/src/index.js' });
    assert.deepEqual(manifest.modules['mathlib@4.1.0/src/index.js'].imports, { './gcd.js': 'mathlib@4.1.0/src/gcd.js' });
    assert.deepEqual(manifest.exits, []);
    for (const [name, record] of Object.entries(manifest.modules)) {
      const bytes = b.pieces.get(record.piece);
      assert.ok(bytes, `piece of ${name} is in the bundle`);
      assert.equal(sha256(bytes), record.piece, `${name} is named by the sha256 of its bytes`);
      assert.equal(record.size, bytes.byteLength);
      assert.deepEqual(record.exits, []);
    }
    assert.equal(b.pieces.size, 5);
    assert.equal(b.bundleId, sha256(canonicalJson(manifest)));
    assert.doesNotMatch(canonicalJson(manifest), new RegExp(dir.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')), 'no absolute paths');
    // A piece is the author's file, byte for byte: its hash is sha256sum of the file.
    assert.equal(text(b, 'contracts/beta/contract.js'), TWO_CONTRACTS['contracts/beta/contract.js']);
    assert.equal(manifest.modules['lib/shared.js'].piece, sha256(fs.readFileSync(path.join(dir, 'lib/shared.js'))));
    assert.equal(validateManifest(JSON.parse(JSON.stringify(manifest))).entry, manifest.entry);
  });

  it('is deterministic and machine-independent: the same files in two directories give the same bundle', async () => {
    const one = writeTree(TWO_CONTRACTS, 'quickvat-one-');
    const two = writeTree(TWO_CONTRACTS, 'quickvat-elsewhere-entirely-');
    const a = await bundleSource(path.join(one, 'contracts/beta/contract.js'));
    const b = await bundleSource(path.join(two, 'contracts/beta/contract.js'));
    const again = await bundleSource(path.join(one, 'contracts/beta/contract.js'));
    assert.equal(a.bundleId, b.bundleId);
    assert.equal(canonicalJson(a.manifest), canonicalJson(b.manifest));
    assert.deepEqual([...a.pieces], [...b.pieces]);
    assert.equal(again.bundleId, a.bundleId);
    // A relative entry path (from another working directory) names the same bundle.
    const relative = path.relative(process.cwd(), path.join(two, 'contracts/beta/contract.js'));
    assert.equal((await bundleSource(relative)).bundleId, a.bundleId);
    // An explicit root names modules relative to it.
    const rooted = await bundleSource(path.join(two, 'contracts/beta/label.js'), { root: path.join(two, 'contracts') });
    assert.equal(rooted.manifest.entry, 'beta/label.js');
  });

  it('refuses a Node built-in, naming the whole import chain', async () => {
    const dir = writeTree(USES_FS);
    const entry = path.join(dir, 'contracts/x/v1/contract.js');
    const err = await bundleError(entry);
    assert.equal(
      err.message,
      `cannot bundle ${entry}: it imports "fs" (contracts/x/v1/contract.js -> lib/util.js -> fs), a Node built-in that does not exist inside a vat`,
    );
    assert.deepEqual(err.problems.map((p) => [p.specifier, p.chain]), [['fs', ['contracts/x/v1/contract.js', 'lib/util.js', 'fs']]]);

    const direct = writeTree({ 'package.json': '{}', 'a.js': `import 'node:crypto';\nimport process from 'process';\nimport './b.js';\n`, 'b.js': `import { join } from 'path';\n` });
    const many = await bundleError(path.join(direct, 'a.js'));
    assert.deepEqual(
      many.problems.map((p) => p.chain.join(' -> ')),
      ['a.js -> node:crypto', 'a.js -> process', 'a.js -> b.js -> path'],
    );
    assert.match(many.message, /"node:crypto" \(a\.js -> node:crypto\), a Node built-in/);
  });

  it('refuses a name a built-in module does not export, in any module of the graph, listing the names it does export (issue 12)', async () => {
    const dir = writeTree({
      'package.json': '{}',
      'a.js': `import { M } from '@endo/patterns';\nimport { helper } from './lib/b.ts';\nexport const x = [M, helper];\n`,
      'lib/b.ts': `import type { Passable } from '@endo/pass-style';\nimport { Far, makeFar } from '@endo/far';\nexport const helper = (p: Passable) => [Far, makeFar, p];\n`,
    });
    const err = await bundleError(path.join(dir, 'a.js'));
    assert.deepEqual(err.problems.map((p) => [p.specifier, p.chain]), [['@endo/far', ['a.js', 'lib/b.ts', '@endo/far']]]);
    assert.match(
      err.message,
      /module lib\/b\.ts imports "makeFar" from built-in module "@endo\/far", which does not export it; "@endo\/far" exports: E, Far, getInterfaceOf, passStyleOf$/,
    );
  });

  it('refuses packages with native code, unresolvable imports and non-module files', async () => {
    const dir = writeTree(USES_NATIVE);
    const native = await bundleError(path.join(dir, 'contract.js'));
    assert.match(native.message, /it imports "fastdb" \(contract\.js -> fastdb\), a package containing native code \(binding\.gyp\)/);

    const addon = writeTree({
      'package.json': '{}',
      'contract.js': `import 'speedy';\n`,
      'node_modules/speedy/package.json': JSON.stringify({ name: 'speedy', version: '1.0.0', main: 'index.js' }),
      'node_modules/speedy/index.js': `module.exports = 1;\n`,
      'node_modules/speedy/build/Release/speedy.node': 'not really an addon',
    });
    assert.match((await bundleError(path.join(addon, 'contract.js'))).message, /native code \(build\/Release\/speedy\.node\)/);

    const broken = writeTree({ 'package.json': '{}', 'contract.js': `import './lib/a.js';\n`, 'lib/a.js': `import { x } from './gone.js';\nimport './style.css';\nexport const y = x;\n`, 'lib/style.css': 'a {}' });
    const err = await bundleError(path.join(broken, 'contract.js'));
    assert.match(err.message, /it imports "\.\/gone\.js" \(contract\.js -> lib\/a\.js -> \.\/gone\.js\), which cannot be resolved from lib\/a\.js/);
    assert.match(err.message, /it imports "\.\/style\.css" \(contract\.js -> lib\/a\.js -> \.\/style\.css\), a \.css file/);

    const syntax = writeTree({ 'package.json': '{}', 'contract.js': `import './bad.js';\n`, 'bad.js': `export const = 1;\n` });
    assert.match((await bundleError(path.join(syntax, 'contract.js'))).message, /module bad\.js \(contract\.js -> bad\.js\) cannot be transformed: .* at line 1:/);

    await assert.rejects(bundleSource(path.join(syntax, 'nope.js')), /cannot bundle .*nope\.js: no such file/);
    await assert.rejects(bundleSource(path.join(syntax, 'style.css')), /the entry must be a \.js\/\.mjs\/\.ts\/\.mts file/);
  });

  it('resolves packages as imports first (ESM-only and dual packages), and a CommonJS require of the same package alike', async () => {
    const dir = writeTree({
      'package.json': '{}',
      'contract.js': `import { kind } from 'dual';\nimport { version } from 'esm-only';\nimport legacy from './legacy.cjs';\nexport const all = [kind, version, legacy];\n`,
      'legacy.cjs': `module.exports = require('dual').kind;\n`,
      'node_modules/dual/package.json': JSON.stringify({ name: 'dual', version: '1.0.0', exports: { '.': { import: './esm.mjs', require: './cjs.cjs' } } }),
      'node_modules/dual/esm.mjs': `export const kind = 'esm';\n`,
      'node_modules/dual/cjs.cjs': `exports.kind = 'cjs';\n`,
      'node_modules/esm-only/package.json': JSON.stringify({ name: 'esm-only', version: '2.0.0', type: 'module', exports: { '.': { import: './index.js' } } }),
      'node_modules/esm-only/index.js': `export const version = 2;\n`,
    });
    const b = await bundleSource(path.join(dir, 'contract.js'));
    assert.deepEqual(b.manifest.modules['contract.js'].imports, { './legacy.cjs': 'legacy.cjs', dual: 'dual@1.0.0/esm.mjs', 'esm-only': 'esm-only@2.0.0/index.js' });
    assert.deepEqual(b.manifest.modules['legacy.cjs'].imports, { dual: 'dual@1.0.0/esm.mjs' }, 'one copy of the package, not two');
  });

  it('records host:* named exits per module and at the top, and never packs them', async () => {
    const dir = writeTree(USES_EXIT);
    const b = await bundleSource(path.join(dir, 'contract.js'));
    assert.deepEqual(b.manifest.exits, ['host:parameters', 'host:price-oracle']);
    assert.deepEqual(b.manifest.modules['contract.js'].exits, ['host:parameters']);
    assert.deepEqual(b.manifest.modules['contract.js'].imports, { './fee.js': 'fee.js' });
    assert.deepEqual(b.manifest.modules['fee.js'].exits, ['host:price-oracle']);
    assert.deepEqual(Object.keys(b.manifest.modules).sort(), ['contract.js', 'fee.js']);
    assert.equal(b.pieces.size, 2);
    assert.match(text(b, 'contract.js'), /^import params from 'host:parameters';$/m);
  });

  it('transforms a TypeScript entry and its .ts imports, dropping type-only imports', async () => {
    const dir = writeTree(TYPESCRIPT);
    const b = await bundleSource(path.join(dir, 'contract.ts'));
    assert.equal(b.manifest.entry, 'contract.ts');
    assert.deepEqual(Object.keys(b.manifest.modules).sort(), ['contract.ts', 'scale.ts']);
    assert.deepEqual(b.manifest.modules['contract.ts'].imports, { './scale.js': 'scale.ts' });
    // The piece is the TypeScript as written; what the vat runs is compiled from it.
    assert.equal(text(b, 'contract.ts'), TYPESCRIPT['contract.ts']);
    const vat = manifestToVatBundle(b.manifest, (h) => b.pieces.get(h));
    assert.doesNotMatch(vat.modules['contract.ts'].source, /: number|types\.js/);
  });

  it('validateManifest names the field at fault', () => {
    const good: Manifest = {
      format: 'quickvat-manifest-1',
      entry: 'a.js',
      modules: { 'a.js': { piece: 'a'.repeat(64), imports: { './b.js': 'b.js' }, exits: ['host:parameters'], size: 3 }, 'b.js': { piece: 'b'.repeat(64), imports: {}, exits: [], size: 1 } },
      exits: ['host:parameters'],
    };
    assert.equal(validateManifest(good), good);
    const bad = (mutate: (m: any) => void, message: RegExp) => {
      const m = JSON.parse(JSON.stringify(good));
      mutate(m);
      assert.throws(() => validateManifest(m), message);
    };
    assert.throws(() => validateManifest('nope'), /invalid manifest: must be a plain object/);
    bad((m) => (m.format = 'v0'), /invalid manifest: format must be "quickvat-manifest-1", got "v0"/);
    bad((m) => (m.entry = 'c.js'), /invalid manifest: entry names "c.js", which is not in modules/);
    bad((m) => (m.modules = {}), /invalid manifest: modules is empty/);
    bad((m) => (m.modules['a.js'].piece = 'xyz'), /modules\["a.js"\]\.piece must be a sha256/);
    bad((m) => (m.modules['a.js'].size = -1), /modules\["a.js"\]\.size must be a non-negative integer/);
    bad((m) => (m.modules['a.js'].imports['./b.js'] = 'zz.js'), /modules\["a.js"\]\.imports\["\.\/b\.js"\] names "zz.js", which is not in modules/);
    bad((m) => (m.modules['a.js'].imports['@endo/far'] = 'b.js'), /imports\["@endo\/far"\] maps a built-in module/);
    bad((m) => (m.modules['a.js'].exits = ['fs']), /modules\["a.js"\]\.exits\[0\] must be a host:\* specifier/);
    bad((m) => (m.exits = []), /invalid manifest: exits must list exactly the modules' exits \["host:parameters"\]/);
    bad((m) => (m.modules['/home/me/a.js'] = m.modules['b.js']), /modules\["\/home\/me\/a.js"\] is an absolute path/);
    bad((m) => (m.extra = 1), /invalid manifest: extra is not a manifest field/);
    bad((m) => delete m.modules['b.js'].size, /modules\["b.js"\]\.size is missing/);
  });

  it('manifestToVatBundle re-verifies pieces and names the missing ones', async () => {
    const dir = writeTree(TWO_CONTRACTS);
    const b = await bundleSource(path.join(dir, 'contracts/alpha/contract.js'));
    const vat = manifestToVatBundle(b.manifest, (h) => b.pieces.get(h));
    assert.equal(vat.entry, 'contracts/alpha/contract.js');
    assert.deepEqual(Object.keys(vat.modules).sort(), Object.keys(b.manifest.modules).sort());
    // The guest gets CommonJS-shaped text compiled from the piece, the same every time.
    assert.match(vat.modules['lib/shared.js'].source, /require\("mathlib"\)/);
    assert.equal(manifestToVatBundle(b.manifest, (h) => b.pieces.get(h)).modules['lib/shared.js'].source, vat.modules['lib/shared.js'].source);
    assert.deepEqual(vat.modules['lib/shared.js'].imports, { mathlib: 'mathlib@4.1.0/src/index.js' });

    const shared = b.manifest.modules['lib/shared.js'].piece;
    assert.throws(
      () => manifestToVatBundle(b.manifest, (h) => (h === shared ? undefined : b.pieces.get(h))),
      (e: unknown) => e instanceof SourceMissingError && e.missing.length === 1 && e.missing[0] === shared && e.message.includes(shared),
    );
    const forged = new TextEncoder().encode(text(b, 'lib/shared.js').replace('reduce', 'steal'));
    assert.throws(() => manifestToVatBundle(b.manifest, (h) => (h === shared ? forged : b.pieces.get(h))), new RegExp(`piece ${shared} of module "lib/shared.js" does not match`));
  });

  it('keeps each piece byte-identical to its file (sha256sum), comments included, for a multi-module contract', async () => {
    const tree = {
      'package.json': JSON.stringify({ name: 'commented', version: '1.0.0', type: 'module' }),
      'contract.js': `// The entry: fees in basis points.\nimport { Far } from '@endo/far';\n/* helpers */\nimport { bps } from './lib/fees.js';\nexport function buildRootObject() {\n  return Far('root', { fee: (n) => bps(n, 30) }); // 0.3%\n}\n`,
      'lib/fees.js': `/**\n * Basis points of an amount, rounded down.\n */\nexport const bps = (n, b) => Math.floor((n * b) / 10000);\n`,
    };
    const dir = writeTree(tree);
    const b = await bundleSource(path.join(dir, 'contract.js'));
    for (const name of ['contract.js', 'lib/fees.js']) {
      const file = fs.readFileSync(path.join(dir, name));
      assert.equal(b.manifest.modules[name].piece, sha256(file), `${name}: piece hash = sha256sum of the file`);
      assert.deepEqual(Buffer.from(b.pieces.get(b.manifest.modules[name].piece)!), file);
    }
    assert.match(text(b, 'lib/fees.js'), /Basis points of an amount, rounded down\./);
    const host = await Host.open();
    try {
      host.bundles.put(b.pieces);
      const kit = host.startInstance(host.install(host.bundles.install(b.manifest)));
      assert.equal(await host.E(kit.root).fee(10_000), 30);
    } finally {
      await host.close();
    }
  });

  it('refuses modules outside the package root (../ past it, absolute paths, file: URLs), naming the specifier and the chain', async () => {
    const outside = writeTree({ 'secret.js': `export const key = 'hunter2';\n` }, 'quickvat-outside-');
    const secret = path.join(outside, 'secret.js');
    const dir = writeTree({
      'package.json': '{}',
      'contract.js': `import './lib/a.js';\n`,
      'lib/a.js': `import { key } from '../${'../'.repeat(12)}${secret.slice(1)}';\nimport abs from ${JSON.stringify(secret)};\nimport url from ${JSON.stringify(`file://${secret}`)};\nexport const all = [key, abs, url];\n`,
    });
    const err = await bundleError(path.join(dir, 'contract.js'));
    const bySpecifier = new Map(err.problems.map((p) => [p.specifier, p]));
    const dotdot = `../${'../'.repeat(12)}${secret.slice(1)}`;
    assert.match(bySpecifier.get(dotdot)!.reason, /^outside the package root /);
    assert.deepEqual(bySpecifier.get(dotdot)!.chain, ['contract.js', 'lib/a.js', dotdot]);
    assert.match(bySpecifier.get(secret)!.reason, /an absolute path/);
    assert.match(bySpecifier.get(`file://${secret}`)!.reason, /a file: URL/);
    assert.match(err.message, new RegExp(`it imports "${dotdot.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}" \\(contract\\.js -> lib/a\\.js -> `));
    // An entry outside an explicit root is refused too.
    await assert.rejects(bundleSource(secret, { root: dir }), /the entry is outside the package root/);
  });

  it('produces bundles that run in a vat: an entry importing a helper by relative path', async () => {
    const dir = writeTree({
      'package.json': JSON.stringify({ name: 'runs', version: '0.0.1', type: 'module' }),
      'contract.js': `import { Far } from '@endo/far';\nimport { greet, Counter } from './lib/helper.js';\nexport function buildRootObject() {\n  const c = new Counter();\n  return Far('root', { hello: (who) => greet(who), bump: () => c.bump() });\n}\n`,
      'lib/helper.js': `import { makePromiseKit } from '@endo/promise-kit';\nexport const greet = (who) => 'hello ' + who + (typeof makePromiseKit);\nexport class Counter { n = 0; bump() { this.n += 1; return this.n; } }\n`,
    });
    const b = await bundleSource(path.join(dir, 'contract.js'));
    assert.deepEqual(Object.keys(b.manifest.modules).sort(), ['contract.js', 'lib/helper.js']);
    const host = await Host.open();
    try {
      assert.equal(manifestToVatBundle(b.manifest, (h) => b.pieces.get(h)).entry, 'contract.js');
      host.bundles.put(b.pieces);
      const installation = host.install(host.bundles.install(b.manifest), { label: 'two-module' });
      const kit = host.startInstance(installation);
      assert.ok(kit.root, 'a buildRootObject bundle starts with a root');
      assert.equal(await host.E(kit.root).hello('vat'), 'hello vatfunction');
      assert.equal(await host.E(kit.root).bump(), 1);
      assert.equal(await host.E(kit.root).bump(), 2);
    } finally {
      await host.close();
    }
  });
});
