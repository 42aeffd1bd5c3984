// host.upgrade runs pre-flight inside its own crank (issue 16): the current
// incarnation is inspected on a clone of its live sandbox, the new one on a
// clone of the sandbox the upgrade started, and a problem rolls the crank
// back. These tests check that the checks
// leave no trace: a checked upgrade ends in exactly the state a forced one
// does, and a refused one in exactly the state before it.
import assert from 'node:assert/strict';
import { Host, PreflightRefused, type InstanceKit } from '../../host/index.js';
import { V1, V2_MIGRATES, V2_MISSING_KIND } from '../fixtures/upgrade-contracts.js';

type Kit = InstanceKit & { publicFacet: object };
type Counter = { increment(by?: bigint): Promise<bigint>; read(): Promise<bigint>; history(): Promise<unknown[]> };

async function withCounters(): Promise<{ host: Host; kit: Kit; counters: Counter[] }> {
  const host = await Host.open();
  const kit = host.startInstance(host.install(V1, { label: 'counters' })) as Kit;
  const pub = host.E(kit.publicFacet) as unknown as { makeCounter(name: string, n: bigint): Promise<Counter> };
  const counters: Counter[] = [];
  for (let i = 0; i < 40; i++) counters.push(await pub.makeCounter(`c${i}`, BigInt(i)));
  await host.E(counters[3] as object).increment(2n);
  return { host, kit, counters };
}

describe('pre-flight inside the upgrade crank (issue 16)', function () {
  this.timeout(60_000);

  it('a checked upgrade leaves exactly the state a forced one does: inspection (which migrates sampled records) reaches neither the store nor the live heap', async () => {
    const [a, b] = [await withCounters(), await withCounters()];
    try {
      assert.equal(a.host.stateHash(), b.host.stateHash(), 'same inputs, same state');
      // V2_MIGRATES: every sampled record is migrated while pre-flight reads it.
      assert.deepEqual(await a.host.upgrade(a.kit.adminFacet, V2_MIGRATES), { incarnation: 2 });
      assert.deepEqual(await b.host.upgrade(b.kit.adminFacet, V2_MIGRATES, { force: true }), { incarnation: 2 });
      assert.equal(a.host.stateHash(), b.host.stateHash(), 'checked and forced upgrades end in the same state');
      for (const { host, counters } of [a, b]) {
        assert.equal(await host.E(counters[3] as object).increment(1n), 15n);
        assert.deepEqual(await host.E(counters[5] as object).history(), ['migrated from 0']);
      }
      assert.equal(a.host.stateHash(), b.host.stateHash(), 'and stay in step afterwards');
    } finally {
      await Promise.all([a.host.close(), b.host.close()]);
    }
  });

  it('a refused upgrade rolls its crank back: same state as before, the old incarnation answers', async () => {
    const { host, kit, counters } = await withCounters();
    try {
      const before = host.stateHash();
      // Refused when the new incarnation fails to start (kind not redefined) ...
      await assert.rejects(host.upgrade(kit.adminFacet, V2_MISSING_KIND), (err: Error) => {
        assert.ok(err instanceof PreflightRefused, String(err));
        assert.deepEqual(err.problems.map((p) => p.code), ['kind-not-redefined']);
        return true;
      });
      assert.equal(host.stateHash(), before);
      // ... and when it starts but reading stored records through it fails.
      const cursed = V2_MIGRATES.replace("old.count === 666n", 'true');
      const live = host.kernel.manager(kit.instanceId).sandboxForTests;
      await assert.rejects(host.upgrade(kit.adminFacet, cursed), (err: Error) => {
        assert.ok(err instanceof PreflightRefused, String(err));
        assert.ok(err.problems.some((p) => p.code === 'migrate-threw'), JSON.stringify(err.problems));
        return true;
      });
      // The live sandbox kept serving: no reload and replay after a refusal (break16 #2).
      assert.ok(host.kernel.isLoaded(kit.instanceId), 'the old incarnation is still loaded');
      assert.equal(host.kernel.manager(kit.instanceId).sandboxForTests, live, 'in the same sandbox');
      assert.equal(host.stateHash(), before);
      assert.equal(await host.E(counters[3] as object).read(), 5n);
      assert.equal(await host.E(kit.publicFacet).version(), 'v1');
    } finally {
      await host.close();
    }
  });

  it('host.preflight gives the verdict the checked upgrade gets when privateArgs hand the vat a capability new to it, and leaves no trace (break16 #6)', async () => {
    const contract = (version: string, extraKind: boolean) => `
import { provideKindHandle, defineDurableKind } from '@quickvat/vat-data';
import { E } from '@endo/far';
export const defineInstallationKinds = () => (baggage, _ctx, privateArgs) => {
  if (privateArgs?.oracle && !baggage.has('oracle')) baggage.init('oracle', privateArgs.oracle);
  if (privateArgs?.backup && !baggage.has('backup')) baggage.init('backup', privateArgs.backup);
  ${extraKind ? "defineDurableKind(provideKindHandle(baggage, 'Extra'), () => ({}), { x() { return 1; } });" : ''}
  const make = defineDurableKind(provideKindHandle(baggage, 'P'), () => ({}), {
    price() { return baggage.has('oracle') ? E(baggage.get('oracle')).price() : 'no oracle'; },
    version() { return '${version}'; },
  });
  return () => ({ publicFacet: make() });
};`;
    const host = await Host.open();
    try {
      const oracleOf = (n: bigint) => host.startInstance(host.install(`import { Far } from '@endo/far';\nexport function buildRootObject() { return Far('oracle', { price() { return ${n}n; } }); }`, { label: `oracle${n}` })).root;
      const kit = host.startInstance(host.install(contract('v1', true), { label: 'priced' })) as Kit;
      const [oracle, backup] = [oracleOf(42n), oracleOf(7n)];
      const privateArgs = { oracle, backup };
      // Refused alike: the new version forgets a kind (and gets two new capabilities).
      const before = host.stateHash();
      const verdict = await host.preflight(kit.adminFacet, contract('v2', false), { privateArgs });
      assert.deepEqual(verdict.problems.map((p) => p.code), ['kind-not-redefined']);
      await assert.rejects(host.upgrade(kit.adminFacet, contract('v2', false), { privateArgs }), (err: Error) => {
        assert.ok(err instanceof PreflightRefused, String(err));
        assert.deepEqual(err.problems.map((p) => p.code), ['kind-not-redefined']);
        return true;
      });
      assert.equal(host.stateHash(), before, 'pre-flight and the refused upgrade leave no trace (no import added)');
      // Accepted alike.
      const good = await host.preflight(kit.adminFacet, contract('v2', true), { privateArgs });
      assert.equal(good.ok, true, JSON.stringify(good.problems));
      assert.equal(host.stateHash(), before);
      assert.deepEqual(await host.upgrade(kit.adminFacet, contract('v2', true), { privateArgs }), { incarnation: 2 });
      assert.equal(await host.E(kit.publicFacet as object).price(), 42n);
    } finally {
      await host.close();
    }
  });
});
