// Pre-flight cost does not grow with the records (issue 13): it reads a
// bounded sample per durable kind (oldest, newest, evenly spaced between)
// through the new version, and its trial vats read the committed vatstore
// through an overlay instead of copying it. Target: an instance with 100,000
// records pre-flights in at most 2x the time of one with 100.
import { Host, sourceBundleFromText } from '../host/index.js';
import { SHOP_GOOD, SHOP_V1 } from '../test/fixtures/shop-contracts.js';
import { measure, fmtMs, verdict } from './harness.js';

const PER_DELIVERY = 1000;

export async function runPreflightBench(): Promise<void> {
  console.log('\n== pre-flight');
  const host = await Host.open();
  try {
    const installation = host.install(SHOP_V1, { label: 'shop' });
    const small = host.startInstance(installation) as { publicFacet: object; adminFacet: object };
    const large = host.startInstance(installation) as { publicFacet: object; adminFacet: object };
    await host.E(small.publicFacet).addMany('r', 100);
    for (let made = 0; made < 100_000; made += PER_DELIVERY) await host.E(large.publicFacet).addMany('r', PER_DELIVERY);
    const counts = [await host.E(small.publicFacet).count(), await host.E(large.publicFacet).count()];
    const sb = sourceBundleFromText(SHOP_GOOD, 'v2.js');
    host.bundles.put(sb.pieces);
    const v2 = host.bundles.install(sb.manifest);
    const check = async (kit: { adminFacet: object }) => {
      const r = await host.preflight(kit.adminFacet, v2);
      if (!r.ok) throw new Error(`pre-flight should pass: ${JSON.stringify(r.problems)}`);
    };
    const [a, b] = await measure([
      { name: `pre-flight, ${counts[0]} records`, fn: (done: () => void) => void check(small).then(done), defer: true },
      { name: `pre-flight, ${counts[1]} records`, fn: (done: () => void) => void check(large).then(done), defer: true },
    ]);
    const ratio = b.meanMs / a.meanMs;
    console.log('pre-flight time: 100,000 records vs 100 records (same v2, same host)');
    console.log(`  ${a.name.padEnd(44)} ${fmtMs(a.meanMs)}  (±${a.rme.toFixed(1)}%, ${a.samples} runs)`);
    console.log(`  ${b.name.padEnd(44)} ${fmtMs(b.meanMs)}  (±${b.rme.toFixed(1)}%, ${b.samples} runs)`);
    console.log(`  ratio: ${ratio.toFixed(2)}x`);
    verdict('100,000 records <= 2x 100 records', ratio <= 2, `${ratio.toFixed(2)}x`);
  } finally {
    await host.close();
  }
}
