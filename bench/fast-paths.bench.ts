// Issue 16's figures, in one run: upgrade latency of an Agoric-style vat as
// its durable record count grows, zygote fork vs cold start (back to back,
// and one at a time after idle time, when a spare instance is ready), what a
// forked instance's snapshot adds to the page store, and resident memory per
// 100 live instances, cold and forked.
import v8 from 'node:v8';
import vm from 'node:vm';
import { HASH_BYTES, PAGE_SIZE } from '../host/engine/index.js';
import { Host } from '../host/index.js';
import { buildBaseImage } from '../host/kernel/base-image.js';
import { exampleContractSource } from '../host/example-contracts.js';
import { agoricStyleVat, seedRecords } from './agoric-vat.js';
import { sourceBundleFromText } from '../host/bundles/vat-bundle.js';
import { compare, fmtBytes, fmtMs, measure, verdict } from './harness.js';

const LEDGER_V1 = exampleContractSource('ledger', 'v1');
const pageKey = (hashes: Uint8Array, i: number) => Buffer.from(hashes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES)).toString('hex');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const idle = () => new Promise((r) => setTimeout(r, 20));

/**
 * Runs `fn` `n` times one at a time, after idle time, and returns the median
 * wall time and the median CPU time of this process (all its threads). On a
 * shared machine the CPU time says what the wall time would be when idle.
 */
async function oneAtATime(n: number, fn: (k: number) => unknown): Promise<{ wall: number; cpu: number }> {
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let k = 0; k < n; k++) {
    await idle();
    const c = process.cpuUsage();
    const t = performance.now();
    await fn(k);
    wall.push(performance.now() - t);
    const d = process.cpuUsage(c);
    cpu.push((d.user + d.system) / 1000);
  }
  return { wall: median(wall), cpu: median(cpu) };
}
const fmtPair = (m: { wall: number; cpu: number }) => `${fmtMs(m.wall)} (CPU ${fmtMs(m.cpu)})`;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
// V8 frees array buffers (wasm memories among them) on a background thread
// after a collection: wait for it, or memory dropped earlier (a closed host)
// would be subtracted from what is measured now.
async function rss(): Promise<number> {
  gc();
  await new Promise((r) => setTimeout(r, 500));
  gc();
  return process.memoryUsage().rss;
}

type Timing = { wall: number; cpu: number };

async function upgradeLatency(records: number): Promise<{ source: Timing; crank: Timing }> {
  const host = await Host.open({ deliveryBudget: 50_000_000_000n });
  try {
    const kit = host.startInstance(host.install(agoricStyleVat('v1'), { label: 'agoric-style' })) as { root: object; adminFacet: object };
    await seedRecords(host, kit.root, records);
    // Upgrades alternate between two v2 sources, so each one really replaces code.
    let i = 0;
    const fromSource = async () => void (await host.upgrade(kit.adminFacet, `${agoricStyleVat('v2')}\n// ${i++ % 2}`));
    const [m] = await measure([{ name: `upgrade, ${records} records`, fn: (done) => void fromSource().then(done), defer: true }]);
    // One at a time with idle time between, as upgrades arrive in practice.
    const single = await oneAtATime(15, () => fromSource());
    // The same with the v2 bundles uploaded beforehand (bundlecaps): the
    // upgrade without the host bundling source text.
    const caps = [0, 1].map((k) => {
      const sb = sourceBundleFromText(`${agoricStyleVat('v2')}\n// cap ${k}`, 'v2.js');
      host.bundles.put(sb.pieces);
      return host.bundles.install(sb.manifest);
    });
    const fromCap = await oneAtATime(15, (k) => host.upgrade(kit.adminFacet, caps[k % 2]));
    // host.upgrade runs pre-flight checks first (issue 13: trial copies of
    // the current and the next incarnation); force skips them, leaving the
    // upgrade crank itself.
    const forced = await oneAtATime(15, (k) => host.upgrade(kit.adminFacet, caps[(k + 1) % 2], { force: true })); // the last of the 15 above ran caps[0]
    const size = await (host.E(kit.root) as unknown as { size(): Promise<number> }).size();
    console.log(
      `  ${String(records).padStart(7)} records (${size} in the vat): back to back ${fmtMs(m.meanMs)} (±${m.rme.toFixed(1)}%, ${m.samples} runs); ` +
        `one at a time after idle time: median ${fmtPair(single)}; from an uploaded bundlecap: median ${fmtPair(fromCap)}; ` +
        `bundlecap without pre-flight (force): median ${fmtPair(forced)}`,
    );
    return { source: single, crank: forced };
  } finally {
    await host.close();
  }
}

export async function runFastPathsBench(): Promise<void> {
  console.log('\n== upgrade latency: Agoric-style buildRootObject vat, N durable records of one kind in baggage; v2 redefines the kind (source text, bundled by the host)');
  console.log('  (CPU: this process, all threads; the source text is bundled by esbuild\'s service process, whose CPU is not counted: compare the bundlecap column)');
  const small = await upgradeLatency(100);
  const mid = await upgradeLatency(10_000);
  const large = await upgradeLatency(100_000);
  for (const [what, pick] of [
    ['host.upgrade(source text), pre-flight included', (r: { source: Timing }) => r.source],
    ['the upgrade crank (bundlecap, force)', (r: { crank: Timing }) => r.crank],
  ] as const) {
    const [a, b, c] = [pick(small), pick(mid), pick(large)];
    verdict(`${what} <= 15 ms at every N (wall)`, Math.max(a.wall, b.wall, c.wall) <= 15, `${fmtMs(a.wall)} / ${fmtMs(b.wall)} / ${fmtMs(c.wall)}`);
    verdict(`${what} <= 15 ms at every N (CPU)`, Math.max(a.cpu, b.cpu, c.cpu) <= 15, `${fmtMs(a.cpu)} / ${fmtMs(b.cpu)} / ${fmtMs(c.cpu)}`);
    verdict(`${what} flat in N (100,000 within 1.5x of 100, CPU)`, c.cpu / a.cpu <= 1.5, `${(c.cpu / a.cpu).toFixed(2)}x`);
  }

  console.log('\n== zygote fork vs cold start (ledger contract)');
  // Default maxLoadedVats (32): idle sandboxes beyond it are unloaded, and
  // their memories serve later restores.
  const host = await Host.open();
  const installation = host.install(LEDGER_V1, { label: 'ledger' });
  const cold = await Host.open({ baseImage: () => buildBaseImage('cold') });
  const speedup = await compare(
    'starting an instance, back to back',
    { name: 'cold start (runtime + bundle + install + start)', fn: () => void cold.startInstance(cold.install(LEDGER_V1, { label: 'ledger' })) },
    { name: 'fork of the installation zygote', fn: () => void host.startInstance(installation) },
  );
  verdict('zygote fork >= 30x faster than cold start', speedup >= 30, `${speedup.toFixed(2)}x`);
  const single = await oneAtATime(30, () => host.startInstance(installation));
  const [backToBack] = await measure([{ name: 'fork', fn: () => void host.startInstance(installation) }]);
  console.log(`  fork one at a time after idle time (a spare instance ready): median ${fmtPair(single)} of 30`);
  verdict('fork <= 5 ms, one at a time (wall)', single.wall <= 5, fmtMs(single.wall));
  verdict('fork <= 5 ms, one at a time (CPU)', single.cpu <= 5, fmtMs(single.cpu));
  verdict('fork <= 5 ms, back to back', backToBack.meanMs <= 5, fmtMs(backToBack.meanMs));
  await Promise.all([host.close(), cold.close()]);

  console.log('\n== page store: what a forked instance adds (ledger; each fork snapshotted right after it starts)');
  const snap = await Host.open({ snapshotEvery: 1, maxLoadedVats: 1000 });
  const zygoteInst = snap.install(LEDGER_V1, { label: 'ledger' });
  const images = snap.kernel.state.images;
  const zygote = images.manifest(snap.kernel.vatRecord(zygoteInst.installationId).imageId)!;
  const zygoteBytes = zygote.pageIndices.length * PAGE_SIZE;
  images.collect();
  snap.store.commit();
  const stored = () => {
    const u = images.usage();
    return u.pageBytes + u.manifestBytes;
  };
  const before = stored();
  const FORKS = 50;
  const zygoteHashes = new Set(Array.from({ length: zygote.pageIndices.length }, (_, i) => pageKey(zygote.pageHashes, i)));
  let differing = 0;
  for (let k = 0; k < FORKS; k++) {
    // Each fork gets its own parameters, as real instances do.
    const kit = snap.startInstance(zygoteInst, { name: `fork-${k}`, parameters: { symbol: `T${k}` } });
    const m = images.manifest(snap.kernel.vatRecord(kit.instanceId).imageId)!;
    for (let i = 0; i < m.pageIndices.length; i++) if (!zygoteHashes.has(pageKey(m.pageHashes, i))) differing++;
  }
  images.collect();
  snap.store.commit();
  const perFork = (stored() - before) / FORKS;
  console.log(`  zygote image: ${zygote.pageIndices.length} non-zero pages, ${fmtBytes(zygoteBytes)}`);
  console.log(
    `  a fork's image differs from the zygote's in ${(differing / FORKS).toFixed(0)} pages (${fmtBytes((differing / FORKS) * PAGE_SIZE)}, ` +
      `${((differing / FORKS / zygote.pageIndices.length) * 100).toFixed(1)}% of the zygote image); forks share many of those pages with each other`,
  );
  console.log(`  store growth per fork: ${fmtBytes(perFork)} (${((perFork / zygoteBytes) * 100).toFixed(1)}% of the zygote image), over ${FORKS} forks`);
  console.log(`  (with the default policy a fork stores no image at start: it is the zygote image plus one transcript entry until its first periodic snapshot)`);
  verdict('snapshot bytes per forked instance <= 5% of the zygote image', perFork <= 0.05 * zygoteBytes, `${((perFork / zygoteBytes) * 100).toFixed(1)}%`);
  await snap.close();

  console.log('\n== resident memory per 100 live instances');
  const resident = async (label: string, make: (host: Host) => () => void, hostOptions: Parameters<typeof Host.open>[0]) => {
    const h = await Host.open({ ...hostOptions, maxLoadedVats: 1000 });
    const start = make(h);
    start(); // warm: the first instance pays for shared state (installation, zygote, base image)
    await idle();
    const r0 = await rss();
    for (let k = 0; k < 100; k++) start();
    await idle();
    const per = ((await rss()) - r0) / 100;
    console.log(`  ${label.padEnd(24)} ${fmtBytes(per)} resident per instance (RSS growth over 100 live instances)`);
    await h.close();
    return per;
  };
  // Cold: an Agoric-style vat built from scratch (fresh instance, runtime with
  // SES lockdown evaluated, its code run), as a vat without zygotes starts.
  await resident('cold', (h) => () => void h.createVat(agoricStyleVat('v1')), { baseImage: () => buildBaseImage('cold') });
  const forked = await resident('forked (ledger zygote)', (h) => {
    const inst = h.install(LEDGER_V1, { label: 'ledger' });
    return () => void h.startInstance(inst);
  }, {});
  verdict('a forked instance <= 1 MiB resident beyond its zygote', forked <= 1 << 20, fmtBytes(forked));
  console.log('  (each instance owns a private wasm linear memory; the pages restored from the zygote are copies, not shared mappings)');
}
