// Engine figures: zygote fork vs cold start, image sizes, metering overhead.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { benchBinary, compressImage, encodeImage, Sandbox, unmeteredBinary } from '../host/engine/index.js';
import { instrument } from '../host/engine/build-wasm.js';
import { publishedWasmPath } from '../host/engine/quickjs-build.js';
import { compare, fmtBytes, fmtMs, measure, verdict } from './harness.js';

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
// Where the stack guard costs most: a wasm call per JS call, little else.
const CALL_WORKLOAD = `(() => {
  const fib = (n) => (n < 2 ? n : fib(n - 1) + fib(n - 2));
  return fib(20);
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

  // One run, three builds of the same QuickJS: published, metered only,
  // metered + native stack guard (what vats run).
  const plain = Sandbox.create({ binary: unmeteredBinary() });
  const meterOnly = Sandbox.create({
    binary: benchBinary('metered, no stack guard', instrument(fs.readFileSync(publishedWasmPath()), { stackGuard: false })),
  });
  const guarded = Sandbox.create();
  for (const [title, workload] of [
    ['CPU-bound workload', CPU_WORKLOAD],
    ['call-heavy workload (fib(20), ~22k JS calls)', CALL_WORKLOAD],
  ] as const) {
    const [p, m, g] = await measure([
      { name: 'unmetered (published wasm)', fn: () => void plain.evaluate(workload) },
      { name: 'metered only', fn: () => void meterOnly.evaluate(workload) },
      { name: 'metered + stack guard (production)', fn: () => void guarded.evaluate(workload) },
    ]);
    console.log(`${title}: unmetered vs metered vs metered + stack guard`);
    for (const r of [p, m, g]) console.log(`  ${r.name.padEnd(44)} ${fmtMs(r.meanMs)}  (±${r.rme.toFixed(1)}%, ${r.samples} runs)`);
    console.log(`  gas for one run: ${guarded.lastUsed} units`);
    const metering = g.meanMs / p.meanMs;
    const guard = g.meanMs / m.meanMs;
    console.log(`  metering + guard vs unmetered ${metering.toFixed(2)}x; guard vs metering only ${guard.toFixed(2)}x`);
    if (workload === CPU_WORKLOAD) {
      verdict('metering overhead <= 1.6x', metering <= 1.6, `${metering.toFixed(2)}x`);
      verdict('stack guard overhead <= 1.15x over metering only', guard <= 1.15, `${guard.toFixed(2)}x`);
    }
  }
}
