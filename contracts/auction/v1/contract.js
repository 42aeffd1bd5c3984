// Sealed-bid auction, version 1: first-price.
//
// The creator opens auctions; bidders submit sealed bids (commitments), the
// creator closes bidding, bidders reveal (amount + salt, checked against the
// commitment), and the creator settles: the highest revealed bid wins and pays
// its own bid (ties go to the earlier bid). Unrevealed bids are ignored.
//
// A commitment is commitmentOf(auctionId, bidderName, amount, salt): a 64-bit
// FNV-1a hash (hex) of `${auctionId}|${bidderName}|${amount}|${salt}`. There is
// no crypto in the vat, so this is illustrative, not a secure commitment.
// Binding the bidder's name means a copied commitment is useless to others.
//
// publicFacet:  makeBidder(name) -> Bidder, getAuction(id), listAuctions(),
//               getBids(id) (commitments; amounts once revealed),
//               makeCommitment(auctionId, bidder, amount, salt), getInfo()
// creatorFacet: createAuction(item) -> id, close(id) -> bid count,
//               settle(id) -> { auctionId, winner, price, rule }, getBidder(name)
// Bidder:       getName(), bid(auctionId, commitment) -> { auctionId, seq },
//               reveal(auctionId, amount, salt), getBid(auctionId), listMyBids()
//
// Kinds: Bid is defined at installation level (its behaviour needs nothing of
// the instance); Auction, Bidder and the facets at instance level.
import { provideKindHandle, defineDurableKind, provideDurableMapStore, provide } from '@quickvat/vat-data';

const VERSION = 'v1';
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
const assertCommitment = (c) => {
  if (typeof c !== 'string' || !/^[0-9a-f]{16}$/.test(c)) throw TypeError('a commitment is 16 lower-case hex digits');
};
const pad = (n) => String(n).padStart(10, '0');
// Bids are keyed auction first, so one auction's bids are one key range.
const bidKey = (auctionId, bidder) => `${pad(auctionId)}/${bidder}`;
const bidRange = (auctionId) => ({ start: `${pad(auctionId)}/`, end: `${pad(auctionId)}0` });

export const defineInstallationKinds = (installationBaggage, tools) => {
  const incarnation = tools.incarnation;

  const makeBid = defineDurableKind(
    provideKindHandle(installationBaggage, 'Bid'),
    ({ auctionId, bidder, commitment, seq }) => ({ auctionId, bidder, commitment, seq, amount: null }),
    {
      getDetails({ state }) {
        return { auctionId: state.auctionId, bidder: state.bidder, commitment: state.commitment, seq: state.seq, amount: state.amount };
      },
      matches({ state }, amount, salt) {
        return commitmentOf(state.auctionId, state.bidder, amount, salt) === state.commitment;
      },
      recordReveal({ state }, amount) {
        state.amount = amount;
      },
    },
  );

  return (instanceBaggage, context) => {
    const parameters = context.parameters ?? {};
    const house = provide(instanceBaggage, 'house', () => String(parameters.house ?? 'auction house'));
    provide(instanceBaggage, 'nextAuctionId', () => 1);
    provide(instanceBaggage, 'nextBidSeq', () => 1);
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
      (id, item) => ({ id, item, status: 'bidding', bidCount: 0, winner: null, price: null }),
      {
        getDetails({ state }) {
          return { id: state.id, item: state.item, status: state.status, bidCount: state.bidCount, winner: state.winner, price: state.price };
        },
        getStatus({ state }) {
          return state.status;
        },
        countBid({ state }) {
          state.bidCount = state.bidCount + 1;
        },
        close({ state }) {
          if (state.status !== 'bidding') throw Error(`auction ${state.id} is not taking bids (${state.status})`);
          state.status = 'revealing';
          return state.bidCount;
        },
        settle({ state }) {
          if (state.status !== 'revealing') throw Error(`auction ${state.id} cannot be settled while ${state.status}`);
          // First price: the highest revealed bid wins and pays its bid.
          let best = null;
          for (const bid of bidsOf(state.id)) {
            const d = bid.getDetails();
            if (d.amount === null) continue;
            if (best === null || d.amount > best.amount || (d.amount === best.amount && d.seq < best.seq)) best = d;
          }
          state.status = 'settled';
          state.winner = best === null ? null : best.bidder;
          state.price = best === null ? null : best.amount;
          return { auctionId: state.id, winner: state.winner, price: state.price, rule: 'first-price' };
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
          return { house, version: VERSION, incarnation, rule: 'first-price' };
        },
      },
    );

    const makeCreatorFacet = defineDurableKind(
      provideKindHandle(instanceBaggage, 'AuctionCreator'),
      () => ({}),
      {
        createAuction(_, item) {
          if (typeof item !== 'string' || item === '') throw TypeError('an auction needs an item description');
          const id = instanceBaggage.get('nextAuctionId');
          instanceBaggage.set('nextAuctionId', id + 1);
          auctions.init(id, makeAuction(id, item));
          return id;
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
