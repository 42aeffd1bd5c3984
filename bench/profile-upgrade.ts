// Profiling driver (not part of `npm run bench`): N upgrades of an
// Agoric-style buildRootObject vat holding `records` durable records, or of
// the ledger contract, from bundlecaps uploaded beforehand (so esbuild's
// bundling is not in the profile). Mode `force` skips pre-flight.
// Run under `node --cpu-prof dist/bench/profile-upgrade.js [agoric|ledger] [records] [rounds] [default|force]`.
import { Host } from '../host/index.js';
import { exampleContractSource } from '../host/example-contracts.js';
import { sourceBundleFromText } from '../host/bundles/vat-bundle.js';
import { agoricStyleVat, seedRecords } from './agoric-vat.js';
import { Sandbox } from '../host/engine/index.js';
import { Kernel } from '../host/kernel/kernel.js';
import { VatManager } from '../host/kernel/vat-manager.js';
import { ChangeChecks } from '../host/upgrade/change-checks.js';
import { PreflightSession } from '../host/upgrade/preflight.js';
import { printPhases, timePhases } from './profile-phases.js';


const [which = 'agoric', recordsText = '100', roundsText = '20', mode = 'default'] = process.argv.slice(2);
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
const caps = [0, 1].map((k) => {
  const sb = sourceBundleFromText(`${v2}\n// cap ${k}`, 'v2.js');
  host.bundles.put(sb.pieces);
  return host.bundles.install(sb.manifest);
});
timePhases([
  [ChangeChecks.prototype, 'upgradeChecks', 'pre-flight: inspect the current incarnation (on a clone of its live sandbox)'],
  [Kernel.prototype, 'upgradeVat', 'upgrade crank (kernel.upgradeVat)'],
  [VatManager.prototype, 'startIncarnation', '  restore the base image + startVat + the checks on the started sandbox'],
  [Sandbox, 'restore', '    restore the base image'],
  [Sandbox.prototype, 'clone', '  Sandbox.clone (the current incarnation and the started one; counted in their phases too)'],
  [PreflightSession.prototype, 'judge', '  inspect + judge the new incarnation (clone included)'],
  [Kernel.prototype, 'commit', 'commit'],
]);
const times: number[] = [];
const cpu: number[] = [];
for (let i = 0; i < rounds; i++) {
  const c = process.cpuUsage();
  const t = performance.now();
  await host.upgrade(admin, caps[i % 2], { force: mode === 'force' });
  const d = process.cpuUsage(c);
  cpu.push((d.user + d.system) / 1000);
  times.push(performance.now() - t);
  // Idle time between upgrades, as they arrive in practice (the instance pool refills).
  await new Promise((r) => setTimeout(r, 10));
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`${which} n=${records} ${mode}: median ${med(times).toFixed(2)} ms (CPU ${med(cpu).toFixed(2)}), min ${Math.min(...times).toFixed(2)}, max ${Math.max(...times).toFixed(2)}`);
printPhases(rounds);
await host.close();
