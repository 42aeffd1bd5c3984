import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleSource, type SourceBundle } from '../../host/bundles/bundle-source.js';
import {
  ModuleStore,
  PieceHashMismatchError,
  SourceMissingError,
  bundlecapInfo,
  isBundlecap,
  type Bundlecap,
} from '../../host/bundles/module-store.js';
import { Host } from '../../host/index.js';
import { Store } from '../../host/store/index.js';
import { removeTrees, TWO_CONTRACTS, writeTree } from './fixtures.js';

const pieceOf = (b: SourceBundle, name: string) => b.manifest.modules[name].piece;

describe('bundles: ModuleStore', function () {
  this.timeout(20_000);
  let alpha: SourceBundle;
  let beta: SourceBundle;
  let store: Store;
  let modules: ModuleStore;

  before(async () => {
    const dir = writeTree(TWO_CONTRACTS);
    alpha = await bundleSource(path.join(dir, 'contracts/alpha/contract.js'));
    beta = await bundleSource(path.join(dir, 'contracts/beta/contract.js'));
  });
  after(removeTrees);
  beforeEach(() => {
    store = Store.open();
    modules = new ModuleStore(store);
  });
  afterEach(async () => {
    await store.close();
  });

  const storedKeys = () => [...store.entries('')].map(([k]) => k);

  it('uploads a library two contracts share once: the second missing() lists only its novel pieces', () => {
    assert.deepEqual(modules.missing(alpha.manifest), [...alpha.pieces.keys()].sort());
    const first = modules.put(alpha.pieces);
    assert.deepEqual(first, { stored: [...alpha.pieces.keys()].sort(), alreadyHad: [] });
    assert.deepEqual(modules.missing(alpha.manifest), []);

    const novel = [pieceOf(beta, 'contracts/beta/contract.js'), pieceOf(beta, 'contracts/beta/label.js')].sort();
    assert.deepEqual(modules.missing(beta.manifest), novel, 'lib/shared.js and mathlib are already here');
    const second = modules.put(beta.pieces);
    assert.deepEqual(second.stored, novel);
    assert.deepEqual(second.alreadyHad, [pieceOf(beta, 'lib/shared.js'), pieceOf(beta, 'mathlib@4.1.0/src/gcd.js'), pieceOf(beta, 'mathlib@4.1.0/src/index.js')].sort());
    assert.equal(modules.pieceCount(), alpha.pieces.size + 2);
    assert.ok(storedKeys().every((k) => k.startsWith('b.')), 'everything lives under b.');
    assert.equal(store.dirty, false, 'put() commits');
    assert.throws(() => modules.missing({ format: 'quickvat-manifest-1' }), /invalid manifest: entry is missing/);
  });

  it('rejects a tampered piece, naming its hash, and stores nothing at all', () => {
    const shared = pieceOf(alpha, 'lib/shared.js');
    const tampered = new Map(alpha.pieces);
    tampered.set(shared, new TextEncoder().encode('module.exports.reduce = () => stealFunds();\n'));
    assert.throws(
      () => modules.put(tampered),
      (err: unknown) => err instanceof PieceHashMismatchError && err.claimed === shared && new RegExp(`piece ${shared} does not match its bytes`).test(err.message),
    );
    assert.deepEqual(storedKeys(), []);
    assert.equal(store.dirty, false);
    assert.deepEqual(modules.missing(alpha.manifest), [...alpha.pieces.keys()].sort());
    assert.throws(() => modules.put([['not-a-hash', new Uint8Array(1)]]), /piece name "not-a-hash" is not a sha256/);
    assert.deepEqual(storedKeys(), []);
  });

  it('install() with a piece missing throws SourceMissingError naming it; with all present gives a bundlecap', () => {
    const shared = pieceOf(alpha, 'lib/shared.js');
    modules.put([...alpha.pieces].filter(([hash]) => hash !== shared));
    assert.throws(
      () => modules.install(alpha.manifest),
      (err: unknown) => err instanceof SourceMissingError && err.missing.length === 1 && err.missing[0] === shared && err.message.includes(shared),
    );
    modules.put([[shared, alpha.pieces.get(shared)!]]);
    const cap = modules.install(alpha.manifest);
    assert.ok(isBundlecap(cap));
    assert.ok(Object.isFrozen(cap));
    assert.equal(cap.bundleId, alpha.bundleId);
    assert.equal(bundlecapInfo(cap).bundleId, alpha.bundleId);
    assert.deepEqual(bundlecapInfo(cap).manifest, alpha.manifest);
    assert.equal(modules.install(JSON.parse(JSON.stringify(alpha.manifest))), cap, 'one bundlecap per bundle');

    const forged = Object.freeze({ bundleId: alpha.bundleId });
    assert.equal(isBundlecap(forged), false);
    assert.throws(() => bundlecapInfo(forged as Bundlecap), /not a bundlecap: an object claiming bundleId/);
    assert.throws(() => modules.loadVatBundle(forged as Bundlecap), /not a bundlecap/);
  });

  it('a bundlecap survives changes to the caller\'s manifest object and loads as a VatBundle that runs', async () => {
    modules.put(alpha.pieces);
    const manifest = JSON.parse(JSON.stringify(alpha.manifest));
    const cap = modules.install(manifest);
    manifest.modules['lib/shared.js'].piece = pieceOf(alpha, 'mathlib@4.1.0/src/gcd.js');
    const bundle = modules.loadVatBundle(cap);
    assert.equal(bundle.entry, 'contracts/alpha/contract.js');
    assert.match(bundle.modules['lib/shared.js'].source, /reduce/);

    const host = await Host.open();
    try {
      // The host's own module store issues the cap it accepts.
      host.bundles.put(alpha.pieces);
      const kit = host.startInstance(host.install(host.bundles.install(alpha.manifest), { label: 'alpha' }));
      assert.deepEqual(await host.E(kit.root).reduce(12, 18), [2, 3]);
    } finally {
      await host.close();
    }
  });

  it('collects only pieces and manifests that no held bundle uses', () => {
    modules.put(alpha.pieces);
    modules.put(beta.pieces);
    const a = modules.install(alpha.manifest);
    const b = modules.install(beta.manifest);
    modules.hold(a, 'installation:alpha');
    modules.hold(alpha.bundleId, 'instance:v1');
    modules.hold(b, 'installation:beta');
    assert.deepEqual(modules.holders(a), ['installation:alpha', 'instance:v1']);
    assert.deepEqual(modules.collect(), [], 'everything is held');

    modules.release(b, 'installation:beta');
    const betaOnly = [pieceOf(beta, 'contracts/beta/contract.js'), pieceOf(beta, 'contracts/beta/label.js')].sort();
    assert.deepEqual(modules.collect(), betaOnly, 'shared pieces stay for alpha');
    assert.deepEqual(modules.missing(alpha.manifest), []);
    assert.deepEqual(modules.missing(beta.manifest), betaOnly);
    assert.equal(modules.manifest(beta.bundleId), undefined);
    assert.throws(() => modules.hold(b, 'late'), /cannot hold bundle .*: it is not installed here/);
    assert.throws(() => modules.release(b, 'installation:beta'), /"installation:beta" does not hold bundle/);

    modules.release(a, 'installation:alpha');
    assert.deepEqual(modules.collect(), [], 'one holder is enough');
    modules.release(a, 'instance:v1');
    assert.deepEqual(modules.collect(), [...alpha.pieces.keys()].sort());
    assert.deepEqual(storedKeys(), []);
    assert.throws(() => modules.loadVatBundle(a), (err: unknown) => err instanceof SourceMissingError);
  });

  it('keeps pieces, manifests and holds across a restart, and gives back a bundlecap by id', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quickvat-modstore-'));
    try {
      const first = Store.open({ path: dir });
      const before = new ModuleStore(first);
      before.put(alpha.pieces);
      before.hold(before.install(alpha.manifest), 'installation:alpha');
      await first.close();

      const second = Store.open({ path: dir });
      try {
        const after = new ModuleStore(second);
        assert.deepEqual(after.missing(alpha.manifest), []);
        const cap = after.bundlecap(alpha.bundleId);
        assert.ok(cap && isBundlecap(cap));
        assert.deepEqual(after.holders(cap), ['installation:alpha']);
        assert.equal(Object.keys(after.loadVatBundle(cap).modules).length, alpha.pieces.size);
        assert.equal(after.bundlecap(beta.bundleId), undefined);
        assert.throws(() => before.loadVatBundle(cap), /issued by another host's module store/);
      } finally {
        await second.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
