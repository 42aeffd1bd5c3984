// Issue 16's figures, in one run: upgrade latency of an Agoric-style vat as
// its durable record count grows, zygote fork vs cold start (back to back,
// and one at a time after idle time, when a spare instance is ready), what a
// forked instance's snapshot adds to the page store, and resident memory per
// 100 live instances, cold and forked.
import v8 from 'node:v8';
import vm from 'node:vm';
import { HASH_BYTES, instancePoolStats, PAGE_SIZE } from '../host/engine/index.js';
import { Host } from '../host/index.js';
import { buildBaseImage } from '../host/kernel/base-image.js';
import { exampleContractSource } from '../host/example-contracts.js';
import { agoricStyleVat, seedRecords } from './agoric-vat.js';
import { sourceBundleFromText } from '../host/bundles/vat-bundle.js';
import { alternate, fmtBytes, fmtMs, fmtTiming, measure, verdict, type Timing } from './harness.js';

const LEDGER_V1 = exampleContractSource('ledger', 'v1');
const pageKey = (hashes: Uint8Array, i: number) => Buffer.from(hashes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES)).toString('hex');
const idle = () => new Promise((r) => setTimeout(r, 20));

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

interface UpgradeTimings {
  readonly checked: Timing;
  readonly forced: Timing;
}

async function upgradeLatency(records: number): Promise<UpgradeTimings> {
  const host = await Host.open({ deliveryBudget: 50_000_000_000n });
  try {
    const kit = host.startInstance(host.install(agoricStyleVat('v1'), { label: 'agoric-style' })) as { root: object; adminFacet: object };
    await seedRecords(host, kit.root, records);
    // The v2 bundles uploaded beforehand (bundlecaps); upgrades alternate
    // between two of them, so each one really replaces code.
    const caps = [0, 1].map((k) => {
      const sb = sourceBundleFromText(`${agoricStyleVat('v2')}\n// cap ${k}`, 'v2.js');
      host.bundles.put(sb.pieces);
      return host.bundles.install(sb.manifest);
    });
    let n = 0;
    const next = () => caps[n++ % 2];
    // host.upgrade runs pre-flight by default (issue 13: the current
    // incarnation inspected, the new one judged inside the upgrade's crank);
    // force skips it. Interleaved, so the ratio is measured under one load.
    const [checked, forced] = await alternate([() => host.upgrade(kit.adminFacet, next()), () => host.upgrade(kit.adminFacet, next(), { force: true })], 12);
    // From source text: the host bundles it first (esbuild, in its own process: not in the CPU column).
    let m = 0;
    const [fromSource] = await alternate([() => host.upgrade(kit.adminFacet, `${agoricStyleVat('v2')}\n// source ${m++ % 2}`)], 8);
    const size = await (host.E(kit.root) as unknown as { size(): Promise<number> }).size();
    console.log(
      `  ${String(records).padStart(7)} records (${size} in the vat): host.upgrade(bundlecap) ${fmtTiming(checked)}; ` +
        `with force (no pre-flight) ${fmtTiming(forced)}; pre-flight adds ${fmtMs(checked.cpu - forced.cpu)} CPU; from source text ${fmtTiming(fromSource)}`,
    );
    return { checked, forced };
  } finally {
    await host.close();
  }
}

export async function runFastPathsBench(): Promise<void> {
  console.log('\n== upgrade latency: Agoric-style buildRootObject vat, N durable records of one kind in baggage; v2 redefines the kind');
  console.log('  (medians of 12, one at a time after 20 ms idle, checked and forced upgrades interleaved ABBA; CPU: this process, all threads)');
  const small = await upgradeLatency(100);
  const mid = await upgradeLatency(10_000);
  const large = await upgradeLatency(100_000);
  for (const [what, pick] of [
    ['host.upgrade, pre-flight included (the default)', (r: UpgradeTimings) => r.checked],
    ['the upgrade crank alone (force)', (r: UpgradeTimings) => r.forced],
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
  const [coldT, forkT] = await alternate([() => cold.startInstance(cold.install(LEDGER_V1, { label: 'ledger' })), () => host.startInstance(installation)], 8, 20, [2, 6]);
  console.log('  one at a time after 20 ms idle, interleaved ABBA (2 cold starts, then 6 forks, ...), medians of 16 and 48:');
  console.log(`  cold start (runtime + bundle + install + start)  ${fmtTiming(coldT)}`);
  console.log(`  fork of the installation zygote                  ${fmtTiming(forkT)}`);
  verdict('zygote fork >= 30x faster than cold start (wall)', coldT.wall / forkT.wall >= 30, `${(coldT.wall / forkT.wall).toFixed(2)}x`);
  verdict('zygote fork >= 30x faster than cold start (CPU)', coldT.cpu / forkT.cpu >= 30, `${(coldT.cpu / forkT.cpu).toFixed(2)}x`);
  const served = instancePoolStats();
  const [single] = await alternate([() => host.startInstance(installation)], 30);
  const now = instancePoolStats();
  console.log(
    `  fork one at a time after idle time: median ${fmtTiming(single)} of 30 ` +
      `(instances from spares filled with the zygote image ahead of time: ${now.filled - served.filled}, clean spares: ${now.clean - served.clean}, ` +
      `recycled memories: ${now.recycled - served.recycled}, fresh: ${now.fresh - served.fresh})`,
  );
  verdict('fork <= 5 ms, one at a time (wall)', single.wall <= 5, fmtMs(single.wall));
  verdict('fork <= 5 ms, one at a time (CPU)', single.cpu <= 5, fmtMs(single.cpu));
  const [backToBack] = await measure([{ name: 'fork', fn: () => void host.startInstance(installation) }]);
  console.log(`  fork back to back (benchmark.js, no idle time: no spare instance, recycled memories): ${fmtMs(backToBack.meanMs)} (±${backToBack.rme.toFixed(1)}%)`);
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
  const resident = async (label: string, make: (host: Host) => () => string, hostOptions: Parameters<typeof Host.open>[0]) => {
    const h = await Host.open({ ...hostOptions, maxLoadedVats: 1000 });
    const start = make(h);
    start(); // warm: the first instance pays for shared state (installation, zygote, base image)
    await idle();
    const r0 = await rss();
    const vats: string[] = [];
    for (let k = 0; k < 100; k++) vats.push(start());
    await idle();
    const per = ((await rss()) - r0) / 100;
    // What each instance's memory holds: its non-zero pages, all private copies.
    let pages = 0;
    for (const vat of vats) pages += h.kernel.manager(vat).sandboxForTests.snapshot().pageIndices.length;
    const copied = (pages / vats.length) * PAGE_SIZE;
    console.log(
      `  ${label.padEnd(24)} ${fmtBytes(per)} resident per instance (RSS growth over 100 live instances); ` +
        `its linear memory has ${fmtBytes(copied)} of non-zero pages (private); the rest, ${fmtBytes(per - copied)}, is V8 and kernel state`,
    );
    await h.close();
    return { per, copied };
  };
  // Cold: an Agoric-style vat built from scratch (fresh instance, runtime with
  // SES lockdown evaluated, its code run), as a vat without zygotes starts.
  await resident('cold', (h) => () => h.createVat(agoricStyleVat('v1')).vatId, { baseImage: () => buildBaseImage('cold') });
  let zygotePages = 0;
  const forked = await resident('forked (ledger zygote)', (h) => {
    const inst = h.install(LEDGER_V1, { label: 'ledger' });
    zygotePages = h.kernel.state.images.manifest(h.kernel.vatRecord(inst.installationId).imageId)!.pageIndices.length;
    return () => h.startInstance(inst).instanceId;
  }, {});
  console.log(`  the zygote image: ${fmtBytes(zygotePages * PAGE_SIZE)} of non-zero pages, which every fork's memory holds a private copy of`);
  verdict('a forked instance <= 1 MiB resident beyond its zygote', forked.per <= 1 << 20, fmtBytes(forked.per));
  console.log(
    '  (WebAssembly gives each instance its own linear memory, and Node/V8 offers no copy-on-write mapping between two memories: ' +
      'a restored page is a private copy, so a fork keeps the zygote image resident once more; only pages never touched stay unbacked)',
  );
}
