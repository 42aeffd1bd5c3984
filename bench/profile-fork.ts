// Profiling driver (not part of `npm run bench`): where a zygote fork and a
// base-image restore go. Run `node [--cpu-prof] dist/bench/profile-fork.js [forks]`.
import { Host } from '../host/index.js';
import { Sandbox } from '../host/engine/index.js';
import { baseImage } from '../host/kernel/base-image.js';
import { exampleContractSource } from '../host/example-contracts.js';
import { Kernel } from '../host/kernel/kernel.js';
import { VatManager } from '../host/kernel/vat-manager.js';
import { Upgrader } from '../host/kernel/upgrader.js';
import { printPhases, timePhases } from './profile-phases.js';

const forks = Number(process.argv[2] ?? '100');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const base = baseImage().image;
const restores: number[] = [];
for (let i = 0; i < 50; i++) {
  const t = performance.now();
  Sandbox.restore(base, { identity: `r${i}` }).dispose();
  restores.push(performance.now() - t);
}
console.log(`restore of the base image (${base.pageIndices.length} pages): median ${median(restores).toFixed(2)} ms`);
const host = await Host.open();
const installation = host.install(exampleContractSource('ledger', 'v1'), { label: 'ledger' });
const times: number[] = [];
const cpu: number[] = [];
for (let i = 0; i < forks; i++) {
  const t = performance.now();
  const c = process.cpuUsage();
  host.startInstance(installation);
  const d = process.cpuUsage(c);
  times.push(performance.now() - t);
  cpu.push((d.user + d.system) / 1000);
}
console.log(`fork: median ${median(times).toFixed(2)} ms of ${forks} (process CPU time: median ${median(cpu).toFixed(2)} ms)`);
await host.close();

// With idle time between forks, the spare instance is ready each time.
const host2 = await Host.open();
const inst2 = host2.install(exampleContractSource('ledger', 'v1'), { label: 'ledger' });
timePhases([
  [Host.prototype, 'startInstance', 'host.startInstance'],
  [Upgrader.prototype, 'startInstance', '  kernel: the fork crank (vatstore copy, delivery, snapshot policy)'],
  [Kernel.prototype, 'vatstoreCopy', '    read the zygote vatstore'],
  [VatManager.prototype, 'load', '    restore the zygote image'],
  [Sandbox, 'restore', '      Sandbox.restore'],
  [VatManager.prototype, 'deliver', '    startInstance delivery (restore included)'],
  [Kernel.prototype, 'commit', '  commit'],
]);
const idle: number[] = [];
for (let i = 0; i < forks; i++) {
  await new Promise((r) => setTimeout(r, 5));
  const t = performance.now();
  host2.startInstance(inst2);
  idle.push(performance.now() - t);
}
console.log(`fork after idle time: median ${median(idle).toFixed(2)} ms of ${forks}`);
printPhases(forks);
await host2.close();
