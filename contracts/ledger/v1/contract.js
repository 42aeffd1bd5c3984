// Fungible-token ledger, version 1.
//
// publicFacet:  openAccount(name) -> account holder (a capability: whoever holds
//               it can spend), balanceOf(name), getTotalSupply(), getAccountNames(),
//               getInfo()
// creatorFacet: mint(name, amount), getTotalSupply(), getAccount(name) -> holder
// account:      getName(), getBalance(), describe(), transfer(toName, amount)
//
// Durable state: the instance baggage holds the account map and the total
// supply; each account is a durable multi-facet object (holder facet handed to
// clients, internal facet used only inside the contract).
import {
  provideKindHandle,
  defineDurableKind,
  defineDurableKindMulti,
  provideDurableMapStore,
  provide,
} from '@quickvat/vat-data';

const VERSION = 'v1';

const assertName = (name) => {
  if (typeof name !== 'string' || name === '' || name.length > 64) {
    throw TypeError(`account name must be a non-empty string of at most 64 characters, got ${typeof name === 'string' ? JSON.stringify(name) : typeof name}`);
  }
};
const assertAmount = (amount) => {
  if (typeof amount !== 'bigint') throw TypeError(`amount must be a bigint, got ${typeof amount}`);
  if (amount <= 0n) throw RangeError(`amount must be positive, got ${amount}`);
};

export const defineInstallationKinds = (installationBaggage, tools) => {
  const incarnation = tools.incarnation;

  return (instanceBaggage, context) => {
    const parameters = context.parameters ?? {};
    const symbol = provide(instanceBaggage, 'symbol', () => String(parameters.symbol ?? 'QVT'));
    provide(instanceBaggage, 'totalSupply', () => 0n);
    const accounts = provideDurableMapStore(instanceBaggage, 'accounts');

    const getTotalSupply = () => instanceBaggage.get('totalSupply');
    const lookup = (name) => {
      assertName(name);
      if (!accounts.has(name)) throw Error(`no account named ${JSON.stringify(name)}`);
      return accounts.get(name);
    };

    // An account is one durable object with two facets: `holder` is the
    // capability handed to its owner, `internal` never leaves the contract.
    const makeAccount = defineDurableKindMulti(
      provideKindHandle(instanceBaggage, 'Account'),
      (name) => ({ name, balance: 0n }),
      {
        holder: {
          getName({ state }) {
            return state.name;
          },
          getBalance({ state }) {
            return state.balance;
          },
          describe({ state }) {
            return { name: state.name, balance: state.balance };
          },
          transfer({ state, facets }, toName, amount) {
            assertAmount(amount);
            const to = lookup(toName);
            if (to.internal === facets.internal) throw Error('cannot transfer to the same account');
            if (state.balance < amount) {
              throw RangeError(`insufficient balance in ${JSON.stringify(state.name)}: has ${state.balance}, needs ${amount}`);
            }
            facets.internal.debit(amount);
            to.internal.credit(amount);
            return state.balance;
          },
        },
        internal: {
          credit({ state }, amount) {
            state.balance = state.balance + amount;
          },
          debit({ state }, amount) {
            state.balance = state.balance - amount;
          },
        },
      },
    );

    const openAccount = (name) => {
      assertName(name);
      if (accounts.has(name)) throw Error(`account ${JSON.stringify(name)} already exists`);
      const account = makeAccount(name);
      accounts.init(name, account);
      return account.holder;
    };

    const makePublicFacet = defineDurableKind(
      provideKindHandle(instanceBaggage, 'LedgerPublic'),
      () => ({}),
      {
        openAccount(_, name) {
          return openAccount(name);
        },
        balanceOf(_, name) {
          return lookup(name).holder.getBalance();
        },
        getTotalSupply() {
          return getTotalSupply();
        },
        getAccountNames() {
          return [...accounts.keys()];
        },
        getInfo() {
          return { symbol, version: VERSION, incarnation };
        },
      },
    );

    const makeCreatorFacet = defineDurableKind(
      provideKindHandle(instanceBaggage, 'LedgerCreator'),
      () => ({}),
      {
        mint(_, name, amount) {
          assertAmount(amount);
          lookup(name).internal.credit(amount);
          instanceBaggage.set('totalSupply', getTotalSupply() + amount);
          return lookup(name).holder.getBalance();
        },
        getTotalSupply() {
          return getTotalSupply();
        },
        // Opens `count` accounts named prefix0, prefix1, ... each minted
        // `amount`, in one delivery (an airdrop; also how benchmarks seed).
        airdrop(_, prefix, count, amount) {
          assertName(`${prefix}${count}`);
          if (!Number.isSafeInteger(count) || count < 1 || count > 10000) throw RangeError(`airdrop count must be 1..10000, got ${count}`);
          assertAmount(amount);
          for (let i = 0; i < count; i++) {
            openAccount(`${prefix}${i}`);
            lookup(`${prefix}${i}`).internal.credit(amount);
          }
          instanceBaggage.set('totalSupply', getTotalSupply() + amount * BigInt(count));
          return accounts.getSize();
        },
        // The holder capability of an account (the creator can act for anyone).
        getAccount(_, name) {
          return lookup(name).holder;
        },
      },
    );

    return () => ({ publicFacet: makePublicFacet(), creatorFacet: makeCreatorFacet() });
  };
};
