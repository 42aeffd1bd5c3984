// `npm run demo`: the main job, end to end on the embedded default store
// (LMDB in a temporary directory): install the example ledger, start three
// instances by zygote fork, do business, upgrade one to v2 (after a refused,
// rolled-back attempt), and print measured latencies beside cold starts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sandbox } from './engine/index.js';
import { formatReviewText, Host, reviewBundle, sourceBundleFromText, UpgradeError } from './index.js';
import { buildBaseImage } from './kernel/base-image.js';
import { exampleContractSource } from './example-contracts.js';

const contract = (version: string) => exampleContractSource('ledger', version);

const timed = async <T>(fn: () => T | Promise<T>): Promise<[T, number]> => {
  const t = performance.now();
  const value = await fn();
  return [value, performance.now() - t];
};
const ms = (n: number) => `${n.toFixed(1)} ms`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

type Kit = { instanceId: string; publicFacet: object; creatorFacet: object; adminFacet: object };

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quickvat-demo-'));
  const host = await Host.open({ path: dir });
  console.log(`quickvat demo — state in ${dir} (LMDB)\n`);

  const [installation, installMs] = await timed(() => host.install(contract('v1'), { label: 'ledger' }));
  console.log(`1. installed the ledger: installation-level init ran once, its memory image is the zygote (${ms(installMs)})`);

  const forks: number[] = [];
  const kits: Kit[] = [];
  for (const symbol of ['GOLD', 'SILVER', 'BRONZE']) {
    const [kit, t] = await timed(() => host.startInstance(installation, { parameters: { symbol }, privateArgs: {} }) as unknown as Kit);
    kits.push(kit);
    forks.push(t);
  }
  console.log(`2. started 3 instances by forking the zygote: ${kits.map((k) => k.instanceId).join(', ')} (median ${ms(median(forks))} each)`);

  const gold = kits[0];
  const E = host.E.bind(host);
  const deliveries: number[] = [];
  const send = async (p: () => Promise<unknown>) => {
    const [v, t] = await timed(p);
    deliveries.push(t);
    return v;
  };
  const alice = await send(() => E(gold.publicFacet).openAccount('alice'));
  await send(() => E(gold.publicFacet).openAccount('bob'));
  await send(() => E(gold.creatorFacet).mint('alice', 1000n));
  await send(() => E(alice).transfer('bob', 250n));
  for (let i = 0; i < 20; i++) await send(() => E(gold.publicFacet).balanceOf('alice'));
  const before = await E(gold.publicFacet).getAccountNames() as string[];
  const balances = async () => Promise.all(before.map((n) => E(gold.publicFacet).balanceOf(n)));
  console.log(`3. business on instance ${gold.instanceId}: alice minted 1000, sent 250 to bob -> balances ${JSON.stringify(await balances(), jsonBig)}`);
  await send(() => E(kits[1].publicFacet).openAccount('carol'));
  console.log(`   the other instances are independent: ${kits[1].instanceId} accounts ${JSON.stringify(await E(kits[1].publicFacet).getAccountNames())}, ${kits[2].instanceId} accounts ${JSON.stringify(await E(kits[2].publicFacet).getAccountNames())}`);

  const broken = contract('v2').replace(/defineDurableKindMulti\(\s*provideKindHandle\(instanceBaggage, 'Account'\)/, "defineDurableKindMulti(provideKindHandle(instanceBaggage, 'AccountRenamed')");
  try {
    await host.upgrade(gold.adminFacet, broken);
  } catch (err) {
    if (!(err instanceof UpgradeError)) throw err;
    console.log(`4. a broken v2 was refused and rolled back:\n   ${err.message}`);
  }
  console.log(`   v1 still serves: balances ${JSON.stringify(await balances(), jsonBig)}, info ${JSON.stringify(await E(gold.publicFacet).getInfo())}`);

  // What a voter sees: v2 against the running v1, module by module.
  const v1Bundle = sourceBundleFromText(contract('v1'), 'ledger.js');
  const v2Bundle = sourceBundleFromText(contract('v2'), 'ledger.js');
  const review = reviewBundle(v2Bundle, { against: v1Bundle, petnames: { [Object.values(v1Bundle.manifest.modules)[0].piece]: 'ledger v1 (audited)' } });
  const text = formatReviewText(review, { diffs: false });
  console.log(`5. review of v2 against v1:\n${text.split('\n').map((l) => `   ${l}`).join('\n')}`);
  const preflight = await host.preflight(gold.adminFacet, contract('v2'), { privateArgs: { feeBasisPoints: 100n } });
  console.log(`   pre-flight: ${preflight.ok ? 'no problems' : preflight.problems.map((p) => p.message).join('; ')}`);

  const shadow = await host.shadow(gold.adminFacet, contract('v2'), { privateArgs: { feeBasisPoints: 100n } });
  await E(gold.publicFacet).balanceOf('alice');
  await E(alice).transfer('bob', 200n);
  await E(gold.publicFacet).balanceOf('bob');
  const report = shadow.report();
  console.log(`6. v2 ran as a shadow beside v1 for ${report.deliveries} deliveries; ${report.differences.length} answer(s) differed:`);
  for (const d of report.differences) console.log(`   ${d.method}(${JSON.stringify(d.args, jsonBig).slice(1, -1)}): live ${JSON.stringify(d.live, jsonBig)}, shadow ${JSON.stringify(d.shadow, jsonBig)}`);

  await shadow.drop();

  // Enacted through governance: a committee vat holds the admin capability.
  const gov = host.startInstance(host.install(exampleContractSource('governance', 'v1'), { label: 'governance' }), {
    privateArgs: { adminFacet: host.adminPresence(gold.adminFacet), committee: ['alice', 'bob', 'carol'], threshold: 2, votingPeriod: 10, parameterTypes: {}, parameters: {}, expressions: {} },
  }) as unknown as Kit;
  const voters = await Promise.all(['alice', 'bob', 'carol'].map((n) => E(gov.creatorFacet).getVoterFacet(n)));
  const v2 = sourceBundleFromText(contract('v2'), 'ledger.js');
  host.bundles.put(v2.pieces);
  const proposalId = await E(voters[0]).propose('bundle', { bundlecap: host.bundlecapPresence(host.bundles.install(v2.manifest)) });
  await E(voters[0]).vote(proposalId, true);
  await E(voters[2]).vote(proposalId, true);
  const proposal = (await E(gov.publicFacet).getProposal(proposalId)) as { status: string; details: unknown };
  console.log(`7. governance: proposal ${proposalId} to run bundle ${v2.bundleId.slice(0, 12)}… is ${proposal.status} (2 of 3 votes); enacting it`);
  const [, upgradeMs] = await timed(() => E(gov.publicFacet).enact(proposalId));
  console.log(`   upgraded instance ${gold.instanceId} to ledger v2 in ${ms(upgradeMs)}: ${JSON.stringify(await E(gold.publicFacet).getInfo())}`);
  console.log(`   balances intact: ${JSON.stringify(await balances(), jsonBig)}`);
  const after = await E(alice).transfer('bob', 400n);
  console.log(`   new behaviour live: alice's presence from v1 still works; her 400 transfer now pays the default 0.25% fee -> alice has ${after}`);

  // Cold-start baselines measured in this run.
  const cold = await Host.open({
    baseImage: () => buildBaseImage('cold'),
  });
  const colds: number[] = [];
  for (let i = 0; i < 3; i++) colds.push((await timed(() => cold.startInstance(cold.install(contract('v1'), { label: 'ledger' }))))[1]);
  await cold.close();
  const direct = Sandbox.create();
  direct.evaluate('globalThis.f = () => "ok"');
  const directs: number[] = [];
  for (let i = 0; i < 20; i++) directs.push((await timed(() => direct.call('f', '')))[1]);

  console.log('\nmeasured in this run (ms)');
  const rows: [string, number, string, number][] = [
    ['start instance (zygote fork)', median(forks), 'cold start (fresh wasm + runtime + install)', median(colds)],
    ['delivery round trip via kernel', median(deliveries), 'direct call into one QuickJS instance', median(directs)],
    ['upgrade (v1 -> v2, atomic)', upgradeMs, '-', NaN],
  ];
  for (const [what, value, baseline, base] of rows) {
    const r = base / value;
    const ratio = Number.isNaN(base) ? '' : r >= 1 ? `  (${r.toFixed(1)}x faster)` : `  (${(1 / r).toFixed(0)}x slower: marshalling, c-lists, an atomic LMDB commit per block)`;
    console.log(`  ${what.padEnd(32)} ${value.toFixed(2).padStart(8)}   ${baseline.padEnd(44)} ${Number.isNaN(base) ? '' : base.toFixed(2).padStart(8)}${ratio}`);
  }
  await host.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

function jsonBig(_key: string, value: unknown) {
  return typeof value === 'bigint' ? `${value}` : value;
}

main().catch((err) => {
  console.error(`demo failed: ${(err as Error).message}`);
  process.exit(1);
});
