// The covered-call escrow example contract: v1 behaviour, the upgrade to v2
// (partial exercise, cancellation fee, ExerciseReceipt kind, Offer schema
// migration) with offers open across it, and a refused upgrade.
import assert from 'node:assert/strict';
import { Host, type InstanceKit } from '../../host/index.js';
import { assertUpgradeRefused, contractSource, withoutKindDefinition } from './helpers.js';

const V1 = contractSource('escrow', 'v1');
const V2 = contractSource('escrow', 'v2');

describe('contracts: escrow (covered call)', function () {
  this.timeout(20_000);
  let host: Host;
  let kit: InstanceKit;
  const E = (target: unknown) => host.E(target);

  beforeEach(async () => {
    host = await Host.open();
    kit = host.startInstance(host.install(V1, { label: 'escrow' }), { parameters: { moneyBrand: 'USD' } });
  });
  afterEach(async () => {
    await host.close();
  });

  /**
   * At block 2: offer 1 (4 GOLD for 100, expires at 10) and offer 5 (1 GOLD
   * for 10, expires at 3) open; 2 expired; 3 exercised by bea; 4 cancelled.
   */
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
    const o4 = await E(sam).writeCall('GOLD', 2n, 40n, 10n);
    const o5 = await E(sam).writeCall('GOLD', 1n, 10n, 3n);
    assert.deepEqual(await E(sam).getHoldings(), { GOLD: 0n, SILVER: 0n, USD: 50n }, 'the assets are in escrow');
    assert.deepEqual(await E(bea).exercise(o3), { USD: 940n, SILVER: 5n });
    assert.deepEqual(await E(sam).cancel(o4), { GOLD: 2n, SILVER: 0n, USD: 110n });
    assert.deepEqual(await creator.advanceBlocks(2n), [2]);
    return { sam, bea, ben, o1, o2, o3, o4, o5 };
  }

  it('v1: writes, exercises, cancels and expires covered calls, refusing bad requests', async () => {
    const { sam, bea, ben, o1, o2, o3, o5 } = await populate();
    const pub = E(kit.publicFacet);
    const creator = E(kit.creatorFacet);
    assert.deepEqual(await pub.getInfo(), { moneyBrand: 'USD', version: 'v1', incarnation: 1 });
    assert.equal(await pub.getBlockHeight(), 2n);
    assert.deepEqual(await E(o1).getDetails(), {
      id: 1, seller: 'sam', brand: 'GOLD', amount: 4n, strike: 100n, createdAt: 0n, expiresAt: 10n, status: 'open', buyer: null,
    });
    assert.equal(await E(o1).getId(), 1);
    assert.deepEqual(
      ((await pub.listOpenOffers()) as { id: number }[]).map((o) => o.id),
      [1, 5],
    );
    assert.equal(((await pub.getOffer(3)) as { buyer: string }).buyer, 'bea');
    assert.deepEqual(
      await Promise.all([2, 3, 4].map(async (id) => ((await pub.getOffer(id)) as { status: string }).status)),
      ['expired', 'exercised', 'cancelled'],
    );
    assert.deepEqual(await E(sam).getHoldings(), { GOLD: 5n, SILVER: 0n, USD: 110n });
    assert.equal(await creator.getWallet('sam'), sam, 'the same wallet gives the same presence');

    await assert.rejects(E(ben).exercise(o1), { name: 'RangeError', message: /insufficient USD in wallet "ben": has 30, needs 100/ });
    await assert.rejects(E(sam).exercise(o1), /the seller cannot exercise their own offer/);
    await assert.rejects(E(bea).cancel(o1), /only the seller \(sam\) can cancel offer 1/);
    await assert.rejects(E(bea).exercise(o3), /offer 3 is exercised/);
    await assert.rejects(E(bea).exercise(o2), /offer 2 is expired/);
    await assert.rejects(E(bea).exercise(sam), /not a call option issued by this escrow/);
    await assert.rejects(E(sam).writeCall('USD', 1n, 1n, 1n), /cannot be the money brand USD/);
    await assert.rejects(E(sam).writeCall('GOLD', 6n, 1n, 1n), /insufficient GOLD in wallet "sam": has 5, needs 6/);
    await assert.rejects(E(sam).writeCall('GOLD', 1n, 1n, 0n), /durationBlocks must be positive/);
    await assert.rejects(pub.openWallet('sam'), /wallet "sam" already exists/);
    await assert.rejects(pub.advanceBlocks(1n), /no method "advanceBlocks"/);
    assert.deepEqual(await E(ben).getHoldings(), { USD: 30n });
    assert.deepEqual(await E(sam).getHoldings(), { GOLD: 5n, SILVER: 0n, USD: 110n });

    // Offer 5 expires at block 3: the asset goes back to the seller.
    assert.deepEqual(await creator.advanceBlocks(1n), [5]);
    await assert.rejects(E(bea).exercise(o5), /offer 5 is expired/);
    assert.deepEqual(await E(sam).getHoldings(), { GOLD: 6n, SILVER: 0n, USD: 110n });
    assert.deepEqual(await E(bea).exercise(o1), { USD: 840n, SILVER: 5n, GOLD: 4n });
    assert.deepEqual(await pub.listOpenOffers(), []);
  });

  it('upgrades to v2 with offers open: they survive, migrate lazily, and take partial exercise, fees and receipts', async () => {
    const { sam, bea, ben, o1, o3, o5 } = await populate();
    assert.deepEqual(await host.upgrade(kit.adminFacet, V2, { privateArgs: { cancelFee: 5n } }), { incarnation: 2 });
    const pub = E(kit.publicFacet);
    const creator = E(kit.creatorFacet);
    assert.deepEqual(await pub.getInfo(), { moneyBrand: 'USD', version: 'v2', incarnation: 2, cancelFee: 5n });
    assert.equal(await pub.getBlockHeight(), 2n);
    assert.equal(await creator.getWallet('ben'), ben, 'wallet presences from v1 are kept');
    assert.equal(await E(o5).getId(), 5, 'option presences from v1 still work');

    // The v2 sweep expires offer 5 (its record migrates when first read, at block 3).
    assert.deepEqual(await creator.advanceBlocks(1n), [5]);
    assert.deepEqual(await pub.getOffer(5), {
      id: 5, seller: 'sam', brand: 'GOLD', amount: 1n, strike: 10n, createdAt: 0n, expiresAt: 3n,
      status: 'expired', remaining: 0n, fills: [], migratedAtBlock: 3n,
    });
    assert.deepEqual(await creator.advanceBlocks(2n), []);
    // Offer 1 was not read since the upgrade: it migrates now, at block 5.
    assert.deepEqual(await E(o1).getDetails(), {
      id: 1, seller: 'sam', brand: 'GOLD', amount: 4n, strike: 100n, createdAt: 0n, expiresAt: 10n,
      status: 'open', remaining: 4n, fills: [], migratedAtBlock: 5n,
    });
    assert.deepEqual(await E(o3).getDetails(), {
      id: 3, seller: 'sam', brand: 'SILVER', amount: 5n, strike: 60n, createdAt: 0n, expiresAt: 20n,
      status: 'exercised', remaining: 0n, fills: [{ buyer: 'bea', quantity: 5n, paid: 60n, block: null }], migratedAtBlock: 5n,
    });
    assert.deepEqual(
      ((await pub.listOpenOffers()) as { id: number }[]).map((o) => o.id),
      [1],
    );

    // Partial exercise of an offer written under v1; the new ExerciseReceipt kind.
    const r1 = await E(ben).exercise(o1, 1n);
    assert.deepEqual(await E(r1).getDetails(), {
      seq: 1, offerId: 1, buyer: 'ben', seller: 'sam', brand: 'GOLD', quantity: 1n, paid: 25n, block: 5n,
    });
    assert.deepEqual(await E(ben).getHoldings(), { USD: 5n, GOLD: 1n });
    await assert.rejects(E(ben).exercise(o1, 1n), /insufficient USD in wallet "ben": has 5, needs 25/);
    await assert.rejects(E(bea).exercise(o1, 5n), /offer 1 has only 3 GOLD left, asked for 5/);
    const r2 = await E(bea).exercise(o1, 2n);
    assert.equal(((await E(r2).getDetails()) as { paid: bigint }).paid, 50n);
    assert.deepEqual(await E(o1).getDetails(), {
      id: 1, seller: 'sam', brand: 'GOLD', amount: 4n, strike: 100n, createdAt: 0n, expiresAt: 10n, status: 'open', remaining: 1n,
      fills: [
        { buyer: 'ben', quantity: 1n, paid: 25n, block: 5n },
        { buyer: 'bea', quantity: 2n, paid: 50n, block: 5n },
      ],
      migratedAtBlock: 5n,
    });

    // Cancelling now costs the seller the fee; the rest of the asset comes back.
    assert.deepEqual(await E(sam).cancel(o1), { GOLD: 7n, SILVER: 0n, USD: 180n });
    assert.equal(await creator.getFeesCollected(), 5n);
    const o1After = (await pub.getOffer(1)) as { status: string; remaining: bigint };
    assert.deepEqual([o1After.status, o1After.remaining], ['cancelled', 0n]);
    await assert.rejects(E(bea).exercise(o1, 1n), /offer 1 is cancelled/);

    // An offer written under v2, bought in thirds: the fills add up to the strike.
    const o6 = await E(sam).writeCall('GOLD', 3n, 100n, 5n);
    const paid: bigint[] = [];
    for (const quantity of [1n, 1n, undefined]) {
      const receipt = await E(bea).exercise(o6, quantity);
      paid.push(((await E(receipt).getDetails()) as { paid: bigint }).paid);
    }
    assert.deepEqual(paid, [34n, 33n, 33n]);
    const o6Details = (await E(o6).getDetails()) as { status: string; remaining: bigint; migratedAtBlock: unknown; createdAt: bigint };
    assert.deepEqual([o6Details.status, o6Details.remaining, o6Details.migratedAtBlock, o6Details.createdAt], ['exercised', 0n, null, 5n]);

    // A seller who cannot pay the cancellation fee keeps the offer open; expiry is free.
    const o7 = await E(ben).writeCall('GOLD', 1n, 10n, 4n);
    await creator.setCancelFee(10n);
    await assert.rejects(E(ben).cancel(o7), /insufficient USD in wallet "ben": has 5, needs 10/);
    assert.equal(((await E(o7).getDetails()) as { status: string }).status, 'open');
    assert.deepEqual(await E(ben).getHoldings(), { USD: 5n, GOLD: 0n });
    assert.deepEqual(await creator.advanceBlocks(4n), [7]);
    assert.deepEqual(await E(ben).getHoldings(), { USD: 5n, GOLD: 1n });

    assert.equal(((await pub.listReceipts()) as unknown[]).length, 5);
    assert.equal(((await E(bea).listReceipts()) as unknown[]).length, 4);
    assert.deepEqual(
      ((await E(ben).listReceipts()) as { seq: number }[]).map((r) => r.seq),
      [1],
    );
    // Money is conserved: 50 + 1000 + 30 deposited.
    assert.deepEqual(await E(sam).getHoldings(), { GOLD: 4n, SILVER: 0n, USD: 280n });
    assert.deepEqual(await E(bea).getHoldings(), { USD: 790n, SILVER: 5n, GOLD: 5n });
    assert.equal(await creator.getFeesCollected(), 5n);
  });

  it('refuses a v2 that does not redefine Offer, and v1 keeps serving unchanged', async () => {
    const { bea, o1 } = await populate();
    await assertUpgradeRefused(host.upgrade(kit.adminFacet, withoutKindDefinition(V2, 'Offer'), { privateArgs: { cancelFee: 5n } }), 'Offer');

    const pub = E(kit.publicFacet);
    assert.deepEqual(await pub.getInfo(), { moneyBrand: 'USD', version: 'v1', incarnation: 1 });
    assert.equal(await pub.getBlockHeight(), 2n);
    assert.deepEqual(await E(o1).getDetails(), {
      id: 1, seller: 'sam', brand: 'GOLD', amount: 4n, strike: 100n, createdAt: 0n, expiresAt: 10n, status: 'open', buyer: null,
    });
    await assert.rejects(E(bea).listReceipts(), /no method "listReceipts"/);
    // v1 behaviour: all or nothing, and the result is the buyer's holdings.
    assert.deepEqual(await E(bea).exercise(o1), { USD: 840n, SILVER: 5n, GOLD: 4n });

    assert.deepEqual(await host.upgrade(kit.adminFacet, V2), { incarnation: 2 });
    assert.deepEqual(await pub.getOffer(1), {
      id: 1, seller: 'sam', brand: 'GOLD', amount: 4n, strike: 100n, createdAt: 0n, expiresAt: 10n,
      status: 'exercised', remaining: 0n, fills: [{ buyer: 'bea', quantity: 4n, paid: 100n, block: null }], migratedAtBlock: 2n,
    });
    assert.equal(((await pub.getInfo()) as { cancelFee: bigint }).cancelFee, 3n, 'the refused upgrade left no trace');
  });
});
