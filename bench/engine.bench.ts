// Engine figures: zygote fork vs cold start, image sizes, metering overhead.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { compressImage, encodeImage, Sandbox, unmeteredBinary } from '../host/engine/index.js';
import { compare, fmtBytes, verdict } from './harness.js';

const require = createRequire(import.meta.url);
// Real init code of the size a vat's base image carries: SES (~507 KiB).
const INIT_SOURCE = fs.readFileSync(path.join(path.dirname(require.resolve('ses')), 'ses.umd.js'), 'utf8');
const INIT_BUDGET = 50_000_000_000n;

const CPU_WORKLOAD = `(() => {
  let s = 0; const m = new Map();
  for (let i = 0; i < 20000; i++) { m.set('k' + (i % 1000), i); s += m.get('k' + (i % 997)) | 0; }
  const a = []; for (let i = 0; i < 5000; i++) a.push({ x: (i * 7919) % 5000, y: String(i) });
  a.sort((p, q) => p.x - q.x);
  return s + JSON.stringify(a).length + 'abc'.repeat(2000).split('').reverse().join('').length;
})()`;

export async function runEngineBench(): Promise<void> {
  console.log(`\n== engine (init code: ses.umd.js, ${fmtBytes(INIT_SOURCE.length)})`);
  const coldStart = () => {
    const s = Sandbox.create({ identity: 'cold' });
    s.evaluate(INIT_SOURCE, { budget: INIT_BUDGET, filename: 'ses.umd.js' });
    return s;
  };
  const zygote = coldStart();
  const image = zygote.snapshot();
  let n = 0;
  const speedup = await compare(
    'instance creation: fork from snapshot vs cold start (fresh instance + evaluate init code)',
    { name: 'cold start', fn: () => void coldStart().dispose() },
    { name: 'fork from snapshot', fn: () => void Sandbox.fork(image, [`vat-${n++}`])[0].dispose() },
  );
  verdict('fork >= 5x faster than cold start', speedup >= 5, `${speedup.toFixed(2)}x`);

  const sparse = encodeImage(image).length;
  const compressed = compressImage(image).length;
  console.log('snapshot size after init');
  console.log(`  linear memory       ${fmtBytes(zygote.memoryBytes)}`);
  console.log(`  sparse (non-zero 4 KiB pages + header)  ${fmtBytes(sparse)}  (${image.pageIndices.length} pages)`);
  console.log(`  compressed (deflate level 1)            ${fmtBytes(compressed)}  (${((compressed / sparse) * 100).toFixed(0)}% of sparse)`);

  const metered = Sandbox.create();
  const plain = Sandbox.create({ binary: unmeteredBinary() });
  const ratio = 1 / await compare(
    'CPU-bound workload: metered vs unmetered wasm',
    { name: 'unmetered (published wasm)', fn: () => void plain.evaluate(CPU_WORKLOAD) },
    { name: 'metered (instrumented wasm)', fn: () => void metered.evaluate(CPU_WORKLOAD) },
  );
  console.log(`  gas for one run: ${metered.lastUsed} units`);
  verdict('metering overhead <= 1.6x', ratio <= 1.6, `${ratio.toFixed(2)}x`);
}
