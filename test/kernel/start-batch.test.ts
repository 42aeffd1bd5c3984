// A start-up delivery (startVat, startInstance) holds its vatstore writes and
// sends them in one vatstoreWrites syscall (issue 16): its own reads see
// them, a getNextKey (or any other syscall) sends them first, the transcript
// replays them, and a write the kernel refuses still fails the start.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Host } from '../../host/index.js';

const vat = (version: string) => `
import { Far } from '@endo/far';
export function buildRootObject({ vatstore }) {
  vatstore.set('a', '1');
  vatstore.set('b', '2');
  vatstore.delete('a');
  vatstore.set('c', '${version}');
  const seen = [vatstore.get('a') ?? null, vatstore.get('b'), vatstore.getNextKey(''), vatstore.get('c')];
  vatstore.set('d', 'after the scan');
  return Far('root', { seen: () => seen, get: (k) => vatstore.get(k) ?? null, version: () => '${version}' });
}`;

describe('start-up deliveries batch their vatstore writes (issue 16)', function () {
  this.timeout(60_000);

  it("a start-up's reads see its held writes, a scan sends them first, and a restarted host replays them", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-batch-'));
    try {
      let host = await Host.open({ path: dir });
      const kit = host.startInstance(host.install(vat('v1'), { label: 'batched' }));
      assert.deepEqual(await host.E(kit.root).seen(), [null, '2', 'b', 'v1']);
      // An upgrade's start-up delivery stays in the transcript (no snapshot) and is replayed on restart.
      await host.upgrade(kit.adminFacet, vat('v2'));
      const id = kit.instanceId;
      const record = host.kernel.vatRecord(id);
      const entry = host.kernel.state.transcriptEntry(id, record.snapshotPos);
      const ops = entry.sc.map(([request]) => JSON.parse(request)[0] as string);
      assert.ok(!ops.includes('vatstoreSet') && !ops.includes('vatstoreDelete'), ops.join(' '));
      // Sent before the scan, so the kernel's getNextKey sees them.
      const scan = ops.indexOf('vatstoreGetNextKey');
      assert.ok(scan > 0 && ops[scan - 1] === 'vatstoreWrites', ops.join(' '));
      const [firstWrites] = entry.sc.filter(([request]) => request.startsWith('["vatstoreWrites"'));
      assert.deepEqual(JSON.parse(firstWrites[0])[1], [['user.a', null], ['user.b', '2'], ['user.c', 'v2']]);
      const hash = host.stateHash();
      await host.close();
      host = await Host.open({ path: dir });
      assert.equal(host.stateHash(), hash, 'the replayed start-up gives the same state');
      const { root } = host.instanceKit(id) as { root: object };
      assert.deepEqual(await host.E(root).seen(), [null, '2', 'b', 'v2'], 'replayed from the transcript');
      assert.equal(await host.E(root).get('d'), 'after the scan');
      assert.equal(await host.E(root).get('a'), null);
      await host.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a held write the kernel refuses fails the start-up, as a write sent at once would', async () => {
    const host = await Host.open();
    try {
      const kit = host.startInstance(host.install(vat('v1'), { label: 'batched' }));
      const bad = vat('v2').replace("vatstore.set('d', 'after the scan');", "vatstore.set('x'.repeat(2000), 'too long a key');");
      await assert.rejects(host.upgrade(kit.adminFacet, bad, { force: true }), /vatstore key is 2005 characters, above the limit of 1024/);
      assert.equal(await host.E(kit.root).version(), 'v1');
    } finally {
      await host.close();
    }
  });
});

describe("a delivery's vatstore read cache is bounded in bytes (break-16c #1)", function () {
  this.timeout(120_000);

  it('a delivery that reads many big values does not keep them (the vat memory does not grow by their size)', async () => {
    const SCANNER = `
import { Far } from '@endo/far';
export function buildRootObject({ vatstore }) {
  return Far('big', {
    fill(from, n) { const s = 'x'.repeat(60000); for (let i = from; i < from + n; i++) vatstore.set('k' + i, s + i); return n; },
    scan(n) { let total = 0; for (let i = 0; i < n; i++) total += vatstore.get('k' + i).length; return total; },
    again(n) { let same = 0; for (let i = 0; i < n; i++) if (vatstore.get('s' + (i % 8)) === vatstore.get('s' + (i % 8))) same++; return same; },
  });
}`;
    const host = await Host.open({});
    try {
      const { root, vatId } = host.createVat(SCANNER, { name: 'scanner' });
      for (let i = 0; i < 250; i += 25) await host.E(root).fill(i, 25);
      const before = host.kernel.vatMemoryBytes(vatId);
      assert.equal(await host.E(root).scan(250), 250 * 60000 + [...Array(250).keys()].reduce((n, i) => n + String(i).length, 0));
      const after = host.kernel.vatMemoryBytes(vatId);
      // 250 values of 60 kB kept alive would grow it by ~15 MB (it grew 9 MiB before the bound).
      assert.ok(after - before <= 2 * 1024 * 1024, `memory ${before} -> ${after} bytes`);
      // Small keys read again in one delivery still come from the cache.
      assert.equal(await host.E(root).again(64), 64);
    } finally {
      await host.close();
    }
  });
});
