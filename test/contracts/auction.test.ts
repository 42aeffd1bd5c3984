// The sealed-bid auction example contract: v1 (first price), the upgrade to
// v2 (second price with a reserve, Settlement kind, Bid and Auction schema
// migration) with sealed bids across it, and a refused upgrade.
import assert from 'node:assert/strict';
import { Host, type InstanceKit } from '../../host/index.js';
import { assertUpgradeRefused, contractSource, withoutKindDefinition } from './helpers.js';

const V1 = contractSource('auction', 'v1');
const V2 = contractSource('auction', 'v2');

/** The contract's commitment, computed by the bidder (64-bit FNV-1a, hex). */
function commitment(auctionId: number, bidder: string, amount: bigint, salt: string): string {
  const text = `${auctionId}|${bidder}|${amount}|${salt}`;
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i += 1) {
    h ^= BigInt(text.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, '0');
}
const saltOf = (auctionId: number, bidder: string) => `salt:${bidder}:${auctionId}:7f3a`;

interface BidDetails {
  auctionId: number;
  bidder: string;
  commitment: string;
  seq: number;
  amount: bigint | null;
  status?: string;
}

describe('contracts: auction (sealed bid)', function () {
  this.timeout(20_000);
  let host: Host;
  let kit: InstanceKit;
  const E = (target: unknown) => host.E(target);

  beforeEach(async () => {
    host = await Host.open();
    kit = host.startInstance(host.install(V1, { label: 'auction' }), { parameters: { house: 'Sotheby-ish' } });
  });
  afterEach(async () => {
    await host.close();
  });

  const bid = (bidder: unknown, name: string, auctionId: number, amount: bigint) =>
    E(bidder).bid(auctionId, commitment(auctionId, name, amount, saltOf(auctionId, name)));
  const reveal = (bidder: unknown, name: string, auctionId: number, amount: bigint) =>
    E(bidder).reveal(auctionId, amount, saltOf(auctionId, name));

  /**
   * Auction 1 (vase): settled under v1; bob won at 150, carol never revealed.
   * Auction 2 (lamp): still taking bids; alice 10, bob 20, carol 17 sealed.
   * Auction 3 (clock): closed; alice revealed 70, dave (90) has not revealed yet.
   */
  async function populate() {
    const pub = E(kit.publicFacet);
    const creator = E(kit.creatorFacet);
    const alice = await pub.makeBidder('alice');
    const bob = await pub.makeBidder('bob');
    const carol = await pub.makeBidder('carol');
    const dave = await pub.makeBidder('dave');
    assert.deepEqual([await creator.createAuction('vase'), await creator.createAuction('lamp'), await creator.createAuction('clock')], [1, 2, 3]);
    assert.deepEqual(await bid(alice, 'alice', 1, 100n), { auctionId: 1, seq: 1 });
    await bid(bob, 'bob', 1, 150n);
    await bid(carol, 'carol', 1, 120n);
    await bid(alice, 'alice', 2, 10n);
    await bid(bob, 'bob', 2, 20n);
    await bid(carol, 'carol', 2, 17n);
    await bid(alice, 'alice', 3, 70n);
    assert.deepEqual(await bid(dave, 'dave', 3, 90n), { auctionId: 3, seq: 8 });
    assert.equal(await creator.close(1), 3);
    await reveal(alice, 'alice', 1, 100n);
    await reveal(bob, 'bob', 1, 150n);
    assert.deepEqual(await creator.settle(1), { auctionId: 1, winner: 'bob', price: 150n, rule: 'first-price' });
    assert.equal(await creator.close(3), 2);
    await reveal(alice, 'alice', 3, 70n);
    return { alice, bob, carol, dave };
  }

  it('v1: takes sealed bids, checks reveals against commitments, settles first-price', async () => {
    const { alice, bob, carol, dave } = await populate();
    const pub = E(kit.publicFacet);
    const creator = E(kit.creatorFacet);
    assert.deepEqual(await pub.getInfo(), { house: 'Sotheby-ish', version: 'v1', incarnation: 1, rule: 'first-price' });
    assert.equal(await pub.makeCommitment(2, 'bob', 20n, 'xyz'), commitment(2, 'bob', 20n, 'xyz'), 'the contract hashes as the bidders do');
    assert.deepEqual(await pub.getAuction(1), { id: 1, item: 'vase', status: 'settled', bidCount: 3, winner: 'bob', price: 150n });
    assert.equal(await creator.getBidder('carol'), carol, 'the same bidder gives the same presence');

    // Sealed: while bidding, only commitments are visible.
    const sealed = (await pub.getBids(2)) as BidDetails[];
    assert.deepEqual(
      sealed.map((b) => [b.bidder, b.amount, b.commitment]),
      [
        ['alice', null, commitment(2, 'alice', 10n, saltOf(2, 'alice'))],
        ['bob', null, commitment(2, 'bob', 20n, saltOf(2, 'bob'))],
        ['carol', null, commitment(2, 'carol', 17n, saltOf(2, 'carol'))],
      ],
    );

    await assert.rejects(bid(alice, 'alice', 9, 1n), /no auction 9/);
    await assert.rejects(bid(alice, 'alice', 2, 11n), /alice already bid in auction 2/);
    await assert.rejects(E(dave).bid(2, 'not-a-hash'), /a commitment is 16 lower-case hex digits/);
    await assert.rejects(bid(bob, 'bob', 3, 99n), /auction 3 is not taking bids \(revealing\)/);
    await assert.rejects(reveal(bob, 'bob', 2, 20n), /auction 2 is not in its reveal phase \(bidding\)/);
    await assert.rejects(E(dave).reveal(3, 90n, 'wrong salt'), /amount and salt do not match dave's commitment in auction 3/);
    await assert.rejects(E(dave).reveal(3, 91n, saltOf(3, 'dave')), /do not match dave's commitment/);
    // The wrong bidder: alice's amount and salt are useless to dave (the commitment binds the name).
    await assert.rejects(E(dave).reveal(3, 70n, saltOf(3, 'alice')), /do not match dave's commitment/);
    await assert.rejects(reveal(bob, 'bob', 3, 70n), /bob has no bid in auction 3/);
    await assert.rejects(reveal(alice, 'alice', 3, 70n), /alice already revealed in auction 3/);
    await assert.rejects(creator.settle(2), /auction 2 cannot be settled while bidding/);
    await assert.rejects(creator.settle(1), /auction 1 cannot be settled while settled/);
    await assert.rejects(pub.close(2), /no method "close"/);
    await assert.rejects(pub.makeBidder('alice'), /bidder "alice" already exists/);

    assert.deepEqual(await reveal(dave, 'dave', 3, 90n), {
      auctionId: 3, bidder: 'dave', commitment: commitment(3, 'dave', 90n, saltOf(3, 'dave')), seq: 8, amount: 90n,
    });
    assert.deepEqual(await creator.settle(3), { auctionId: 3, winner: 'dave', price: 90n, rule: 'first-price' });

    // Ties go to the earlier bid (bob's 20 came before a later 20).
    await bid(dave, 'dave', 2, 20n);
    assert.equal(await creator.close(2), 4);
    for (const [who, b, amount] of [['alice', alice, 10n], ['bob', bob, 20n], ['carol', carol, 17n], ['dave', dave, 20n]] as const) {
      await reveal(b, who, 2, amount);
    }
    assert.deepEqual(await creator.settle(2), { auctionId: 2, winner: 'bob', price: 20n, rule: 'first-price' });
    assert.deepEqual(
      ((await E(alice).listMyBids()) as BidDetails[]).map((b) => [b.auctionId, b.amount]),
      [[1, 100n], [2, 10n], [3, 70n]],
    );
  });

  it('upgrades to v2 with sealed bids: they survive, migrate lazily, and settle second-price with a reserve', async () => {
    const { alice, bob, carol, dave } = await populate();
    assert.deepEqual(await host.upgrade(kit.adminFacet, V2), { incarnation: 2 });
    const pub = E(kit.publicFacet);
    const creator = E(kit.creatorFacet);
    assert.deepEqual(await pub.getInfo(), { house: 'Sotheby-ish', version: 'v2', incarnation: 2, rule: 'second-price' });
    assert.equal(await creator.getBidder('alice'), alice, 'bidder presences from v1 are kept');

    // Lazy migration: nothing was migrated by the upgrade itself.
    assert.deepEqual(await pub.getMigrationStats(), { bids: 0, auctions: 0 });
    assert.deepEqual(await E(alice).getBid(2), {
      auctionId: 2, bidder: 'alice', commitment: commitment(2, 'alice', 10n, saltOf(2, 'alice')), seq: 4, amount: null, status: 'sealed',
    });
    assert.deepEqual(await pub.getMigrationStats(), { bids: 1, auctions: 0 });
    assert.deepEqual(await E(alice).getBid(2), await E(alice).getBid(2));
    assert.deepEqual(await pub.getMigrationStats(), { bids: 1, auctions: 0 }, 'a record migrates once');

    // Auction 1 was settled under v1: its record keeps the v1 result and rule.
    assert.deepEqual(await pub.getAuction(1), {
      id: 1, item: 'vase', status: 'settled', bidCount: 3, winner: 'bob', price: 150n, reservePrice: 0n, rule: 'first-price', settlement: null,
    });
    await assert.rejects(pub.getSettlement(1), /auction 1 has no settlement record \(settled before v2\)/);
    assert.deepEqual(
      ((await pub.getBids(1)) as BidDetails[]).map((b) => [b.bidder, b.amount, b.status]),
      [['alice', 100n, 'revealed'], ['bob', 150n, 'revealed'], ['carol', null, 'sealed']],
    );
    assert.deepEqual(await pub.getMigrationStats(), { bids: 4, auctions: 1 });

    // Auction 2 was taking bids at the upgrade: new reserve, one more bid, then second price.
    await creator.setReserve(2, 15n);
    assert.deepEqual(await bid(dave, 'dave', 2, 18n), { auctionId: 2, seq: 9 });
    assert.equal(await creator.close(2), 4);
    await assert.rejects(creator.setReserve(2, 1n), /the reserve can change only while bidding \(revealing\)/);
    await assert.rejects(E(carol).reveal(2, 20n, saltOf(2, 'bob')), /do not match carol's commitment in auction 2/);
    for (const [who, b, amount] of [['alice', alice, 10n], ['bob', bob, 20n], ['carol', carol, 17n], ['dave', dave, 18n]] as const) {
      assert.equal(((await reveal(b, who, 2, amount)) as BidDetails).status, 'revealed');
    }
    const s2 = await creator.settle(2);
    assert.deepEqual(await E(s2).getDetails(), {
      auctionId: 2, item: 'lamp', rule: 'second-price', reservePrice: 15n, winner: 'bob', price: 18n, highestBid: 20n, eligibleBids: 3, revealedBids: 4,
    });
    assert.equal(await pub.getSettlement(2), s2, 'the Settlement keeps its identity');
    const a2 = (await pub.getAuction(2)) as { status: string; winner: string; price: bigint; rule: string; settlement: unknown };
    assert.deepEqual([a2.status, a2.winner, a2.price, a2.rule], ['settled', 'bob', 18n, 'second-price']);
    assert.equal(a2.settlement, s2);
    assert.deepEqual(
      ((await pub.getBids(2)) as BidDetails[]).map((b) => [b.bidder, b.status]),
      [['alice', 'below-reserve'], ['bob', 'won'], ['carol', 'lost'], ['dave', 'lost']],
    );

    // Auction 3 was mid-reveal at the upgrade: dave reveals with his v1 presence; he pays alice's 70.
    await reveal(dave, 'dave', 3, 90n);
    const s3 = await creator.settle(3);
    const d3 = (await E(s3).getDetails()) as { winner: string; price: bigint; highestBid: bigint };
    assert.deepEqual([d3.winner, d3.price, d3.highestBid], ['dave', 70n, 90n]);
    assert.deepEqual(await pub.getMigrationStats(), { bids: 8, auctions: 3 }, 'every v1 record has been read by now');

    // New auctions: nothing reaches the reserve -> unsold; a lone eligible bid pays the reserve.
    const a4 = await creator.createAuction('painting', 500n);
    const a5 = await creator.createAuction('rug', 50n);
    assert.deepEqual([a4, a5], [4, 5]);
    await bid(alice, 'alice', a4, 400n);
    await bid(bob, 'bob', a4, 450n);
    await bid(carol, 'carol', a5, 80n);
    await bid(dave, 'dave', a5, 99n);
    await creator.close(a4);
    await creator.close(a5);
    await reveal(alice, 'alice', a4, 400n);
    await reveal(bob, 'bob', a4, 450n);
    await reveal(carol, 'carol', a5, 80n);
    const d4 = (await E(await creator.settle(a4)).getDetails()) as { winner: unknown; price: unknown; eligibleBids: number };
    assert.deepEqual([d4.winner, d4.price, d4.eligibleBids], [null, null, 0]);
    assert.equal(((await pub.getAuction(a4)) as { status: string }).status, 'unsold');
    const d5 = (await E(await creator.settle(a5)).getDetails()) as { winner: unknown; price: unknown };
    assert.deepEqual([d5.winner, d5.price], ['carol', 50n]);
    assert.deepEqual(
      ((await pub.getBids(a5)) as BidDetails[]).map((b) => [b.bidder, b.status]),
      [['carol', 'won'], ['dave', 'unrevealed']],
    );
    assert.deepEqual(await pub.getMigrationStats(), { bids: 8, auctions: 3 }, 'records written by v2 need no migration');
  });

  it('refuses a v2 that does not redefine the installation-level Bid kind, and v1 keeps serving unchanged', async () => {
    const { alice, dave } = await populate();
    await assertUpgradeRefused(host.upgrade(kit.adminFacet, withoutKindDefinition(V2, 'Bid')), 'Bid');

    const pub = E(kit.publicFacet);
    const creator = E(kit.creatorFacet);
    assert.deepEqual(await pub.getInfo(), { house: 'Sotheby-ish', version: 'v1', incarnation: 1, rule: 'first-price' });
    assert.deepEqual(await E(alice).getBid(2), {
      auctionId: 2, bidder: 'alice', commitment: commitment(2, 'alice', 10n, saltOf(2, 'alice')), seq: 4, amount: null,
    });
    assert.deepEqual(await pub.getAuction(3), { id: 3, item: 'clock', status: 'revealing', bidCount: 2, winner: null, price: null });
    await assert.rejects(pub.getMigrationStats(), /no method "getMigrationStats"/);
    // Still first price.
    await reveal(dave, 'dave', 3, 90n);
    assert.deepEqual(await creator.settle(3), { auctionId: 3, winner: 'dave', price: 90n, rule: 'first-price' });

    assert.deepEqual(await host.upgrade(kit.adminFacet, V2), { incarnation: 2 });
    assert.equal(((await E(alice).getBid(2)) as BidDetails).status, 'sealed');
    assert.deepEqual(await pub.getMigrationStats(), { bids: 1, auctions: 0 });
  });
});
