// Covered-call escrow, version 1.
//
// Holdings are kept per wallet, by brand (strings; the money brand comes from
// parameters.moneyBrand, default "USD"). Time is a block height that only the
// creator (standing in for the chain's clock) advances: no wall clock.
//
// A seller writes a covered call: the asset (brand + amount) moves from the
// seller's wallet into escrow, and the seller gets a CallOption: the right to
// buy that asset for `strike` money until block `expiresAt` (exclusive). The
// seller hands the option to a buyer, who exercises it with their own wallet
// (all or nothing in v1). The seller may cancel an open offer; when the block
// height reaches expiresAt, advanceBlocks returns the asset to the seller.
//
// publicFacet:  openWallet(name) -> Wallet, getOffer(id), listOpenOffers(),
//               getBlockHeight(), getInfo()
// creatorFacet: deposit(walletName, brand, amount), advanceBlocks(n) -> expired ids,
//               getBlockHeight(), getWallet(name) -> Wallet
// Wallet:       getName(), getHoldings(), writeCall(brand, amount, strike, durationBlocks)
//               -> CallOption, exercise(option) -> holdings, cancel(option) -> holdings
// CallOption:   getId(), getDetails()
import { provideKindHandle, defineDurableKind, provideDurableMapStore, provide } from '@quickvat/vat-data';

const VERSION = 'v1';

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

export const defineInstallationKinds = (installationBaggage, tools) => {
  const incarnation = tools.incarnation;

  return (instanceBaggage, context) => {
    const parameters = context.parameters ?? {};
    const moneyBrand = provide(instanceBaggage, 'moneyBrand', () => String(parameters.moneyBrand ?? 'USD'));
    provide(instanceBaggage, 'height', () => 0n);
    provide(instanceBaggage, 'nextOfferId', () => 1);
    const wallets = provideDurableMapStore(instanceBaggage, 'wallets'); // name -> { record, wallet }
    const offers = provideDurableMapStore(instanceBaggage, 'offers'); // id -> { offer, option }
    const openByExpiry = provideDurableMapStore(instanceBaggage, 'openByExpiry'); // pad(expiresAt)/pad(id) -> id

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
        exercise({ state }, option) {
          const offer = offerOfOption(option);
          const d = offer.getDetails();
          if (d.status !== 'open') throw Error(`offer ${d.id} is ${d.status}`);
          if (height() >= d.expiresAt) throw Error(`offer ${d.id} expired at block ${d.expiresAt} (now ${height()})`);
          const buyer = state.record;
          const buyerName = buyer.getName();
          if (buyerName === d.seller) throw Error('the seller cannot exercise their own offer');
          buyer.debit(moneyBrand, d.strike);
          lookupWallet(d.seller).record.credit(moneyBrand, d.strike);
          buyer.credit(d.brand, d.amount);
          offer.close('exercised', buyerName);
          openByExpiry.delete(expiryKey(d.expiresAt, d.id));
          return buyer.getHoldings();
        },
        cancel({ state }, option) {
          const offer = offerOfOption(option);
          const d = offer.getDetails();
          if (d.seller !== state.record.getName()) throw Error(`only the seller (${d.seller}) can cancel offer ${d.id}`);
          if (d.status !== 'open') throw Error(`offer ${d.id} is ${d.status}`);
          state.record.credit(d.brand, d.amount);
          offer.close('cancelled', null);
          openByExpiry.delete(expiryKey(d.expiresAt, d.id));
          return state.record.getHoldings();
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
        buyer: null,
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
            buyer: state.buyer,
          };
        },
        close({ state }, status, buyer) {
          state.status = status;
          state.buyer = buyer;
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
          return { moneyBrand, version: VERSION, incarnation };
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
            lookupWallet(d.seller).record.credit(d.brand, d.amount);
            offer.close('expired', null);
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
      },
    );

    return () => ({ publicFacet: makePublicFacet(), creatorFacet: makeCreatorFacet() });
  };
};
