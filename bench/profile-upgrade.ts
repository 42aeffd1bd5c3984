// Profiling driver (not part of `npm run bench`): N upgrades of an
// Agoric-style buildRootObject vat holding `records` durable records, or of
// the ledger contract. Run under `node --cpu-prof dist/bench/profile-upgrade.js`.
import { Host } from '../host/index.js';
import { exampleContractSource } from '../host/example-contracts.js';
import { agoricStyleVat, seedRecords } from './agoric-vat.js';

const [which = 'agoric', recordsText = '100', roundsText = '20'] = process.argv.slice(2);
const records = Number(recordsText);
const rounds = Number(roundsText);
const host = await Host.open({ deliveryBudget: 50_000_000_000n });
let admin: object;
let v2: string;
if (which === 'ledger') {
  const kit = host.startInstance(host.install(exampleContractSource('ledger', 'v1'), { label: 'ledger' })) as { creatorFacet: object; adminFacet: object };
  await host.E(kit.creatorFacet).airdrop('a-', records, 5n);
  admin = kit.adminFacet;
  v2 = exampleContractSource('ledger', 'v2');
} else {
  const kit = host.startInstance(host.install(agoricStyleVat('v1'), { label: 'agoric' })) as { root: object; adminFacet: object };
  await seedRecords(host, kit.root, records);
  admin = kit.adminFacet;
  v2 = agoricStyleVat('v2');
}
const times: number[] = [];
for (let i = 0; i < rounds; i++) {
  const t = performance.now();
  await host.upgrade(admin, `${v2}\n// upgrade ${i}`);
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
console.log(`${which} n=${records}: median ${times[times.length >> 1].toFixed(2)} ms, min ${times[0].toFixed(2)}, max ${times[times.length - 1].toFixed(2)}`);
await host.close();
