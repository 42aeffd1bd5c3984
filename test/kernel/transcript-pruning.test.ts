// Transcript pruning (issue #10 review: "transcripts never pruned"): with
// keepTranscripts false a vat's transcript keeps only what replay needs, so
// the store stops growing with every delivery; the default keeps everything,
// as Agoric's swing-store does.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Host } from '../../host/index.js';

const COUNTER = `
  import { Far } from '@endo/far';
  export function buildRootObject(_vatPowers, _params, baggage) {
    if (!baggage.has('n')) baggage.init('n', 0);
    return Far('counter', { bump() { baggage.set('n', baggage.get('n') + 1); return baggage.get('n'); } });
  }`;

function transcriptKeys(host: Host, vat: string): number {
  let n = 0;
  for (const _ of host.store.entries(`k.t.${vat}.`)) n++;
  return n;
}

async function bumps(host: Host, root: object, n: number): Promise<number> {
  let last = 0;
  for (let i = 0; i < n; i++) last = (await host.E(root as never).bump()) as number;
  return last;
}

describe('kernel: transcript pruning (keepTranscripts)', () => {
  it('keeps only the entries since the last snapshot, and the vat replays and answers after a restart', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-prune-'));
    try {
      let host = await Host.open({ path: dir, keepTranscripts: false, snapshotEvery: 5 });
      const { root, vatId } = host.createVat(COUNTER, { name: 'counter' });
      assert.equal(await bumps(host, root, 40), 40);
      const kept = transcriptKeys(host, vatId);
      assert.ok(kept <= 6, `at most a snapshot interval of entries is kept, got ${kept}`);
      await host.close();
      host = await Host.open({ path: dir, keepTranscripts: false, snapshotEvery: 5 });
      assert.equal(await host.E(host.vats().find((v) => v.vatId === vatId)!.root as never).bump(), 41);
      await host.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps the whole transcript by default', async () => {
    const host = await Host.open({ snapshotEvery: 5 });
    try {
      const { root, vatId } = host.createVat(COUNTER, { name: 'counter' });
      await bumps(host, root, 20);
      assert.ok(transcriptKeys(host, vatId) >= 21);
    } finally {
      await host.close();
    }
  });

  it('two hosts that prune end with identical state hashes', async () => {
    const run = async () => {
      const host = await Host.open({ keepTranscripts: false, snapshotEvery: 3, maxLoadedVats: 1 });
      const a = host.createVat(COUNTER, { name: 'a' });
      const b = host.createVat(COUNTER, { name: 'b' });
      for (let i = 0; i < 10; i++) await Promise.all([host.E(a.root as never).bump(), host.E(b.root as never).bump()]);
      const hash = host.stateHash();
      await host.close();
      return hash;
    };
    assert.equal(await run(), await run());
  });

  it('refuses a keepTranscripts that is not a boolean, naming the option', async () => {
    await assert.rejects(Host.open({ keepTranscripts: 'no' as never }), /keepTranscripts must be a boolean/);
  });
});
