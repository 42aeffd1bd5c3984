// Starting a contract instance: fork of the installation's zygote image vs a
// cold start of the same contract (nothing snapshotted: fresh QuickJS
// instance, guest runtime with SES lockdown evaluated, bundle loaded,
// installation-level init, instance start).
import { Host } from '../host/index.js';
import { buildBaseImage } from '../host/kernel/base-image.js';
import { compare, verdict } from './harness.js';

import { exampleContractSource } from '../host/example-contracts.js';

export const LEDGER_V1 = exampleContractSource('ledger', 'v1');

export async function runZygoteBench(): Promise<void> {
  console.log('\n== zygotes (ledger contract)');
  const host = await Host.open();
  const installation = host.install(LEDGER_V1, { label: 'ledger' });
  // Cold: a host whose base image is rebuilt for every vat, so nothing is
  // reused from a snapshot.
  const cold = await Host.open({
    baseImage: () => buildBaseImage('cold'),
  });
  const speedup = await compare(
    'starting an instance: zygote fork vs cold start',
    { name: 'cold start (runtime + bundle + install + start)', fn: () => void cold.startInstance(cold.install(LEDGER_V1, { label: 'ledger' })) },
    { name: 'fork of the installation zygote', fn: () => void host.startInstance(installation) },
  );
  verdict('zygote fork >= 10x faster than cold start', speedup >= 10, `${speedup.toFixed(2)}x`);
  const warm = await Host.open();
  await compare(
    'for reference: install + start from the shared base image (runtime snapshotted, contract init not)',
    { name: 'install + start from base image', fn: () => void warm.startInstance(warm.install(LEDGER_V1, { label: 'ledger' })) },
    { name: 'fork of the installation zygote', fn: () => void host.startInstance(installation) },
  );
  await Promise.all([host.close(), cold.close(), warm.close()]);
}
