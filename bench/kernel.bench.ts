// Kernel figures: delivery rate through the kernel vs a direct call into one
// QuickJS instance, and restart time with a long transcript to replay.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sandbox } from '../host/engine/index.js';
import { Host } from '../host/index.js';
import { compare, fmtMs } from './harness.js';

const VAT = `
  import { Far } from '@endo/far';
  export function buildRootObject({ vatstore }) {
    let n = 0;
    return Far('bench', {
      trivial() { return 'ok'; },
      write(k) { n += 1; vatstore.set('k.' + k, String(n)); return n; },
    });
  }`;

const DIRECT = `
  const store = new Map(); let n = 0;
  globalThis.trivial = () => 'ok';
  globalThis.write = (k) => { n += 1; store.set('k.' + k, String(n)); return String(n); };
`;

export async function runKernelBench(): Promise<void> {
  console.log('\n== kernel (each kernel op: host.E round trip = input commit + delivery crank commit)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-bench-kernel-'));
  const durable = await Host.open({ path: dir });
  const temporary = await Host.open();
  const direct = Sandbox.create();
  direct.evaluate(DIRECT);
  const sender = (host: Host) => {
    const { root } = host.createVat(VAT, { name: 'bench' });
    return (method: string, arg?: number) => (done: () => void) => {
      host.E(root)[method](arg).then(done, (e: Error) => {
        console.error(e);
        process.exit(1);
      });
    };
  };
  const send = sender(durable);
  const sendTemp = sender(temporary);
  await compare(
    'deliveries per second, trivial method: through the kernel (durable store, fsync per commit) vs a direct call into one QuickJS instance',
    { name: 'direct call (engine only)', fn: () => void direct.call('trivial', '') },
    { name: 'host.E(root).trivial() via kernel', fn: send('trivial'), defer: true },
  );
  await compare(
    'same, kernel on a temporary store (no fsync)',
    { name: 'direct call (engine only)', fn: () => void direct.call('trivial', '') },
    { name: 'host.E(root).trivial() via kernel, temp store', fn: sendTemp('trivial'), defer: true },
  );
  let k = 0;
  await compare(
    'deliveries per second, method writing the vatstore: kernel vs direct call (heap Map)',
    { name: 'direct call writing a heap Map', fn: () => void direct.call('write', String(k++)) },
    { name: 'host.E(root).write(k) via kernel', fn: (done: () => void) => send('write', k++)(done), defer: true },
  );
  await durable.close();
  await temporary.close();
  fs.rmSync(dir, { recursive: true, force: true });
  await restartBench();
}

async function restartBench(): Promise<void> {
  const entries = 10_000;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-bench-restart-'));
  let host = await Host.open({ path: dir, snapshotEvery: 1_000_000 });
  const { root } = host.createVat(VAT, { name: 'bench' });
  const t0 = performance.now();
  for (let i = 0; i < entries; i++) {
    await host.E(root).write(i);
    if ((i + 1) % 2000 === 0) process.stderr.write(`  restart bench: ${i + 1}/${entries} deliveries recorded\n`);
  }
  console.log(`restart with ${entries} transcript entries since the last snapshot (recording them took ${fmtMs(performance.now() - t0)})`);
  await host.close();
  const times: number[] = [];
  for (let run = 0; run < 3; run++) {
    const t = performance.now();
    host = await Host.open({ path: dir, snapshotEvery: 1_000_000 });
    host.kernel.loadAll();
    times.push(performance.now() - t);
    await host.close();
  }
  times.sort((a, b) => a - b);
  console.log(`  Host.open + bring the vat back (snapshot + replay of ${entries}): median ${fmtMs(times[1])} of 3 (min ${fmtMs(times[0])}, max ${fmtMs(times[2])})`);
  console.log(`  per replayed delivery: ${fmtMs(times[1] / entries)}`);
  fs.rmSync(dir, { recursive: true, force: true });
}
