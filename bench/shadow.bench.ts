// The price of shadow validation: a live delivery with a shadow attached
// (the shadow gets the same delivery right after the live commit) vs without.
import { Host } from '../host/index.js';
import { compare } from './harness.js';

const QUOTER = (rule: string) => `
import { provideKindHandle, defineDurableKind } from '@quickvat/vat-data';
export const defineInstallationKinds = () => (baggage) => {
  const make = defineDurableKind(provideKindHandle(baggage, 'Quoter'), () => ({ calls: 0 }), {
    quote({ state }, amount) { state.calls += 1; return ${rule}; },
  });
  return () => ({ publicFacet: make() });
};`;

export async function runShadowBench(): Promise<void> {
  console.log('\n== shadow');
  const host = await Host.open();
  const installation = host.install(QUOTER('amount / 100n'), { label: 'fees' });
  const plain = host.startInstance(installation) as { publicFacet: object };
  const shadowed = host.startInstance(installation) as { publicFacet: object; adminFacet: object };
  const shadow = await host.shadow(shadowed.adminFacet, QUOTER('amount >= 1000n ? amount / 50n : amount / 100n'));
  let n = 0n;
  const quote = (facet: object) => (done: () => void) => void host.E(facet).quote((n += 7n)).then(done);
  await compare(
    'live delivery round trip: with a shadow attached vs without',
    { name: 'no shadow', fn: quote(plain.publicFacet), defer: true },
    { name: 'with shadow', fn: quote(shadowed.publicFacet), defer: true },
  );
  const report = shadow.report();
  console.log(`  the shadow saw ${report.deliveries} deliveries, ${report.differences.length} answers differed`);
  await shadow.drop();
  await host.close();
}
