// The page-shared image store (issue 16): forks share their zygote's pages,
// collection keeps exactly what live images list, a SIGKILL mid-snapshot
// leaves a restorable store, and replicas still agree byte for byte.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';
import { compressImage, encodeImage, HASH_BYTES, imageHash, instancePoolStats, PAGE_SIZE, Sandbox, setInstancePool, type ImageManifest } from '../../host/engine/index.js';
import { captureImage, writePages } from '../../host/engine/snapshot.js';
import { Host } from '../../host/index.js';
import { exampleContractSource } from '../../host/example-contracts.js';
import { COLLECT_AFTER } from '../../host/kernel/image-store.js';
import { COUNTER_VAT } from '../fixtures/vats.js';
import { ROOT_V1, ROOT_V2 } from '../fixtures/upgrade-contracts.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'snapshot-child.js');
const LEDGER_V1 = exampleContractSource('ledger', 'v1');
const LEDGER_V2 = exampleContractSource('ledger', 'v2');

function hashesOf(m: ImageManifest): string[] {
  return Array.from({ length: m.pageIndices.length }, (_, i) => Buffer.from(m.pageHashes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES)).toString('hex'));
}

function keysUnder(host: Host, prefix: string): string[] {
  const out: string[] = [];
  for (let k = host.store.getNextKey(prefix); k !== undefined; k = host.store.getNextKey(prefix, k)) out.push(k.slice(prefix.length));
  return out;
}

async function withHost(options: Parameters<typeof Host.open>[0], fn: (host: Host) => Promise<void>): Promise<void> {
  const host = await Host.open(options);
  try {
    await fn(host);
  } finally {
    await host.close();
  }
}

/** Ids of the images the vat records name: the roots of collection. */
function liveImages(host: Host): Set<string> {
  return new Set(host.kernel.vatIds().map((v) => host.kernel.vatRecord(v).imageId));
}

describe('image store: page-shared snapshots', function () {
  this.timeout(120_000);

  it('captures the same image with or without the image memory came from, sharing its unchanged pages', () => {
    const s = Sandbox.create();
    s.evaluate('globalThis.big = "a".repeat(100000); 1');
    const first = s.snapshot();
    s.evaluate('globalThis.more = "b".repeat(30000); 1');
    const second = s.snapshot(); // compared against `first`
    const mem = new Uint8Array(second.header.memoryBytes);
    writePages(second, mem);
    const scratch = captureImage(mem, second.header);
    assert.equal(imageHash(second), imageHash(scratch));
    assert.notEqual(imageHash(first), imageHash(second));
    const shared = second.pages.filter((p) => first.pages.includes(p)).length;
    assert.ok(shared > 0.5 * second.pages.length, `${shared} of ${second.pages.length} pages shared with the previous image`);
  });

  // Idle turns fill spares; on a loaded machine that can take a while.
  const poolReady = async (filled: number) => {
    for (let i = 0; i < 200 && instancePoolStats().readyFilled < filled; i++) await new Promise((r) => setTimeout(r, 10));
  };

  it('keeps memories for the two most recently used memory sizes only, and none above 32 MiB (break16 #3)', async () => {
    const grown = (mib: number) => {
      const s = Sandbox.create();
      s.evaluate(`globalThis.big = []; while (${mib} * 1048576 > 0 && big.length < ${mib} * 8) big.push('x'.repeat(65536) + big.length); 1`);
      return s.snapshot();
    };
    try {
      setInstancePool(false);
      setInstancePool(true);
      const images = [grown(0), grown(24), grown(36), grown(80)];
      const sizes = images.map((i) => i.header.memoryBytes);
      assert.equal(new Set(sizes.slice(0, 3)).size, 3, `three memory sizes up to 32 MiB: ${sizes}`);
      assert.ok(sizes[3] > 32 * 1048576, `and one above: ${sizes[3]}`);
      for (const image of images.slice(0, 3)) {
        for (let k = 0; k < 3; k++) Sandbox.restore(image, { identity: `r${k}` }).dispose();
        await new Promise((r) => setTimeout(r, 30));
      }
      const stats = instancePoolStats();
      assert.equal(stats.kinds, 2, 'the two most recently used sizes only');
      assert.ok(stats.heldBytes <= 2 * 8 * 32 * 1048576, `${stats.heldBytes} bytes held`);
      const fresh = stats.fresh;
      for (let k = 0; k < 3; k++) Sandbox.restore(images[3], { identity: `r${k}` }).dispose();
      assert.equal(instancePoolStats().fresh, fresh + 3, 'a memory above 32 MiB is never pooled');
      assert.ok(instancePoolStats().kinds <= 2);
    } finally {
      setInstancePool(true);
    }
  });

  it('gives a disposed sandbox\'s memory to one later sandbox only, however often it is disposed (break16 #1)', () => {
    const image = Sandbox.create().snapshot();
    try {
      setInstancePool(false);
      setInstancePool(true);
      const old = Sandbox.restore(image, { identity: 'old' });
      old.dispose();
      old.dispose();
      const a = Sandbox.restore(image, { identity: 'a' });
      const b = Sandbox.restore(image, { identity: 'b' });
      a.evaluate('globalThis.secret = "only a knows"; 1');
      assert.deepEqual(b.evaluate('typeof globalThis.secret'), 'undefined', 'b does not run in a\'s memory');
      assert.notEqual(a.stateHash(), b.stateHash());
    } finally {
      setInstancePool(true);
    }
  });

  it('restores the same memory into a fresh instance, a spare made ahead, or a disposed sandbox\'s memory', async () => {
    const s = Sandbox.create();
    s.evaluate('globalThis.x = [1, 2, 3].map(String); 1');
    const image = s.snapshot();
    try {
      setInstancePool(false);
      const plain = Sandbox.restore(image, { identity: 'v' }).stateHash();
      setInstancePool(true);
      // Restored twice: the idle turns make clean spares and one filled with `image` ahead of time.
      Sandbox.restore(image, { identity: 'w' });
      Sandbox.restore(image, { identity: 'w' });
      await poolReady(1);
      const before = instancePoolStats();
      const pooled = Sandbox.restore(image, { identity: 'v' });
      assert.equal(instancePoolStats().filled, before.filled + 1, 'served by a filled spare');
      assert.equal(pooled.stateHash(), plain);
      assert.deepEqual(pooled.evaluate('x'), ['1', '2', '3']);
      // A second image is kept filled too (the last two are), and a clone goes into a clean spare.
      const other = Sandbox.create();
      other.evaluate('globalThis.y = "other"; 1');
      const otherImage = other.snapshot();
      setInstancePool(false);
      const otherPlain = Sandbox.restore(otherImage, { identity: 'v' }).stateHash();
      setInstancePool(true);
      Sandbox.restore(otherImage, { identity: 'w' });
      Sandbox.restore(otherImage, { identity: 'w' });
      await poolReady(2);
      const fromFilled = Sandbox.restore(otherImage, { identity: 'v' });
      assert.equal(fromFilled.stateHash(), otherPlain);
      const clean = instancePoolStats().clean;
      assert.equal(fromFilled.clone().stateHash(), otherPlain);
      assert.equal(instancePoolStats().clean, clean + 1, 'the clone went into a clean spare');
      assert.equal(Sandbox.restore(image, { identity: 'v' }).stateHash(), plain, 'a spare filled with the first image is still good');
      // A recycled memory (only a restored sandbox's is reused) holds the old
      // sandbox's bytes everywhere.
      setInstancePool(false);
      setInstancePool(true);
      const garbage = Sandbox.restore(Sandbox.create().snapshot());
      garbage.evaluate('globalThis.junk = "z".repeat(3000000) + [1, 2].join(); 1');
      assert.equal(garbage.memoryBytes, image.header.memoryBytes);
      garbage.dispose();
      const recycled = Sandbox.restore(image, { identity: 'v' });
      assert.equal(recycled.stateHash(), plain);
      assert.deepEqual(recycled.evaluate('[typeof junk, x]'), ['undefined', ['1', '2', '3']]);
      assert.throws(() => garbage.evaluate('1'), /disposed/);
      // ... unless an idle turn zeroed it first.
      const more = Sandbox.restore(Sandbox.create().snapshot());
      more.evaluate('globalThis.junk = "y".repeat(2000000); 1');
      more.dispose();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(Sandbox.restore(image, { identity: 'v' }).stateHash(), plain);
    } finally {
      setInstancePool(true);
    }
  });

  it('reads and verifies whole deflated images that stores written before page sharing hold', async () => {
    await withHost({}, async (host) => {
    const s = Sandbox.create();
    s.evaluate('globalThis.legacy = 42; 1');
    const image = s.snapshot();
    const id = crypto.createHash('sha256').update(encodeImage(image)).digest('hex');
    host.store.set(`img.${id}`, compressImage(image));
    host.store.commit();
    const images = host.kernel.state.images;
    assert.equal(Sandbox.restore(images.get(id)).evaluate('legacy'), 42);
    assert.deepEqual(images.verify(), []);
    host.store.set(`img.${'0'.repeat(64)}`, compressImage(image));
    host.store.commit();
    assert.match(images.verify().join(), /content does not match its id/);
    });
  });

  it("stores 100 forks in little more than one zygote image plus the forks' own dirty pages", async () => {
    await withHost({ snapshotEvery: 1 }, async (host) => {
    const installation = host.install(LEDGER_V1, { label: 'ledger' });
    const images = host.kernel.state.images;
    const zygoteId = host.kernel.vatRecord(installation.installationId).imageId;
    const zygote = images.manifest(zygoteId)!;
    const zygoteHashes = new Set(hashesOf(zygote));
    const forks = Array.from({ length: 100 }, (_, i) => host.startInstance(installation, { name: `f${i}` }));
    images.collect();
    host.store.commit();
    let ownDirty = 0;
    for (const kit of forks) {
      const id = host.kernel.vatRecord(kit.instanceId).imageId;
      assert.notEqual(id, zygoteId, 'each fork was snapshotted (snapshotEvery 1)');
      const own = hashesOf(images.manifest(id)!).filter((h) => !zygoteHashes.has(h)).length;
      assert.ok(own < 0.5 * zygote.pageIndices.length, `a fork has ${own} of ${zygote.pageIndices.length} pages of its own`);
      ownDirty += own;
    }
    const usage = images.usage();
    const stored = usage.pageBytes + usage.manifestBytes;
    const zygoteBytes = zygote.pageIndices.length * PAGE_SIZE;
    assert.ok(
      stored <= 1.1 * zygoteBytes + ownDirty * PAGE_SIZE,
      `store holds ${stored} bytes; zygote ${zygoteBytes}, forks' own pages ${ownDirty * PAGE_SIZE}`,
    );
    // A fork's image read back from the store holds the zygote's page
    // buffers, not copies: in memory too it costs only its own pages.
    const zygotePages = new Set(images.get(zygoteId).pages);
    const last = images.get(host.kernel.vatRecord(forks[99].instanceId).imageId);
    const own = hashesOf(last).filter((h) => !zygoteHashes.has(h)).length;
    assert.equal(last.pages.filter((p) => zygotePages.has(p)).length, last.pages.length - own);
    // Each fork comes back from the store alone.
    host.kernel.dropAllSandboxes();
    const pub = host.E(forks[99].publicFacet);
    await pub.openAccount('zed');
    assert.equal(await pub.balanceOf('zed'), 0n);
    assert.deepEqual(images.verify(), []);
    });
  });

  it('collection keeps every page a live image lists and drops the rest; it runs by itself as images are replaced', async () => {
    await withHost({ snapshotEvery: 1 }, async (host) => {
    const images = host.kernel.state.images;
    const counter = host.createVat(COUNTER_VAT, { name: 'counter' }).root;
    const kit = host.startInstance(host.install(ROOT_V1, { label: 'root-vat' }));
    for (let i = 1; i <= 5; i++) await host.E(counter).add(i);
    await host.E(kit.root).setGreeting('hi');
    await host.upgrade(kit.adminFacet, ROOT_V2);
    const before = images.usage();
    const dropped = images.collect();
    host.store.commit();
    assert.ok(dropped.images > 0 && dropped.pages > 0, `collected ${JSON.stringify(dropped)}`);
    const live = liveImages(host);
    assert.deepEqual(new Set(keysUnder(host, 'img.')), live);
    const listed = new Set<string>();
    for (const id of live) for (const h of hashesOf(images.manifest(id)!)) listed.add(h);
    assert.deepEqual(new Set(keysUnder(host, 'pg.')), listed, 'exactly the pages live images list');
    assert.deepEqual(images.verify(), []);
    assert.equal(images.usage().pages, before.pages - dropped.pages);
    // Everything still loads from what is left.
    host.kernel.dropAllSandboxes();
    assert.deepEqual(await host.E(counter).read(), [15, 15]);
    assert.equal(await host.E(kit.root).greet(), 'hi from v2');
    // Replacing images keeps garbage bounded without explicit collection.
    for (let i = 0; i < 3 * COLLECT_AFTER; i++) await host.E(counter).add(1);
    assert.ok(images.usage().images <= live.size + COLLECT_AFTER, `${images.usage().images} images stored`);
    // verify names damaged and missing pages (of live images: pages only
    // replaced images listed may still wait for the next collection).
    const listedNow = new Set<string>();
    for (const id of liveImages(host)) for (const h of hashesOf(images.manifest(id)!)) listedNow.add(h);
    const [first, second] = keysUnder(host, 'pg.').filter((h) => listedNow.has(h));
    // (One at a time: verify reports the first problem of each image.)
    host.store.set(`pg.${first}`, new Uint8Array(PAGE_SIZE).fill(7));
    host.store.commit();
    assert.match(images.verify().join('\n'), /does not match its hash/);
    host.store.delete(`pg.${second}`);
    host.store.commit();
    assert.match(images.verify().join('\n'), /missing from the store/);
    });
  });

  it('an upgrade stores nothing: the new incarnation replays its start-up delivery from the base image until the policy snapshots it', async () => {
    await withHost({ snapshotEvery: 50 }, async (host) => {
    const images = host.kernel.state.images;
    const kit = host.startInstance(host.install(ROOT_V1, { label: 'root-vat' }));
    await host.E(kit.root).setGreeting('hi');
    const before = images.usage();
    await host.upgrade(kit.adminFacet, ROOT_V2);
    assert.deepEqual(images.usage(), before);
    const record = host.kernel.vatRecord(kit.instanceId);
    assert.equal(record.transcriptLength - record.snapshotPos, 1);
    const hash = host.kernel.vatMemoryHash(kit.instanceId);
    host.kernel.dropAllSandboxes();
    assert.equal(host.kernel.vatMemoryHash(kit.instanceId), hash, 'replaying the start-up delivery rebuilds the same memory');
    assert.equal(await host.E(kit.root).greet(), 'hi from v2');
    });
  });

  it('a SIGKILL during snapshots leaves a store that verifies and restores every committed delivery', async function () {
    this.timeout(300_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-pages-'));
    let printed = 0;
    // Kill at several delays after the child's first report; each delivery
    // snapshots ~10 changed pages, so kills land inside and between snapshots.
    for (const delayMs of [0, 7, 19, 41, 3]) {
      const last = await new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, [CHILD, dir, '100000'], { stdio: ['ignore', 'pipe', 'inherit'] });
        let seen = 0;
        let buf = '';
        child.stdout.on('data', (chunk: Buffer) => {
          buf += chunk.toString();
          const lines = buf.split('\n');
          buf = lines.pop()!;
          for (const l of lines) seen = Number(l);
          if (seen > printed + 2) setTimeout(() => child.kill('SIGKILL'), delayMs);
        });
        child.on('error', reject);
        child.on('exit', () => resolve(seen));
      });
      assert.ok(last > printed, `child made progress (${last} after ${printed})`);
      printed = last;
      await withHost({ path: dir, snapshotEvery: 1 }, async (host) => {
        assert.deepEqual(host.kernel.state.images.verify(), []);
        for (const id of liveImages(host)) assert.ok(host.kernel.state.images.has(id), `live image ${id} is stored`);
        const root = host.vats().find((v) => v.name === 'grower')!.root!;
        const [length, count, intact] = (await host.E(root).read()) as [number, number, boolean];
        assert.equal(length, count);
        assert.ok(count >= printed, `every reported add is there (${count} >= ${printed})`);
        assert.ok(intact);
      });
    }
  });

  it('two hosts doing the same forks, upgrades and collections store identical images and state hashes', async () => {
    const run = async () => {
      const host = await Host.open({ snapshotEvery: 2 });
      const installation = host.install(LEDGER_V1, { label: 'ledger' });
      const kits = [0, 1, 2].map((i) => host.startInstance(installation, { name: `l${i}` }));
      for (const kit of kits) await host.E(kit.creatorFacet).airdrop('a-', 20, 5n);
      await host.upgrade(kits[1].adminFacet, LEDGER_V2);
      await host.E(kits[1].publicFacet).openAccount('z');
      host.kernel.state.images.collect();
      host.store.commit();
      const ids = host.kernel.state.images.ids();
      const memory = kits.map((k) => host.kernel.vatMemoryHash(k.instanceId));
      const hash = host.stateHash();
      await host.close();
      return { ids, memory, hash };
    };
    const [a, b] = [await run(), await run()];
    assert.deepEqual(a.ids, b.ids);
    assert.deepEqual(a.memory, b.memory);
    assert.equal(a.hash, b.hash);
  });
});
