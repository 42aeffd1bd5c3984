// The covered-call escrow in zone + exo style (contracts/escrow-exo, issue 12):
// v1 behaviour with interface guards, and the upgrade to v2 with offers open,
// state intact, the same presences, v2's new guards and behaviour.
import assert from 'node:assert/strict';
import { Host, type InstanceKit } from '../../host/index.js';
import { contractSource } from './helpers.js';

const V1 = contractSource('escrow-exo', 'v1');
const V2 = contractSource('escrow-exo', 'v2');

describe('contracts: escrow-exo (zone + exo style)', function () {
  this.timeout(30_000);
  let host: Host;
  let kit: InstanceKit;
  const E = (target: unknown) => host.E(target);

  beforeEach(async () => {
    host = await Host.open();
    kit = host.startInstance(host.install(V1, { label: 'escrow-exo' }), { parameters: { moneyBrand: 'USD' } });
  });
  afterEach(async () => {
    await host.close();
  });

  /** At block 2: offers 1 (4 GOLD for 100, expires at 10) and 4 open; 2 expired; 3 exercised by bea. */
  async function populate() {
    const pub = E(kit.publicFacet);
    const creator = E(kit.creatorFacet);
    const sam = await pub.openWallet('sam');
    const bea = await pub.openWallet('bea');
    const ben = await pub.openWallet('ben');
    await creator.deposit('sam', 'GOLD', 10n);
    await creator.deposit('sam', 'SILVER', 5n);
    assert.deepEqual(await creator.deposit('sam', 'USD', 50n), { GOLD: 10n, SILVER: 5n, USD: 50n });
    await creator.deposit('bea', 'USD', 1000n);
    await creator.deposit('ben', 'USD', 30n);
    const o1 = await E(sam).writeCall('GOLD', 4n, 100n, 10n);
    const o2 = await E(sam).writeCall('GOLD', 3n, 90n, 2n);
    const o3 = await E(sam).writeCall('SILVER', 5n, 60n, 20n);
    const o4 = await E(sam).writeCall('GOLD', 3n, 100n, 8n);
    assert.deepEqual(await E(bea).exercise(o3), { USD: 940n, SILVER: 5n });
    assert.deepEqual(await creator.advanceBlocks(2n), [2]);
    return { sam, bea, ben, o1, o2, o3, o4 };
  }

  it('v1: covered calls with guarded methods; bad requests are refused before any state changes', async () => {
    const { sam, bea, ben, o1, o2, o3 } = await populate();
    const pub = E(kit.publicFacet);
    const creator = E(kit.creatorFacet);
    assert.deepEqual(await pub.getInfo(), { moneyBrand: 'USD', version: 'v1', incarnation: 1 });
    assert.deepEqual(await E(o1).getDetails(), {
      id: 1, seller: 'sam', brand: 'GOLD', amount: 4n, strike: 100n, createdAt: 0n, expiresAt: 10n, status: 'open', remaining: 4n, fills: [],
    });
    assert.deepEqual(((await pub.listOpenOffers()) as { id: number }[]).map((o) => o.id), [1, 4]);
    assert.deepEqual(((await pub.getOffer(3)) as { fills: unknown[] }).fills, [{ buyer: 'bea', quantity: 5n, paid: 60n, block: 0n }]);
    assert.equal(await creator.getWallet('sam'), sam);

    // Guards: refused with Endo's messages before the method body runs.
    await assert.rejects(E(sam).writeCall('GOLD', 0n, 1n, 1n), { message: 'In "writeCall" method of (Wallet wallet): arg 1: "[0n]" - Must be > "[0n]"' });
    await assert.rejects(E(sam).writeCall('GOLD', 1, 1n, 1n), /In "writeCall" method of \(Wallet wallet\): arg 1: number 1 - Must be a bigint/);
    await assert.rejects(E(bea).exercise('o1'), /In "exercise" method of \(Wallet wallet\): arg 0: .* - Must be a remotable/);
    await assert.rejects(pub.openWallet(''), /In "openWallet" method of \(EscrowPublic\): arg 0: "" - Must fail negated pattern/);
    await assert.rejects(creator.advanceBlocks(-1n), /In "advanceBlocks" method of \(EscrowCreator\): arg 0: "\[-1n\]" - Must be non-negative/);
    // What patterns cannot say, the bodies check with Fail.
    await assert.rejects(E(ben).exercise(o1), { message: 'insufficient "USD" in wallet "ben": has "[30n]", needs "[100n]"' });
    await assert.rejects(E(sam).exercise(o1), { message: 'the seller cannot exercise their own offer' });
    await assert.rejects(E(bea).cancel(o1), { message: 'only the seller ("sam") can cancel offer 1' });
    await assert.rejects(E(bea).exercise(o3), { message: 'offer 3 is "exercised"' });
    await assert.rejects(E(bea).exercise(o2), { message: 'offer 2 is "expired"' });
    await assert.rejects(E(bea).exercise(sam), { message: 'not a call option issued by this escrow' });
    await assert.rejects(E(sam).writeCall('USD', 1n, 1n, 1n), { message: 'the asset of a covered call cannot be the money brand "USD"' });
    await assert.rejects(E(sam).writeCall('gold', 1n, 1n, 1n), { message: 'brand must be an upper-case word, got "gold"' });
    await assert.rejects(pub.openWallet('sam'), { message: 'wallet "sam" already exists' });
    assert.deepEqual(await E(sam).getHoldings(), { GOLD: 3n, SILVER: 0n, USD: 110n });
    assert.deepEqual(await E(sam).cancel(o1), { GOLD: 7n, SILVER: 0n, USD: 110n });
    await assert.rejects(E(bea).exercise(o1), { message: 'offer 1 is "cancelled"' });
  });

  it('upgrades to v2 with offers open: same presences, state intact, partial exercise, fees and receipts', async () => {
    const { sam, bea, ben, o1, o3, o4 } = await populate();
    assert.deepEqual(await host.upgrade(kit.adminFacet, V2, { privateArgs: { cancelFee: 5n } }), { incarnation: 2 });
    const pub = E(kit.publicFacet);
    const creator = E(kit.creatorFacet);
    assert.deepEqual(await pub.getInfo(), { moneyBrand: 'USD', version: 'v2', incarnation: 2, cancelFee: 5n });
    assert.equal(await pub.getBlockHeight(), 2n);
    assert.equal(await creator.getWallet('ben'), ben, 'wallet presences from v1 are kept');
    assert.deepEqual(await E(o3).getDetails(), {
      id: 3, seller: 'sam', brand: 'SILVER', amount: 5n, strike: 60n, createdAt: 0n, expiresAt: 20n, status: 'exercised', remaining: 0n,
      fills: [{ buyer: 'bea', quantity: 5n, paid: 60n, block: 0n }],
    });

    // v2's guard: a quantity, if given, must be positive.
    await assert.rejects(E(ben).exercise(o1, 0n), /In "exercise" method of \(Wallet wallet\): arg 1\?: "\[0n\]" - Must be > "\[0n\]"/);
    const r1 = await E(ben).exercise(o1, 1n);
    assert.deepEqual(await E(r1).getDetails(), { seq: 1, offerId: 1, buyer: 'ben', seller: 'sam', brand: 'GOLD', quantity: 1n, paid: 25n, block: 2n });
    await assert.rejects(E(bea).exercise(o1, 5n), { message: 'offer 1 has only "[3n]" "GOLD" left, asked for "[5n]"' });
    const r2 = await E(bea).exercise(o1, 2n);
    assert.equal(((await E(r2).getDetails()) as { paid: bigint }).paid, 50n);
    // Cancelling now costs the seller the fee.
    assert.deepEqual(await E(sam).cancel(o1), { GOLD: 4n, SILVER: 0n, USD: 180n });
    assert.equal(await creator.getFeesCollected(), 5n);
    // Offer 4, written under v1, bought in thirds under v2: the fills add up to the strike.
    const paid: bigint[] = [];
    for (const quantity of [1n, 1n, undefined]) {
      const receipt = await E(bea).exercise(o4, quantity);
      paid.push(((await E(receipt).getDetails()) as { paid: bigint }).paid);
    }
    assert.deepEqual(paid, [34n, 33n, 33n]);
    assert.equal(((await E(o4).getDetails()) as { status: string }).status, 'exercised');
    assert.equal(((await pub.listReceipts()) as unknown[]).length, 5);
    assert.deepEqual(((await E(ben).listReceipts()) as { seq: number }[]).map((r) => r.seq), [1]);
    // Money is conserved: 50 + 1000 + 30 deposited.
    assert.deepEqual(await E(sam).getHoldings(), { GOLD: 4n, SILVER: 0n, USD: 280n });
    assert.deepEqual(await E(bea).getHoldings(), { USD: 790n, SILVER: 5n, GOLD: 5n });
    assert.deepEqual(await E(ben).getHoldings(), { USD: 5n, GOLD: 1n });
    await assert.rejects(creator.setCancelFee(-1n), /In "setCancelFee" method of \(EscrowCreator\)/);
  });
});
