// Upgrade latency of the ledger contract as its durable record count grows:
// an upgrade touches kinds, not records, so it should stay flat.
import { Host } from '../host/index.js';
import { fmtMs, verdict } from './harness.js';

import { exampleContractSource } from '../host/example-contracts.js';

const source = (v: string) => exampleContractSource('ledger', v);

const BATCH = 5000;

async function upgradeLatency(accounts: number, v1: string, v2: string): Promise<{ median: number; all: number[] }> {
  const host = await Host.open({ deliveryBudget: 50_000_000_000n });
  try {
    const kit = host.startInstance(host.install(v1, { label: 'ledger' })) as { creatorFacet: object; adminFacet: object };
    for (let done = 0; done < accounts; done += BATCH) {
      await host.E(kit.creatorFacet).airdrop(`a${done}-`, Math.min(BATCH, accounts - done), 5n);
      if (accounts > BATCH) process.stderr.write(`  seeding ${Math.min(done + BATCH, accounts)}/${accounts} accounts\n`);
    }
    const records = [...host.store.entries(`k.vs.${(kit as unknown as { instanceId: string }).instanceId}.d.vo.`)].length;
    // Alternate v2 and v1-as-v2 upgrades so every attempt really replaces code.
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await host.upgrade(kit.adminFacet, i % 2 === 0 ? v2 : `${v2}\n// upgrade ${i}`);
      times.push(performance.now() - t);
    }
    const sorted = [...times].sort((a, b) => a - b);
    console.log(`  ${String(accounts).padStart(6)} accounts (${records} durable records): median ${fmtMs(sorted[2])} of 5 upgrades (min ${fmtMs(sorted[0])}, max ${fmtMs(sorted[4])})`);
    return { median: sorted[2], all: times };
  } finally {
    await host.close();
  }
}

export async function runUpgradeBench(): Promise<void> {
  console.log('\n== upgrade latency (ledger v1 -> v2, then v2 -> v2 with changed source)');
  const [v1, v2] = [source('v1'), source('v2')];
  const small = await upgradeLatency(100, v1, v2);
  await upgradeLatency(10_000, v1, v2);
  const large = await upgradeLatency(100_000, v1, v2);
  const ratio = large.median / small.median;
  verdict('100,000-account upgrade within 1.5x of the 100-account one', ratio <= 1.5, `${ratio.toFixed(2)}x`);
}
