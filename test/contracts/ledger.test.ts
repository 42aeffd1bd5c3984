// The ledger example contract: v1 behaviour, the upgrade to v2 (fees, frozen
// accounts, allowances, Account schema migration) and a refused upgrade.
import assert from 'node:assert/strict';
import { Host, type InstanceKit } from '../../host/index.js';
import { assertUpgradeRefused, contractSource, withoutKindDefinition } from './helpers.js';

const V1 = contractSource('ledger', 'v1');
const V2 = contractSource('ledger', 'v2');

describe('contracts: ledger', function () {
  this.timeout(20_000);
  let host: Host;
  let kit: InstanceKit;
  const E = (target: unknown) => host.E(target);

  beforeEach(async () => {
    host = await Host.open();
    kit = host.startInstance(host.install(V1, { label: 'ledger' }), { parameters: { symbol: 'QVT' } });
  });
  afterEach(async () => {
    await host.close();
  });

  /** alice 1000 -> bob 250 -> carol 50; dave opened but empty. */
  async function populate() {
    const pub = E(kit.publicFacet);
    const alice = await pub.openAccount('alice');
    const bob = await pub.openAccount('bob');
    const carol = await pub.openAccount('carol');
    const dave = await pub.openAccount('dave');
    assert.equal(await E(kit.creatorFacet).mint('alice', 1000n), 1000n);
    assert.equal(await E(kit.creatorFacet).mint('bob', 200n), 200n);
    assert.equal(await E(alice).transfer('bob', 250n), 750n);
    assert.equal(await E(bob).transfer('carol', 50n), 400n);
    return { alice, bob, carol, dave };
  }

  async function balances(...names: string[]): Promise<bigint[]> {
    return Promise.all(names.map((n) => E(kit.publicFacet).balanceOf(n)));
  }

  it('v1: opens accounts, mints (creator only) and transfers, refusing bad transfers', async () => {
    const { alice, bob } = await populate();
    assert.deepEqual(await E(kit.publicFacet).getInfo(), { symbol: 'QVT', version: 'v1', incarnation: 1 });
    assert.deepEqual(await balances('alice', 'bob', 'carol', 'dave'), [750n, 400n, 50n, 0n]);
    assert.equal(await E(kit.publicFacet).getTotalSupply(), 1200n);
    assert.deepEqual(await E(kit.publicFacet).getAccountNames(), ['alice', 'bob', 'carol', 'dave']);
    assert.deepEqual(await E(bob).describe(), { name: 'bob', balance: 400n });
    assert.equal(await E(kit.creatorFacet).getAccount('alice'), alice, 'the same account gives the same presence');

    await assert.rejects(E(alice).transfer('bob', 751n), { name: 'RangeError', message: /insufficient balance in "alice": has 750, needs 751/ });
    await assert.rejects(E(alice).transfer('zed', 1n), /no account named "zed"/);
    await assert.rejects(E(alice).transfer('alice', 1n), /cannot transfer to the same account/);
    await assert.rejects(E(alice).transfer('bob', 0n), /amount must be positive/);
    await assert.rejects(E(alice).transfer('bob', 5), { name: 'TypeError', message: /amount must be a bigint/ });
    await assert.rejects(E(kit.publicFacet).openAccount('bob'), /account "bob" already exists/);
    await assert.rejects(E(kit.publicFacet).mint('alice', 1n), /no method "mint"/);
    await assert.rejects(E(kit.creatorFacet).mint('nobody', 1n), /no account named "nobody"/);
    // Nothing changed by the refused calls.
    assert.deepEqual(await balances('alice', 'bob', 'carol', 'dave'), [750n, 400n, 50n, 0n]);
    assert.equal(await E(kit.publicFacet).getTotalSupply(), 1200n);

    assert.equal(await E(kit.creatorFacet).airdrop('drop', 3, 10n), 7);
    assert.deepEqual(await balances('drop0', 'drop2'), [10n, 10n]);
    assert.equal(await E(kit.publicFacet).getTotalSupply(), 1230n);
    await assert.rejects(E(kit.creatorFacet).airdrop('drop', 0, 10n), /airdrop count must be 1\.\.10000/);
  });

  it('upgrades to v2: balances and presences survive, records migrate lazily, fees, freezing and allowances are live', async () => {
    const { alice, bob, carol, dave } = await populate();
    const { incarnation } = await host.upgrade(kit.adminFacet, V2, { privateArgs: { feeBasisPoints: 100n } });
    assert.equal(incarnation, 2);

    const pub = E(kit.publicFacet);
    const creator = E(kit.creatorFacet);
    assert.deepEqual(await pub.getInfo(), { symbol: 'QVT', version: 'v2', incarnation: 2 }, 'parameters from the first start are kept');
    assert.deepEqual(await pub.getFeeInfo(), { feeBasisPoints: 100n, feeCollector: 'treasury' });

    // Lazy migration: the upgrade itself touched no account record.
    assert.equal(await creator.getMigrationCount(), 0);
    assert.deepEqual(await E(bob).describe(), { name: 'bob', balance: 400n, nonce: 0n, frozen: false });
    assert.equal(await creator.getMigrationCount(), 1);
    assert.deepEqual(await E(bob).describe(), { name: 'bob', balance: 400n, nonce: 0n, frozen: false });
    assert.equal(await creator.getMigrationCount(), 1, 'a record migrates once');
    assert.deepEqual(await balances('alice', 'bob', 'carol', 'dave'), [750n, 400n, 50n, 0n]);
    assert.equal(await creator.getMigrationCount(), 4);
    assert.equal(await pub.getTotalSupply(), 1200n);

    // Presences from v1 are the same objects and now have v2 behaviour.
    assert.equal(await creator.getAccount('alice'), alice);
    assert.equal(await creator.getAccount('dave'), dave);

    // Transfer fee: 1% of 300 = 3, paid by the sender to the (lazily opened) treasury.
    assert.deepEqual(await pub.getAccountNames(), ['alice', 'bob', 'carol', 'dave']);
    assert.equal(await E(alice).transfer('dave', 300n), 447n);
    assert.deepEqual(await balances('alice', 'dave', 'treasury'), [447n, 300n, 3n]);
    assert.deepEqual(await E(alice).describe(), { name: 'alice', balance: 447n, nonce: 1n, frozen: false });
    assert.equal(await E(alice).getNonce(), 1n);
    const treasury = await creator.getTreasury();
    assert.equal(await creator.getTreasury(), treasury);
    assert.deepEqual(await E(treasury).describe(), { name: 'treasury', balance: 3n, nonce: 0n, frozen: false });
    // Fees round down; the balance must cover amount + fee.
    assert.equal(await E(carol).transfer('bob', 10n), 40n, '1% of 10 rounds down to 0');
    await assert.rejects(E(carol).transfer('bob', 41n), /insufficient balance in "carol": has 40, needs 41 \+ fee 0/);
    await creator.setFee(1000n);
    await assert.rejects(E(carol).transfer('bob', 40n), /needs 40 \+ fee 4/);
    assert.equal(await E(carol).transfer('bob', 30n), 7n);
    await creator.setFee(100n);
    assert.deepEqual(await balances('bob', 'carol', 'treasury'), [440n, 7n, 6n]);

    // Frozen accounts cannot send but still receive.
    await creator.freeze('bob');
    assert.equal(await E(bob).isFrozen(), true);
    await assert.rejects(E(bob).transfer('alice', 1n), /account "bob" is frozen/);
    assert.equal(await E(dave).transfer('bob', 100n), 199n);
    await creator.unfreeze('bob');
    assert.equal(await E(bob).transfer('alice', 100n), 439n);
    assert.deepEqual(await E(bob).describe(), { name: 'bob', balance: 439n, nonce: 1n, frozen: false });

    // The new Allowance kind.
    const allowance = await E(alice).approve('carol', 200n);
    assert.deepEqual(await E(allowance).getDetails(), { owner: 'alice', spender: 'carol', remaining: 200n });
    assert.equal(await pub.allowance('alice', 'carol'), 200n);
    await assert.rejects(E(allowance).setRemaining(10_000n), /no method "setRemaining"/, 'holders of the view cannot raise it');
    assert.equal(await E(carol).transferFrom('alice', 'dave', 150n), 1n, 'returns the fee, paid by the owner');
    assert.deepEqual(await E(allowance).getDetails(), { owner: 'alice', spender: 'carol', remaining: 50n });
    await assert.rejects(E(carol).transferFrom('alice', 'dave', 51n), /allowance of "carol" to spend from "alice" is 50, needs 51/);
    await assert.rejects(E(dave).transferFrom('alice', 'dave', 1n), /allowance of "dave" to spend from "alice" is 0/);
    assert.equal(await E(alice).approve('carol', 500n), allowance, 're-approving updates the same Allowance');
    assert.equal(await E(alice).allowanceFor('carol'), 500n);
    await creator.freeze('alice');
    await assert.rejects(E(carol).transferFrom('alice', 'dave', 1n), /account "alice" is frozen/);
    assert.equal(await E(alice).allowanceFor('carol'), 500n, 'a refused transferFrom spends nothing');
    await creator.unfreeze('alice');

    // Accounts opened under v2 start with the v2 schema.
    const erin = await pub.openAccount('erin');
    assert.deepEqual(await E(erin).describe(), { name: 'erin', balance: 0n, nonce: 0n, frozen: false });
    assert.equal(await creator.getMigrationCount(), 4, 'only the four v1 accounts were migrated');

    // Fees move tokens; they never create or destroy them.
    const names = (await pub.getAccountNames()) as string[];
    assert.deepEqual(names, ['alice', 'bob', 'carol', 'dave', 'erin', 'treasury']);
    const all = await balances(...names);
    assert.equal(
      all.reduce((a, b) => a + b, 0n),
      1200n,
    );
    assert.equal(await pub.getTotalSupply(), 1200n);
  });

  it('refuses a v2 that does not redefine Account, and v1 keeps serving unchanged', async () => {
    const { alice, bob } = await populate();
    const broken = withoutKindDefinition(V2, 'Account');
    await assertUpgradeRefused(host.upgrade(kit.adminFacet, broken, { privateArgs: { feeBasisPoints: 100n } }), 'Account');

    assert.deepEqual(await E(kit.publicFacet).getInfo(), { symbol: 'QVT', version: 'v1', incarnation: 1 });
    assert.deepEqual(await balances('alice', 'bob', 'carol', 'dave'), [750n, 400n, 50n, 0n]);
    assert.deepEqual(await E(bob).describe(), { name: 'bob', balance: 400n }, 'no record was migrated');
    assert.equal(await E(alice).transfer('bob', 100n), 650n, 'v1 behaviour: no fee');
    assert.deepEqual(await E(kit.publicFacet).getAccountNames(), ['alice', 'bob', 'carol', 'dave']);
    await assert.rejects(E(alice).approve('bob', 1n), /no method "approve"/);

    // The intact v2 still upgrades afterwards.
    assert.deepEqual(await host.upgrade(kit.adminFacet, V2), { incarnation: 2 });
    assert.deepEqual(await E(alice).describe(), { name: 'alice', balance: 650n, nonce: 0n, frozen: false });
    assert.deepEqual(await E(kit.publicFacet).getFeeInfo(), { feeBasisPoints: 25n, feeCollector: 'treasury' });
  });

  it('v2 also installs and starts fresh', async () => {
    const fresh = host.startInstance(host.install(V2, { label: 'ledger2' }), {
      parameters: { symbol: 'NEW' },
      privateArgs: { feeBasisPoints: 500n, feeCollector: 'house' },
    });
    const a = await E(fresh.publicFacet).openAccount('a');
    await E(fresh.publicFacet).openAccount('b');
    await E(fresh.creatorFacet).mint('a', 100n);
    assert.equal(await E(a).transfer('b', 20n), 79n);
    assert.deepEqual(await E(fresh.publicFacet).getAccountNames(), ['a', 'b', 'house']);
    assert.equal(await E(fresh.publicFacet).balanceOf('house'), 1n);
    assert.equal(await E(fresh.creatorFacet).getMigrationCount(), 0);
    assert.deepEqual(await E(fresh.publicFacet).getInfo(), { symbol: 'NEW', version: 'v2', incarnation: 1 });
  });
});
