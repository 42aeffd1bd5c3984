// Covered-call escrow, version 2 (an upgrade of v1; also installable fresh).
//
// Changes from v1:
// - behaviour: partial exercise. wallet.exercise(option, quantity?) buys part
//   of the escrowed asset (default: all that remains); the price is pro rata,
//   rounded so that the fills of an offer always add up to exactly the strike.
//   The offer stays open until nothing remains. Cancelling an open offer
//   costs the seller a cancellation fee (privateArgs.cancelFee, default 3n
//   money) that goes to the escrow; expiry still returns the rest for free.
// - schema: Offer records (stateVersion 1) drop `buyer` and gain `remaining`,
//   `fills` ([{ buyer, quantity, paid, block }]) and `migratedAtBlock` (the
//   block height at which a v1 record was first read under v2, i.e. lazily
//   migrated; null for offers written by v2).
// - new durable kind ExerciseReceipt: exercise returns one (getDetails());
//   publicFacet.listReceipts() lists them all.
// - creatorFacet gains getFeesCollected() and setCancelFee(fee).
//
// privateArgs (at start or upgrade, optional): { cancelFee: bigint }
//
// Model (as in v1): holdings per wallet by brand; the money brand comes from
// parameters.moneyBrand (default "USD"); time is a block height that only the
// creator advances. An offer is exercisable while height < expiresAt.
//
// publicFacet:  openWallet(name) -> Wallet, getOffer(id), listOpenOffers(),
//               listReceipts(), getBlockHeight(), getInfo()
// creatorFacet: deposit(walletName, brand, amount), advanceBlocks(n) -> expired ids,
//               getBlockHeight(), getWallet(name) -> Wallet, getFeesCollected(), setCancelFee(fee)
// Wallet:       getName(), getHoldings(), writeCall(brand, amount, strike, durationBlocks)
//               -> CallOption, exercise(option, quantity?) -> ExerciseReceipt,
//               cancel(option) -> holdings, listReceipts()
// CallOption:   getId(), getDetails()
// ExerciseReceipt: getDetails()
import { provideKindHandle, defineDurableKind, provideDurableMapStore, provide } from '@quickvat/vat-data';

const VERSION = 'v2';
const OFFER_STATE_VERSION = 1;

const assertName = (name) => {
  if (typeof name !== 'string' || name === '' || name.length > 64) {
    throw TypeError(`wallet name must be a non-empty string of at most 64 characters, got ${typeof name === 'string' ? JSON.stringify(name) : typeof name}`);
  }
};
const assertBrand = (brand) => {
  if (typeof brand !== 'string' || !/^[A-Z][A-Z0-9]{0,15}$/.test(brand)) throw TypeError(`brand must be an upper-case word, got ${String(brand)}`);
};
const assertPositive = (what, value) => {
  if (typeof value !== 'bigint') throw TypeError(`${what} must be a bigint, got ${typeof value}`);
  if (value <= 0n) throw RangeError(`${what} must be positive, got ${value}`);
};
// Zero-padded so that string order is numeric order (expiry index keys).
const pad = (n) => String(n).padStart(20, '0');
const ceilDiv = (a, b) => (a + b - 1n) / b;

export const defineInstallationKinds = (installationBaggage, tools) => {
  const incarnation = tools.incarnation;

  return (instanceBaggage, context, privateArgs) => {
    const parameters = context.parameters ?? {};
    const moneyBrand = provide(instanceBaggage, 'moneyBrand', () => String(parameters.moneyBrand ?? 'USD'));
    provide(instanceBaggage, 'height', () => 0n);
    provide(instanceBaggage, 'nextOfferId', () => 1);
    provide(instanceBaggage, 'nextReceipt', () => 1);
    provide(instanceBaggage, 'feesCollected', () => 0n);
    const cancelFeeArg = privateArgs?.cancelFee;
    if (cancelFeeArg !== undefined) {
      if (typeof cancelFeeArg !== 'bigint' || cancelFeeArg < 0n) throw RangeError(`cancelFee must be a non-negative bigint, got ${String(cancelFeeArg)}`);
      if (instanceBaggage.has('cancelFee')) instanceBaggage.set('cancelFee', cancelFeeArg);
      else instanceBaggage.init('cancelFee', cancelFeeArg);
    } else {
      provide(instanceBaggage, 'cancelFee', () => 3n);
    }
    const wallets = provideDurableMapStore(instanceBaggage, 'wallets'); // name -> { record, wallet }
    const offers = provideDurableMapStore(instanceBaggage, 'offers'); // id -> { offer, option }
    const openByExpiry = provideDurableMapStore(instanceBaggage, 'openByExpiry'); // pad(expiresAt)/pad(id) -> id
    const receipts = provideDurableMapStore(instanceBaggage, 'receipts'); // seq -> ExerciseReceipt

    const height = () => instanceBaggage.get('height');
    const lookupWallet = (name) => {
      assertName(name);
      if (!wallets.has(name)) throw Error(`no wallet named ${JSON.stringify(name)}`);
      return wallets.get(name);
    };
    const lookupOffer = (id) => {
      if (!offers.has(id)) throw Error(`no offer ${String(id)}`);
      return offers.get(id);
    };
    // The offer behind a CallOption, checking that it really is one of ours.
    const offerOfOption = (option) => {
      if (typeof option?.getId !== 'function') throw TypeError('not a call option issued by this escrow');
      const id = option.getId();
      const entry = typeof id === 'number' && offers.has(id) ? offers.get(id) : undefined;
      if (!entry || entry.option !== option) throw TypeError('not a call option issued by this escrow');
      return entry.offer;
    };
    const expiryKey = (expiresAt, id) => `${pad(expiresAt)}/${pad(id)}`;

    // ------------------------------------------------------------ wallets
    const makeWalletRecord = defineDurableKind(
      provideKindHandle(instanceBaggage, 'WalletRecord'),
      (name) => ({ name, holdings: {} }),
      {
        getName({ state }) {
          return state.name;
        },
        getHoldings({ state }) {
          return state.holdings;
        },
        balanceOf({ state }, brand) {
          return state.holdings[brand] ?? 0n;
        },
        credit({ state }, brand, amount) {
          state.holdings = { ...state.holdings, [brand]: (state.holdings[brand] ?? 0n) + amount };
        },
        debit({ state }, brand, amount) {
          const has = state.holdings[brand] ?? 0n;
          if (has < amount) throw RangeError(`insufficient ${brand} in wallet ${JSON.stringify(state.name)}: has ${has}, needs ${amount}`);
          state.holdings = { ...state.holdings, [brand]: has - amount };
        },
      },
    );

    const makeWallet = defineDurableKind(
      provideKindHandle(instanceBaggage, 'Wallet'),
      (record) => ({ record }),
      {
        getName({ state }) {
          return state.record.getName();
        },
        getHoldings({ state }) {
          return state.record.getHoldings();
        },
        writeCall({ state }, brand, amount, strike, durationBlocks) {
          assertBrand(brand);
          if (brand === moneyBrand) throw TypeError(`the asset of a covered call cannot be the money brand ${moneyBrand}`);
          assertPositive('amount', amount);
          assertPositive('strike', strike);
          assertPositive('durationBlocks', durationBlocks);
          state.record.debit(brand, amount);
          const id = instanceBaggage.get('nextOfferId');
          instanceBaggage.set('nextOfferId', id + 1);
          const now = height();
          const offer = makeOffer({ id, seller: state.record.getName(), brand, amount, strike, createdAt: now, expiresAt: now + durationBlocks });
          const option = makeCallOption(id);
          offers.init(id, { offer, option });
          openByExpiry.init(expiryKey(now + durationBlocks, id), id);
          return option;
        },
        // Buys `quantity` (default: everything that remains) of the offer's
        // asset; returns an ExerciseReceipt.
        exercise({ state }, option, quantity) {
          const offer = offerOfOption(option);
          const d = offer.getDetails();
          if (d.status !== 'open') throw Error(`offer ${d.id} is ${d.status}`);
          if (height() >= d.expiresAt) throw Error(`offer ${d.id} expired at block ${d.expiresAt} (now ${height()})`);
          const want = quantity === undefined ? d.remaining : quantity;
          assertPositive('quantity', want);
          if (want > d.remaining) throw RangeError(`offer ${d.id} has only ${d.remaining} ${d.brand} left, asked for ${want}`);
          const buyer = state.record;
          const buyerName = buyer.getName();
          if (buyerName === d.seller) throw Error('the seller cannot exercise their own offer');
          // Cumulative pro-rata price: the fills always add up to the strike.
          const filledBefore = d.amount - d.remaining;
          const filledAfter = filledBefore + want;
          const price = ceilDiv(d.strike * filledAfter, d.amount) - ceilDiv(d.strike * filledBefore, d.amount);
          buyer.debit(moneyBrand, price);
          lookupWallet(d.seller).record.credit(moneyBrand, price);
          buyer.credit(d.brand, want);
          const now = height();
          offer.fill(buyerName, want, price, now);
          if (want === d.remaining) openByExpiry.delete(expiryKey(d.expiresAt, d.id));
          const seq = instanceBaggage.get('nextReceipt');
          instanceBaggage.set('nextReceipt', seq + 1);
          const receipt = makeExerciseReceipt({ seq, offerId: d.id, buyer: buyerName, seller: d.seller, brand: d.brand, quantity: want, paid: price, block: now });
          receipts.init(seq, receipt);
          return receipt;
        },
        // Returns what remains of an open offer to its seller, for the
        // cancellation fee.
        cancel({ state }, option) {
          const offer = offerOfOption(option);
          const d = offer.getDetails();
          if (d.seller !== state.record.getName()) throw Error(`only the seller (${d.seller}) can cancel offer ${d.id}`);
          if (d.status !== 'open') throw Error(`offer ${d.id} is ${d.status}`);
          const fee = instanceBaggage.get('cancelFee');
          if (fee > 0n) {
            state.record.debit(moneyBrand, fee);
            instanceBaggage.set('feesCollected', instanceBaggage.get('feesCollected') + fee);
          }
          state.record.credit(d.brand, d.remaining);
          offer.close('cancelled');
          openByExpiry.delete(expiryKey(d.expiresAt, d.id));
          return state.record.getHoldings();
        },
        listReceipts({ state }) {
          const name = state.record.getName();
          return [...receipts.values()].map((r) => r.getDetails()).filter((r) => r.buyer === name);
        },
      },
    );

    // ------------------------------------------------------------ offers
    const makeOffer = defineDurableKind(
      provideKindHandle(instanceBaggage, 'Offer'),
      ({ id, seller, brand, amount, strike, createdAt, expiresAt }) => ({
        id,
        seller,
        brand,
        amount,
        strike,
        createdAt,
        expiresAt,
        status: 'open',
        remaining: amount,
        fills: [],
        migratedAtBlock: null,
      }),
      {
        getDetails({ state }) {
          return {
            id: state.id,
            seller: state.seller,
            brand: state.brand,
            amount: state.amount,
            strike: state.strike,
            createdAt: state.createdAt,
            expiresAt: state.expiresAt,
            status: state.status,
            remaining: state.remaining,
            fills: state.fills,
            migratedAtBlock: state.migratedAtBlock,
          };
        },
        fill({ state }, buyer, quantity, paid, block) {
          state.fills = [...state.fills, { buyer, quantity, paid, block }];
          state.remaining = state.remaining - quantity;
          if (state.remaining === 0n) state.status = 'exercised';
        },
        // Ends an open offer; what remained is no longer in escrow.
        close({ state }, status) {
          state.status = status;
          state.remaining = 0n;
        },
      },
      {
        stateVersion: OFFER_STATE_VERSION,
        migrate(old, oldVersion) {
          if (oldVersion !== 0) throw Error(`Offer: cannot migrate from state version ${oldVersion}`);
          const { buyer, ...rest } = old;
          return {
            ...rest,
            remaining: old.status === 'open' ? old.amount : 0n,
            // v1 recorded an exercise but not its block.
            fills: buyer === null ? [] : [{ buyer, quantity: old.amount, paid: old.strike, block: null }],
            migratedAtBlock: height(),
          };
        },
      },
    );

    const makeExerciseReceipt = defineDurableKind(
      provideKindHandle(instanceBaggage, 'ExerciseReceipt'),
      (details) => ({ ...details }),
      {
        getDetails({ state }) {
          return {
            seq: state.seq,
            offerId: state.offerId,
            buyer: state.buyer,
            seller: state.seller,
            brand: state.brand,
            quantity: state.quantity,
            paid: state.paid,
            block: state.block,
          };
        },
      },
    );

    const makeCallOption = defineDurableKind(
      provideKindHandle(instanceBaggage, 'CallOption'),
      (id) => ({ id }),
      {
        getId({ state }) {
          return state.id;
        },
        getDetails({ state }) {
          return lookupOffer(state.id).offer.getDetails();
        },
      },
    );

    // ------------------------------------------------------------ facets
    const makePublicFacet = defineDurableKind(
      provideKindHandle(instanceBaggage, 'EscrowPublic'),
      () => ({}),
      {
        openWallet(_, name) {
          assertName(name);
          if (wallets.has(name)) throw Error(`wallet ${JSON.stringify(name)} already exists`);
          const record = makeWalletRecord(name);
          const wallet = makeWallet(record);
          wallets.init(name, { record, wallet });
          return wallet;
        },
        getOffer(_, id) {
          return lookupOffer(id).offer.getDetails();
        },
        listOpenOffers() {
          return [...openByExpiry.values()].sort((a, b) => a - b).map((id) => lookupOffer(id).offer.getDetails());
        },
        getBlockHeight() {
          return height();
        },
        getInfo() {
          return { moneyBrand, version: VERSION, incarnation, cancelFee: instanceBaggage.get('cancelFee') };
        },
        listReceipts() {
          return [...receipts.values()].map((r) => r.getDetails());
        },
      },
    );

    const makeCreatorFacet = defineDurableKind(
      provideKindHandle(instanceBaggage, 'EscrowCreator'),
      () => ({}),
      {
        deposit(_, name, brand, amount) {
          assertBrand(brand);
          assertPositive('amount', amount);
          const { record } = lookupWallet(name);
          record.credit(brand, amount);
          return record.getHoldings();
        },
        // Advances the clock; every open offer whose expiry is reached goes back
        // to its seller. Returns the ids of the offers that expired.
        advanceBlocks(_, n) {
          assertPositive('n', n);
          const now = height() + n;
          instanceBaggage.set('height', now);
          const due = [...openByExpiry.entries({ end: pad(now + 1n) })];
          for (const [key, id] of due) {
            const { offer } = lookupOffer(id);
            const d = offer.getDetails();
            lookupWallet(d.seller).record.credit(d.brand, d.remaining);
            offer.close('expired');
            openByExpiry.delete(key);
          }
          return due.map(([, id]) => id);
        },
        getBlockHeight() {
          return height();
        },
        getWallet(_, name) {
          return lookupWallet(name).wallet;
        },
        getFeesCollected() {
          return instanceBaggage.get('feesCollected');
        },
        setCancelFee(_, fee) {
          if (typeof fee !== 'bigint' || fee < 0n) throw RangeError(`cancelFee must be a non-negative bigint, got ${String(fee)}`);
          instanceBaggage.set('cancelFee', fee);
        },
      },
    );

    return () => ({ publicFacet: makePublicFacet(), creatorFacet: makeCreatorFacet() });
  };
};
