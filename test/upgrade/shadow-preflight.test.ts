import assert from 'node:assert/strict';
import { exampleContractSource } from '../../host/example-contracts.js';
import { Host, type InstanceKit } from '../../host/index.js';

const ledger = (v: string) => exampleContractSource('ledger', v);

const QUOTER = (rule: string) => `
import { provideKindHandle, defineDurableKind } from '@quickvat/vat-data';
export const defineInstallationKinds = () => (baggage) => {
  const make = defineDurableKind(provideKindHandle(baggage, 'Quoter'), () => ({ calls: 0 }), {
    quote({ state }, amount) { state.calls += 1; return ${rule}; },
    calls({ state }) { return state.calls; },
  });
  return () => ({ publicFacet: make() });
};`;
const FEE_V1 = QUOTER('amount / 100n');
// Same behaviour, different code: a refactor.
const FEE_REFACTOR = QUOTER('((a) => a / 100n)(amount)').replace('state.calls += 1;', 'state.calls = state.calls + 1;');
// A changed fee rule: only large amounts are quoted differently.
const FEE_CHANGED = QUOTER('amount >= 1000n ? amount / 50n : amount / 100n');

type Kit = InstanceKit & { publicFacet: object; creatorFacet: object };

describe('pre-flight checks (SPEC §5.7)', () => {
  let host: Host;
  let kit: Kit;
  beforeEach(async () => {
    host = await Host.open();
    kit = host.startInstance(host.install(ledger('v1'), { label: 'ledger' })) as Kit;
    await host.E(kit.publicFacet).openAccount('alice');
    await host.E(kit.creatorFacet).mint('alice', 100n);
    await host.E(kit.publicFacet).balanceOf('alice');
  });
  afterEach(async () => {
    await host.close();
  });

  const check = async (code: string, options = {}) => {
    const before = host.stateHash();
    const result = await host.preflight(kit.adminFacet, code, options);
    assert.equal(host.stateHash(), before, 'pre-flight changes nothing');
    return result;
  };

  it('passes the real v2, whether asked with the adminFacet or by anyone with the instance id', async () => {
    const sampled = { Account: { records: 1, read: 1 }, LedgerCreator: { records: 1, read: 1 }, LedgerPublic: { records: 1, read: 1 } };
    assert.deepEqual(await check(ledger('v2')), { ok: true, problems: [], sampled });
    assert.deepEqual(await host.preflight(kit.instanceId, ledger('v2')), { ok: true, problems: [], sampled });
    await assert.rejects(host.preflight('v999', ledger('v2')), /no vat v999/);
  });

  it('names a durable kind the new version does not redefine', async () => {
    const broken = ledger('v2').replace(/provideKindHandle\(instanceBaggage, 'Account'\)/, "provideKindHandle(instanceBaggage, 'Acct')");
    const r = await check(broken);
    assert.equal(r.ok, false);
    assert.deepEqual(r.problems.map((p) => p.code), ['kind-not-redefined']);
    assert.match(r.problems[0].message, /durable kind "Account" \(defined by incarnation 1\)/);
  });

  it('names a facet method existing clients use that the new version removes', async () => {
    const v2 = ledger('v2');
    const start = v2.indexOf('        balanceOf(_, name) {');
    const end = v2.indexOf('        },\n', start) + '        },\n'.length;
    assert.ok(start > 0);
    const r = await check(v2.slice(0, start) + v2.slice(end));
    assert.deepEqual(r.problems.map((p) => p.code), ['method-removed']);
    assert.match(r.problems[0].message, /publicFacet loses method "balanceOf", which existing clients have called/);
  });

  it('names a durable record shape that changes without a migrate', async () => {
    const v1 = ledger('v1');
    const changed = v1.replace('(name) => ({ name, balance: 0n })', '(name) => ({ name, balance: 0n, frozen: false })');
    assert.notEqual(changed, v1);
    const r = await check(changed);
    assert.deepEqual(r.problems.map((p) => p.code), ['record-shape-changed']);
    assert.match(r.problems[0].message, /durable kind "Account": existing records have fields \{balance, name\} but the new version makes \{balance, frozen, name\}/);
  });

  it('names a named exit the policy does not grant', async () => {
    const needsExit = ledger('v2').replace("import {", "import params from 'host:oracle';\nimport {");
    const r = await check(needsExit);
    assert.equal(r.problems[0].code, 'exit-not-granted');
    assert.match(r.problems[0].message, /named exit "host:oracle"/);
  });
});

describe('shadow validation (SPEC §5.6)', () => {
  it('reports zero differences for a behaviour-preserving refactor over 1,000 deliveries', async function () {
    this.timeout(60_000);
    const host = await Host.open();
    try {
      const kit = host.startInstance(host.install(FEE_V1, { label: 'fees' })) as Kit;
      const shadow = await host.shadow(kit.adminFacet, FEE_REFACTOR);
      for (let i = 0; i < 1000; i++) await host.E(kit.publicFacet).quote(BigInt(i * 37));
      assert.deepEqual(shadow.report(), { deliveries: 1000, differences: [] });
      await shadow.drop();
    } finally {
      await host.close();
    }
  });

  it('reports exactly the messages whose answers differ under a changed fee rule; the live state is unaffected', async () => {
    const withShadow = await Host.open();
    const without = await Host.open();
    try {
      const kit = withShadow.startInstance(withShadow.install(FEE_V1, { label: 'fees' })) as Kit;
      const plain = without.startInstance(without.install(FEE_V1, { label: 'fees' })) as Kit;
      const shadow = await withShadow.shadow(kit.adminFacet, FEE_CHANGED);
      const amounts = [5n, 999n, 1000n, 250n, 5000n, 1n, 12345n];
      for (const a of amounts) {
        assert.equal(await withShadow.E(kit.publicFacet).quote(a), a / 100n, 'the live vat answers with the live rule');
        await without.E(plain.publicFacet).quote(a);
      }
      const report = shadow.report();
      assert.equal(report.deliveries, amounts.length);
      assert.deepEqual(
        report.differences.map((d) => [d.method, d.args, d.live, d.shadow]),
        amounts.filter((a) => a >= 1000n).map((a) => ['quote', [a], a / 100n, a / 50n]),
      );
      assert.equal(report.differences[0].target, withShadow.kernel.krefOf(kit.instanceId, withShadow.kernel.vrefOf(kit.instanceId, report.differences[0].target)!));
      assert.equal(withShadow.stateHash(), without.stateHash(), 'the shadow left no trace in the live state');

      assert.deepEqual(await shadow.promote(), { incarnation: 2 });
      assert.equal(await withShadow.E(kit.publicFacet).quote(5000n), 100n);
      assert.equal(await withShadow.E(kit.publicFacet).calls(), amounts.length + 1);
    } finally {
      await withShadow.close();
      await without.close();
    }
  });

  it('stops observing once dropped', async () => {
    const host = await Host.open();
    try {
      const kit = host.startInstance(host.install(FEE_V1, { label: 'fees' })) as Kit;
      const shadow = await host.shadow(kit.adminFacet, FEE_CHANGED);
      await host.E(kit.publicFacet).quote(5000n);
      await shadow.drop();
      await host.E(kit.publicFacet).quote(5000n);
      assert.equal(shadow.report().deliveries, 1);
      await assert.rejects(host.shadow(kit.adminFacet, "export const defineInstallationKinds = () => { throw Error('nope'); };"), /the shadow could not start: nope/);
    } finally {
      await host.close();
    }
  });
});

describe('dry-run shadows (issue 13)', () => {
  it('replays calls on a fork running the current version and a fork running the proposed one; the live state hash is unchanged', async () => {
    const host = await Host.open();
    try {
      const kit = host.startInstance(host.install(FEE_V1, { label: 'fees' })) as Kit;
      await host.E(kit.publicFacet).quote(7n);
      const before = host.stateHash();
      const amounts = [5n, 999n, 1000n, 5000n];
      const calls = [...amounts.map((a) => ({ target: kit.publicFacet, method: 'quote', args: [a] })), { target: kit.publicFacet, method: 'calls' }, { target: kit.publicFacet, method: 'nope' }];
      const report = await host.shadowDryRun(kit.instanceId, FEE_CHANGED, calls);
      assert.equal(host.stateHash(), before, 'nothing live changed');
      assert.equal(report.deliveries, 6);
      assert.deepEqual(
        report.answers.slice(0, 5).map((a) => [a.method, a.args, a.current, a.proposed, a.same]),
        [
          ...amounts.map((a) => ['quote', [a], a / 100n, a >= 1000n ? a / 50n : a / 100n, a < 1000n]),
          // Each fork kept its own state across the calls, starting from the live one.
          ['calls', [], 5, 5, true],
        ],
      );
      assert.equal(report.answers[5].same, true, 'both versions reject an unknown method alike');
      assert.match(JSON.stringify(report.answers[5].current), /rejected/);
      assert.equal(report.differed, 2);
      assert.equal(await host.E(kit.publicFacet).calls(), 1, 'the live instance saw none of the calls');
      await assert.rejects(host.shadowDryRun(kit.instanceId, "export const defineInstallationKinds = () => { throw Error('nope'); };", calls), /the proposed version does not start: nope/);
    } finally {
      await host.close();
    }
  });
});
