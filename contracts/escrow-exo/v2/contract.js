// Covered-call escrow, version 2, in zone + exo style (upgrade of v1 with
// state intact). New in v2, as in contracts/escrow/v2:
// - partial exercise: exercise(option, quantity?) pays a pro-rata price
//   (rounded so the fills of an offer add up to the strike exactly) and
//   returns an ExerciseReceipt, a new exo class;
// - cancelling costs the seller a fee (privateArgs.cancelFee, default 3);
// - new methods: Wallet.listReceipts, publicFacet.listReceipts,
//   creatorFacet.getFeesCollected / setCancelFee.
// Every v1 kind is provided again under the same name with its (widened)
// guard; Offer's stateShape is unchanged, so v1 offers need no migration.
//
// As in v1, it is written the way Agoric authors write upgradable contracts:
//
// - everything durable is made through one durable zone over the instance
//   baggage (exo classes, kits, singletons, stores), so the next version finds
//   it by the same names;
// - every exo has an interface guard (M.interface): arguments and results are
//   checked before a method body runs, so bodies only check what patterns
//   cannot say;
// - records that must keep a fixed shape declare it (stateShape);
// - failures use Fail`...` and q() from @endo/errors.
//
// publicFacet:  openWallet(name) -> Wallet, getOffer(id), listOpenOffers(),
//               getBlockHeight(), getInfo()
// creatorFacet: deposit(walletName, brand, amount), advanceBlocks(n) -> expired ids,
//               getBlockHeight(), getWallet(name) -> Wallet
// Wallet:       getName(), getHoldings(), writeCall(brand, amount, strike, durationBlocks)
//               -> CallOption, exercise(option) -> holdings, cancel(option) -> holdings
// CallOption:   getId(), getDetails()
import { makeDurableZone } from '@agoric/zone/durable.js';
import { M } from '@endo/patterns';
import { Fail, q } from '@endo/errors';

const VERSION = 'v2';

// ------------------------------------------------------------ shapes
const NameShape = M.and(M.string(), M.not(''));
const BrandShape = M.string();
const AmountShape = M.and(M.nat(), M.gt(0n));
const HoldingsShape = M.recordOf(M.string(), M.nat());
const FillShape = harden({ buyer: M.string(), quantity: M.nat(), paid: M.nat(), block: M.or(M.nat(), M.null()) });
const OfferDetailsShape = M.splitRecord({
  id: M.number(),
  seller: M.string(),
  brand: BrandShape,
  amount: M.nat(),
  strike: M.nat(),
  createdAt: M.nat(),
  expiresAt: M.nat(),
  status: M.string(),
}, {}, M.record());

const WalletI = M.interface('Wallet', {
  getName: M.call().returns(M.string()),
  getHoldings: M.call().returns(HoldingsShape),
  writeCall: M.call(BrandShape, AmountShape, AmountShape, AmountShape).returns(M.remotable('CallOption')),
  exercise: M.call(M.remotable('CallOption')).optional(AmountShape).returns(M.remotable('ExerciseReceipt')),
  cancel: M.call(M.remotable('CallOption')).returns(HoldingsShape),
  listReceipts: M.call().returns(M.arrayOf(M.record())),
});
const ReceiptDetailsShape = harden({
  seq: M.number(),
  offerId: M.number(),
  buyer: M.string(),
  seller: M.string(),
  brand: BrandShape,
  quantity: M.nat(),
  paid: M.nat(),
  block: M.nat(),
});
const ReceiptI = M.interface('ExerciseReceipt', { getDetails: M.call().returns(ReceiptDetailsShape) });
// The ledger facet never leaves the contract; its guard still keeps bugs out.
const LedgerI = M.interface('WalletLedger', {
  credit: M.call(BrandShape, M.nat()).returns(),
  debit: M.call(BrandShape, M.nat()).returns(),
});
const OptionI = M.interface('CallOption', {
  getId: M.call().returns(M.number()),
  getDetails: M.call().returns(OfferDetailsShape),
});
const OfferControlI = M.interface('OfferControl', {
  getDetails: M.call().returns(OfferDetailsShape),
  fill: M.call(M.string(), M.nat(), M.nat(), M.nat()).returns(),
  close: M.call(M.string()).returns(),
});
const PublicI = M.interface('EscrowPublic', {
  openWallet: M.call(NameShape).returns(M.remotable('Wallet')),
  getOffer: M.call(M.number()).returns(OfferDetailsShape),
  listOpenOffers: M.call().returns(M.arrayOf(OfferDetailsShape)),
  getBlockHeight: M.call().returns(M.nat()),
  getInfo: M.call().returns(M.record()),
  listReceipts: M.call().returns(M.arrayOf(ReceiptDetailsShape)),
});
const CreatorI = M.interface('EscrowCreator', {
  deposit: M.call(NameShape, BrandShape, AmountShape).returns(HoldingsShape),
  advanceBlocks: M.call(AmountShape).returns(M.arrayOf(M.number())),
  getBlockHeight: M.call().returns(M.nat()),
  getWallet: M.call(NameShape).returns(M.remotable('Wallet')),
  getFeesCollected: M.call().returns(M.nat()),
  setCancelFee: M.call(M.nat()).returns(),
});

const assertBrand = (brand) => /^[A-Z][A-Z0-9]{0,15}$/.test(brand) || Fail`brand must be an upper-case word, got ${q(brand)}`;
// Zero-padded so that string order is numeric order (expiry index keys).
const pad = (n) => String(n).padStart(20, '0');
const expiryKey = (expiresAt, id) => `${pad(expiresAt)}/${pad(id)}`;
const ceilDiv = (a, b) => (a + b - 1n) / b;

export const defineInstallationKinds = (_installationBaggage, tools) => {
  const { incarnation } = tools;

  return (instanceBaggage, context, privateArgs) => {
    const zone = makeDurableZone(instanceBaggage);
    const meta = zone.mapStore('meta'); // moneyBrand, height, nextOfferId
    const parameters = context.parameters ?? {};
    if (!meta.has('moneyBrand')) {
      meta.init('moneyBrand', String(parameters.moneyBrand ?? 'USD'));
      meta.init('height', 0n);
      meta.init('nextOfferId', 1);
    }
    // Added by v2: present after the first v2 start, whether fresh or upgraded.
    if (!meta.has('nextReceipt')) {
      meta.init('nextReceipt', 1);
      meta.init('feesCollected', 0n);
      meta.init('cancelFee', 3n);
    }
    if (privateArgs?.cancelFee !== undefined) {
      const fee = privateArgs.cancelFee;
      (typeof fee === 'bigint' && fee >= 0n) || Fail`cancelFee must be a non-negative bigint, got ${q(fee)}`;
      meta.set('cancelFee', fee);
    }
    const moneyBrand = meta.get('moneyBrand');
    const wallets = zone.mapStore('wallets'); // name -> Wallet kit
    const offers = zone.mapStore('offers'); // id -> Offer kit
    const openByExpiry = zone.mapStore('openByExpiry'); // expiryKey -> id
    const receipts = zone.mapStore('receipts'); // seq -> ExerciseReceipt
    const height = () => meta.get('height');

    const lookupWallet = (name) => (wallets.has(name) ? wallets.get(name) : Fail`no wallet named ${q(name)}`);
    const lookupOffer = (id) => (offers.has(id) ? offers.get(id) : Fail`no offer ${q(id)}`);
    // The offer behind a CallOption: it must be the option facet of one of our offers.
    const controlOf = (option) => {
      const id = option.getId?.();
      const kit = typeof id === 'number' && offers.has(id) ? offers.get(id) : undefined;
      (kit && kit.option === option) || Fail`not a call option issued by this escrow`;
      return kit.control;
    };

    // ------------------------------------------------------------ wallets
    const makeWallet = zone.exoClassKit(
      'Wallet',
      { wallet: WalletI, ledger: LedgerI },
      (name) => ({ name, holdings: {} }),
      {
        wallet: {
          getName() {
            return this.state.name;
          },
          getHoldings() {
            return this.state.holdings;
          },
          writeCall(brand, amount, strike, durationBlocks) {
            assertBrand(brand);
            brand !== moneyBrand || Fail`the asset of a covered call cannot be the money brand ${q(moneyBrand)}`;
            this.facets.ledger.debit(brand, amount);
            const id = meta.get('nextOfferId');
            meta.set('nextOfferId', id + 1);
            const now = height();
            const expiresAt = now + durationBlocks;
            const kit = makeOffer({ id, seller: this.state.name, brand, amount, strike, createdAt: now, expiresAt });
            offers.init(id, kit);
            openByExpiry.init(expiryKey(expiresAt, id), id);
            return kit.option;
          },
          exercise(option, quantity = undefined) {
            const control = controlOf(option);
            const d = control.getDetails();
            d.status === 'open' || Fail`offer ${q(d.id)} is ${q(d.status)}`;
            height() < d.expiresAt || Fail`offer ${q(d.id)} expired at block ${q(d.expiresAt)} (now ${q(height())})`;
            const want = quantity ?? d.remaining;
            want <= d.remaining || Fail`offer ${q(d.id)} has only ${q(d.remaining)} ${q(d.brand)} left, asked for ${q(want)}`;
            const { name } = this.state;
            name !== d.seller || Fail`the seller cannot exercise their own offer`;
            const filledBefore = d.amount - d.remaining;
            const price = ceilDiv(d.strike * (filledBefore + want), d.amount) - ceilDiv(d.strike * filledBefore, d.amount);
            const { ledger } = this.facets;
            ledger.debit(moneyBrand, price);
            lookupWallet(d.seller).ledger.credit(moneyBrand, price);
            ledger.credit(d.brand, want);
            const now = height();
            control.fill(name, want, price, now);
            if (want === d.remaining) openByExpiry.delete(expiryKey(d.expiresAt, d.id));
            const seq = meta.get('nextReceipt');
            meta.set('nextReceipt', seq + 1);
            const receipt = makeReceipt({ seq, offerId: d.id, buyer: name, seller: d.seller, brand: d.brand, quantity: want, paid: price, block: now });
            receipts.init(seq, receipt);
            return receipt;
          },
          cancel(option) {
            const control = controlOf(option);
            const d = control.getDetails();
            d.seller === this.state.name || Fail`only the seller (${q(d.seller)}) can cancel offer ${q(d.id)}`;
            d.status === 'open' || Fail`offer ${q(d.id)} is ${q(d.status)}`;
            const fee = meta.get('cancelFee');
            if (fee > 0n) {
              this.facets.ledger.debit(moneyBrand, fee);
              meta.set('feesCollected', meta.get('feesCollected') + fee);
            }
            this.facets.ledger.credit(d.brand, d.remaining);
            control.close('cancelled');
            openByExpiry.delete(expiryKey(d.expiresAt, d.id));
            return this.state.holdings;
          },
          listReceipts() {
            const { name } = this.state;
            return [...receipts.values()].map((r) => r.getDetails()).filter((r) => r.buyer === name);
          },
        },
        ledger: {
          credit(brand, amount) {
            const { holdings } = this.state;
            this.state.holdings = { ...holdings, [brand]: (holdings[brand] ?? 0n) + amount };
          },
          debit(brand, amount) {
            const { holdings, name } = this.state;
            const has = holdings[brand] ?? 0n;
            has >= amount || Fail`insufficient ${q(brand)} in wallet ${q(name)}: has ${q(has)}, needs ${q(amount)}`;
            this.state.holdings = { ...holdings, [brand]: has - amount };
          },
        },
      },
      { stateShape: { name: NameShape, holdings: HoldingsShape } },
    );

    // ------------------------------------------------------------ offers
    // One kit per offer: the option facet is handed out, the control facet
    // stays inside. `remaining` and `fills` are in the state from the start,
    // so a later version can allow partial exercise without a migration.
    const makeOffer = zone.exoClassKit(
      'Offer',
      { option: OptionI, control: OfferControlI },
      ({ id, seller, brand, amount, strike, createdAt, expiresAt }) => ({
        id, seller, brand, amount, strike, createdAt, expiresAt, status: 'open', remaining: amount, fills: [],
      }),
      {
        option: {
          getId() {
            return this.state.id;
          },
          getDetails() {
            return this.facets.control.getDetails();
          },
        },
        control: {
          getDetails() {
            const { id, seller, brand, amount, strike, createdAt, expiresAt, status, remaining, fills } = this.state;
            return harden({ id, seller, brand, amount, strike, createdAt, expiresAt, status, remaining, fills });
          },
          fill(buyer, quantity, paid, block) {
            this.state.fills = [...this.state.fills, { buyer, quantity, paid, block }];
            this.state.remaining -= quantity;
            if (this.state.remaining === 0n) this.state.status = 'exercised';
          },
          close(status) {
            this.state.status = status;
            this.state.remaining = 0n;
          },
        },
      },
      {
        stateShape: {
          id: M.number(),
          seller: M.string(),
          brand: BrandShape,
          amount: M.nat(),
          strike: M.nat(),
          createdAt: M.nat(),
          expiresAt: M.nat(),
          status: M.or('open', 'exercised', 'cancelled', 'expired'),
          remaining: M.nat(),
          fills: M.arrayOf(FillShape),
        },
      },
    );

    // ------------------------------------------------------------ receipts (new in v2)
    const makeReceipt = zone.exoClass('ExerciseReceipt', ReceiptI, (details) => ({ ...details }), {
      getDetails() {
        const { seq, offerId, buyer, seller, brand, quantity, paid, block } = this.state;
        return harden({ seq, offerId, buyer, seller, brand, quantity, paid, block });
      },
    }, { stateShape: ReceiptDetailsShape });

    // ------------------------------------------------------------ facets
    const publicFacet = zone.exo('EscrowPublic', PublicI, {
      openWallet(name) {
        !wallets.has(name) || Fail`wallet ${q(name)} already exists`;
        const kit = makeWallet(name);
        wallets.init(name, kit);
        return kit.wallet;
      },
      getOffer(id) {
        return lookupOffer(id).control.getDetails();
      },
      listOpenOffers() {
        return [...openByExpiry.values()].sort((a, b) => a - b).map((id) => lookupOffer(id).control.getDetails());
      },
      getBlockHeight() {
        return height();
      },
      getInfo() {
        return { moneyBrand, version: VERSION, incarnation, cancelFee: meta.get('cancelFee') };
      },
      listReceipts() {
        return [...receipts.values()].map((r) => r.getDetails());
      },
    });

    const creatorFacet = zone.exo('EscrowCreator', CreatorI, {
      deposit(name, brand, amount) {
        assertBrand(brand);
        const kit = lookupWallet(name);
        kit.ledger.credit(brand, amount);
        return kit.wallet.getHoldings();
      },
      // Advances the clock; every open offer whose expiry is reached goes back
      // to its seller. Returns the ids of the offers that expired.
      advanceBlocks(n) {
        const now = height() + n;
        meta.set('height', now);
        const due = [...openByExpiry.entries({ end: pad(now + 1n) })];
        for (const [key, id] of due) {
          const { control } = lookupOffer(id);
          const d = control.getDetails();
          lookupWallet(d.seller).ledger.credit(d.brand, d.remaining);
          control.close('expired');
          openByExpiry.delete(key);
        }
        return due.map(([, id]) => id);
      },
      getBlockHeight() {
        return height();
      },
      getWallet(name) {
        return lookupWallet(name).wallet;
      },
      getFeesCollected() {
        return meta.get('feesCollected');
      },
      setCancelFee(fee) {
        meta.set('cancelFee', fee);
      },
    });

    return () => ({ publicFacet, creatorFacet });
  };
};
