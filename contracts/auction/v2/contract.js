// Sealed-bid auction, version 2: second-price (Vickrey) with a reserve price.
// (An upgrade of v1; also installable fresh.)
//
// Changes from v1:
// - behaviour: settlement is second-price: among revealed bids at or above the
//   auction's reserve price, the highest wins (ties: the earlier bid) and pays
//   the second-highest eligible bid, or the reserve if there is none. If no
//   bid reaches the reserve the auction ends "unsold". Auctions still open at
//   the upgrade settle under the new rule (their reserve is 0n).
//   createAuction(item, reservePrice?) and setReserve(id, price) (while
//   bidding) are new.
// - schema: Bid records (installation-level kind, stateVersion 1) gain
//   `status`: sealed | revealed | won | lost | below-reserve | unrevealed.
//   Auction records (stateVersion 1) gain `reservePrice`, `rule` and
//   `settlement`. Both migrate lazily when first read; publicFacet.
//   getMigrationStats() counts the records migrated so far.
// - new durable kind Settlement: settle returns one (getDetails()), and
//   auction details carry it.
//
// As in v1: the creator opens auctions; bidders submit sealed bids
// (commitments), the creator closes bidding, bidders reveal (amount + salt,
// checked against the commitment), and the creator settles.
//
// A commitment is commitmentOf(auctionId, bidderName, amount, salt): a 64-bit
// FNV-1a hash (hex) of `${auctionId}|${bidderName}|${amount}|${salt}`. There is
// no crypto in the vat, so this is illustrative, not a secure commitment.
// Binding the bidder's name means a copied commitment is useless to others.
//
// publicFacet:  makeBidder(name) -> Bidder, getAuction(id), listAuctions(),
//               getBids(id) (commitments; amounts once revealed),
//               makeCommitment(auctionId, bidder, amount, salt), getInfo(),
//               getSettlement(id) -> Settlement, getMigrationStats()
// creatorFacet: createAuction(item, reservePrice?) -> id, setReserve(id, price),
//               close(id) -> bid count, settle(id) -> Settlement, getBidder(name)
// Settlement:   getDetails() -> { auctionId, item, rule, reservePrice, winner,
//               price, highestBid, eligibleBids, revealedBids }
// Bidder:       getName(), bid(auctionId, commitment) -> { auctionId, seq },
//               reveal(auctionId, amount, salt), getBid(auctionId), listMyBids()
//
// Kinds: Bid is defined at installation level (its behaviour needs nothing of
// the instance); Auction, Bidder and the facets at instance level.
import { provideKindHandle, defineDurableKind, provideDurableMapStore, provide } from '@quickvat/vat-data';

const VERSION = 'v2';
const BID_STATE_VERSION = 1;
const AUCTION_STATE_VERSION = 1;
const MASK64 = 0xffffffffffffffffn;

/** 64-bit FNV-1a over UTF-16 code units, as 16 hex digits. */
export const fnv1a64 = (text) => {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i += 1) {
    h ^= BigInt(text.charCodeAt(i));
    h = (h * 0x100000001b3n) & MASK64;
  }
  return h.toString(16).padStart(16, '0');
};
export const commitmentOf = (auctionId, bidder, amount, salt) => fnv1a64(`${auctionId}|${bidder}|${amount}|${salt}`);

const assertName = (name) => {
  if (typeof name !== 'string' || name === '' || name.length > 64) {
    throw TypeError(`bidder name must be a non-empty string of at most 64 characters, got ${typeof name === 'string' ? JSON.stringify(name) : typeof name}`);
  }
};
const assertAmount = (amount) => {
  if (typeof amount !== 'bigint') throw TypeError(`bid amount must be a bigint, got ${typeof amount}`);
  if (amount <= 0n) throw RangeError(`bid amount must be positive, got ${amount}`);
};
const assertPrice = (price) => {
  if (typeof price !== 'bigint' || price < 0n) throw RangeError(`reserve price must be a non-negative bigint, got ${String(price)}`);
};
const assertCommitment = (c) => {
  if (typeof c !== 'string' || !/^[0-9a-f]{16}$/.test(c)) throw TypeError('a commitment is 16 lower-case hex digits');
};
const pad = (n) => String(n).padStart(10, '0');
// Bids are keyed auction first, so one auction's bids are one key range.
const bidKey = (auctionId, bidder) => `${pad(auctionId)}/${bidder}`;
const bidRange = (auctionId) => ({ start: `${pad(auctionId)}/`, end: `${pad(auctionId)}0` });

export const defineInstallationKinds = (installationBaggage, tools) => {
  const incarnation = tools.incarnation;

  // Each instance counts its own migrations (installation baggage is copied
  // into every instance when it starts).
  provide(installationBaggage, 'migratedBids', () => 0);
  const makeBid = defineDurableKind(
    provideKindHandle(installationBaggage, 'Bid'),
    ({ auctionId, bidder, commitment, seq }) => ({ auctionId, bidder, commitment, seq, amount: null, status: 'sealed' }),
    {
      getDetails({ state }) {
        return {
          auctionId: state.auctionId,
          bidder: state.bidder,
          commitment: state.commitment,
          seq: state.seq,
          amount: state.amount,
          status: state.status,
        };
      },
      matches({ state }, amount, salt) {
        return commitmentOf(state.auctionId, state.bidder, amount, salt) === state.commitment;
      },
      recordReveal({ state }, amount) {
        state.amount = amount;
        state.status = 'revealed';
      },
      setStatus({ state }, status) {
        state.status = status;
      },
    },
    {
      stateVersion: BID_STATE_VERSION,
      migrate(old, oldVersion) {
        if (oldVersion !== 0) throw Error(`Bid: cannot migrate from state version ${oldVersion}`);
        installationBaggage.set('migratedBids', installationBaggage.get('migratedBids') + 1);
        return { ...old, status: old.amount === null ? 'sealed' : 'revealed' };
      },
    },
  );

  return (instanceBaggage, context) => {
    const parameters = context.parameters ?? {};
    const house = provide(instanceBaggage, 'house', () => String(parameters.house ?? 'auction house'));
    provide(instanceBaggage, 'nextAuctionId', () => 1);
    provide(instanceBaggage, 'nextBidSeq', () => 1);
    provide(instanceBaggage, 'migratedAuctions', () => 0);
    const auctions = provideDurableMapStore(instanceBaggage, 'auctions'); // id -> Auction
    const bidders = provideDurableMapStore(instanceBaggage, 'bidders'); // name -> Bidder
    const bids = provideDurableMapStore(instanceBaggage, 'bids'); // bidKey -> Bid

    const lookupAuction = (id) => {
      if (typeof id !== 'number' || !auctions.has(id)) throw Error(`no auction ${String(id)}`);
      return auctions.get(id);
    };
    const bidsOf = (auctionId) => [...bids.values(bidRange(auctionId))];

    const makeAuction = defineDurableKind(
      provideKindHandle(instanceBaggage, 'Auction'),
      (id, item, reservePrice) => ({
        id,
        item,
        status: 'bidding',
        bidCount: 0,
        winner: null,
        price: null,
        reservePrice,
        rule: 'second-price',
        settlement: null,
      }),
      {
        getDetails({ state }) {
          return {
            id: state.id,
            item: state.item,
            status: state.status,
            bidCount: state.bidCount,
            winner: state.winner,
            price: state.price,
            reservePrice: state.reservePrice,
            rule: state.rule,
            settlement: state.settlement,
          };
        },
        getStatus({ state }) {
          return state.status;
        },
        getSettlement({ state }) {
          if (state.settlement === null) throw Error(`auction ${state.id} has no settlement record (${state.status === 'settled' ? 'settled before v2' : state.status})`);
          return state.settlement;
        },
        countBid({ state }) {
          state.bidCount = state.bidCount + 1;
        },
        setReserve({ state }, price) {
          assertPrice(price);
          if (state.status !== 'bidding') throw Error(`auction ${state.id}: the reserve can change only while bidding (${state.status})`);
          state.reservePrice = price;
        },
        close({ state }) {
          if (state.status !== 'bidding') throw Error(`auction ${state.id} is not taking bids (${state.status})`);
          state.status = 'revealing';
          return state.bidCount;
        },
        settle({ state }) {
          if (state.status !== 'revealing') throw Error(`auction ${state.id} cannot be settled while ${state.status}`);
          const reserve = state.reservePrice;
          const all = bidsOf(state.id);
          // Eligible: revealed and at or above the reserve; best first, ties to the earlier bid.
          const eligible = all
            .map((bid) => ({ bid, d: bid.getDetails() }))
            .filter(({ d }) => d.amount !== null && d.amount >= reserve)
            .sort((a, b) => (a.d.amount === b.d.amount ? a.d.seq - b.d.seq : a.d.amount > b.d.amount ? -1 : 1));
          const revealed = all.filter((bid) => bid.getDetails().amount !== null).length;
          const first = eligible[0];
          const second = eligible[1];
          let price = null;
          if (first) price = second ? second.d.amount : reserve;
          for (const bid of all) {
            const d = bid.getDetails();
            if (d.amount === null) bid.setStatus('unrevealed');
            else if (d.amount < reserve) bid.setStatus('below-reserve');
            else bid.setStatus(first && d.seq === first.d.seq ? 'won' : 'lost');
          }
          const settlement = makeSettlement({
            auctionId: state.id,
            item: state.item,
            rule: 'second-price',
            reservePrice: reserve,
            winner: first ? first.d.bidder : null,
            price,
            highestBid: first ? first.d.amount : null,
            eligibleBids: eligible.length,
            revealedBids: revealed,
          });
          state.status = first ? 'settled' : 'unsold';
          state.winner = first ? first.d.bidder : null;
          state.price = price;
          state.rule = 'second-price';
          state.settlement = settlement;
          return settlement;
        },
      },
      {
        stateVersion: AUCTION_STATE_VERSION,
        migrate(old, oldVersion) {
          if (oldVersion !== 0) throw Error(`Auction: cannot migrate from state version ${oldVersion}`);
          instanceBaggage.set('migratedAuctions', instanceBaggage.get('migratedAuctions') + 1);
          // Settled under v1 = first price; anything still open settles under v2's rule.
          return { ...old, reservePrice: 0n, rule: old.status === 'settled' ? 'first-price' : 'second-price', settlement: null };
        },
      },
    );

    const makeSettlement = defineDurableKind(
      provideKindHandle(instanceBaggage, 'Settlement'),
      (details) => ({ ...details }),
      {
        getDetails({ state }) {
          return {
            auctionId: state.auctionId,
            item: state.item,
            rule: state.rule,
            reservePrice: state.reservePrice,
            winner: state.winner,
            price: state.price,
            highestBid: state.highestBid,
            eligibleBids: state.eligibleBids,
            revealedBids: state.revealedBids,
          };
        },
      },
    );

    const makeBidder = defineDurableKind(
      provideKindHandle(instanceBaggage, 'Bidder'),
      (name) => ({ name }),
      {
        getName({ state }) {
          return state.name;
        },
        bid({ state }, auctionId, commitment) {
          assertCommitment(commitment);
          const auction = lookupAuction(auctionId);
          if (auction.getStatus() !== 'bidding') throw Error(`auction ${auctionId} is not taking bids (${auction.getStatus()})`);
          const key = bidKey(auctionId, state.name);
          if (bids.has(key)) throw Error(`${state.name} already bid in auction ${auctionId}`);
          const seq = instanceBaggage.get('nextBidSeq');
          instanceBaggage.set('nextBidSeq', seq + 1);
          bids.init(key, makeBid({ auctionId, bidder: state.name, commitment, seq }));
          auction.countBid();
          return { auctionId, seq };
        },
        reveal({ state }, auctionId, amount, salt) {
          assertAmount(amount);
          if (typeof salt !== 'string') throw TypeError('salt must be a string');
          const auction = lookupAuction(auctionId);
          if (auction.getStatus() !== 'revealing') throw Error(`auction ${auctionId} is not in its reveal phase (${auction.getStatus()})`);
          const key = bidKey(auctionId, state.name);
          if (!bids.has(key)) throw Error(`${state.name} has no bid in auction ${auctionId}`);
          const bid = bids.get(key);
          if (bid.getDetails().amount !== null) throw Error(`${state.name} already revealed in auction ${auctionId}`);
          if (!bid.matches(amount, salt)) throw Error(`amount and salt do not match ${state.name}'s commitment in auction ${auctionId}`);
          bid.recordReveal(amount);
          return bid.getDetails();
        },
        getBid({ state }, auctionId) {
          const key = bidKey(auctionId, state.name);
          if (!bids.has(key)) throw Error(`${state.name} has no bid in auction ${auctionId}`);
          return bids.get(key).getDetails();
        },
        listMyBids({ state }) {
          return [...bids.values()].map((b) => b.getDetails()).filter((d) => d.bidder === state.name);
        },
      },
    );

    const makePublicFacet = defineDurableKind(
      provideKindHandle(instanceBaggage, 'AuctionPublic'),
      () => ({}),
      {
        makeBidder(_, name) {
          assertName(name);
          if (bidders.has(name)) throw Error(`bidder ${JSON.stringify(name)} already exists`);
          const bidder = makeBidder(name);
          bidders.init(name, bidder);
          return bidder;
        },
        getAuction(_, id) {
          return lookupAuction(id).getDetails();
        },
        listAuctions() {
          return [...auctions.values()].map((a) => a.getDetails());
        },
        getBids(_, id) {
          lookupAuction(id);
          return bidsOf(id).map((b) => b.getDetails());
        },
        makeCommitment(_, auctionId, bidder, amount, salt) {
          return commitmentOf(auctionId, bidder, amount, salt);
        },
        getInfo() {
          return { house, version: VERSION, incarnation, rule: 'second-price' };
        },
        getSettlement(_, id) {
          return lookupAuction(id).getSettlement();
        },
        getMigrationStats() {
          return { bids: installationBaggage.get('migratedBids'), auctions: instanceBaggage.get('migratedAuctions') };
        },
      },
    );

    const makeCreatorFacet = defineDurableKind(
      provideKindHandle(instanceBaggage, 'AuctionCreator'),
      () => ({}),
      {
        createAuction(_, item, reservePrice = 0n) {
          if (typeof item !== 'string' || item === '') throw TypeError('an auction needs an item description');
          assertPrice(reservePrice);
          const id = instanceBaggage.get('nextAuctionId');
          instanceBaggage.set('nextAuctionId', id + 1);
          auctions.init(id, makeAuction(id, item, reservePrice));
          return id;
        },
        setReserve(_, id, price) {
          lookupAuction(id).setReserve(price);
        },
        close(_, id) {
          return lookupAuction(id).close();
        },
        settle(_, id) {
          return lookupAuction(id).settle();
        },
        getBidder(_, name) {
          assertName(name);
          if (!bidders.has(name)) throw Error(`no bidder named ${JSON.stringify(name)}`);
          return bidders.get(name);
        },
      },
    );

    return () => ({ publicFacet: makePublicFacet(), creatorFacet: makeCreatorFacet() });
  };
};
