import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Host } from '../../host/index.js';
import { COUNTER_VAT } from '../fixtures/vats.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'kernel-child.js');
const tmpdir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'qv-kernel-'));

/** Runs the child until it has printed `killAfter` lines, then SIGKILLs it. Returns the last number printed. */
function runAndKill(dir: string, total: number, killAfter: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(total)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let last = 0;
    let seen = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const l of lines) {
        last = Number(l);
        seen++;
      }
      if (seen >= killAfter) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('exit', () => resolve(last));
  });
}

async function referenceHash(adds: number): Promise<string> {
  const host = await Host.open({ snapshotEvery: 7 });
  const { root } = host.createVat(COUNTER_VAT, { name: 'counter' });
  for (let i = 1; i <= adds; i++) await host.E(root).add(i);
  const hash = host.stateHash();
  await host.close();
  return hash;
}

describe('kernel: crash safety and restart', () => {
  it('reopens a host with its vats at their last committed state', async () => {
    const dir = tmpdir();
    let host = await Host.open({ path: dir, snapshotEvery: 4 });
    const { root } = host.createVat(COUNTER_VAT, { name: 'counter' });
    for (let i = 1; i <= 10; i++) await host.E(root).add(1);
    const hash = host.stateHash();
    await host.close();

    host = await Host.open({ path: dir, snapshotEvery: 4 });
    assert.equal(host.stateHash(), hash);
    const again = host.vats()[0].root!;
    // Heap state (restored from the snapshot, then replayed) and vatstore both survive.
    assert.deepEqual(await host.E(again).read(), [10, 10]);
    assert.equal(await host.E(again).add(1), 11);
    await host.close();
  });

  it('survives SIGKILL at several points with all committed work and the reference state hash', async function () {
    this.timeout(300_000);
    const dir = tmpdir();
    const total = 60;
    let printed = 0;
    for (const killAfter of [1, 9, 23]) {
      const last = await runAndKill(dir, total, killAfter);
      assert.ok(last > printed, `child should make progress (printed ${last} after ${printed})`);
      printed = last;
    }
    // Reopen and hash before sending anything: the reopened host must equal an
    // uninterrupted run fed the same committed inputs.
    let host = await Host.open({ path: dir, snapshotEvery: 7 });
    const committed = host.kernel.state.count('inputs');
    assert.ok(committed >= printed, `every add the child reported (${printed}) is committed (${committed})`);
    const hash = host.stateHash();
    await host.close();
    assert.equal(hash, await referenceHash(committed));

    // And the vat answers with everything that was committed, heap and vatstore.
    host = await Host.open({ path: dir, snapshotEvery: 7 });
    const root = host.vats().find((v) => v.name === 'counter')!.root!;
    const sum = (committed * (committed + 1)) / 2;
    assert.deepEqual(await host.E(root).read(), [sum, sum]);
    await host.close();
  });

  it('an uninterrupted reference run is reproducible', async () => {
    assert.equal(await referenceHash(12), await referenceHash(12));
  });
});
