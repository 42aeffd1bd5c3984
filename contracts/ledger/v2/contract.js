// Fungible-token ledger, version 2 (an upgrade of v1; also installable fresh).
//
// Changes from v1:
// - behaviour: every transfer pays a fee (feeBasisPoints of the amount, rounded
//   down) to the fee-collector account; the sender pays amount + fee. Frozen
//   accounts cannot send. Each outgoing transfer bumps the sender's nonce.
// - schema: Account records gain `nonce` (bigint) and `frozen` (boolean)
//   (stateVersion 1; v1 records are migrated lazily, the first time they are
//   read; the number of migrated records is counted in the baggage).
// - new durable kind Allowance (two facets: view for the owner, control for
//   the contract): holder.approve(spender, amount) lets another account spend
//   up to amount with holder.transferFrom(owner, to, amount).
// - creatorFacet gains freeze/unfreeze/setFee/getFeeInfo/getTreasury/getMigrationCount;
//   publicFacet gains allowance(owner, spender) and getFeeInfo(); account
//   holders gain getNonce, isFrozen, approve, allowanceFor, transferFrom.
// - the fee collector's account (privateArgs.feeCollector, default "treasury")
//   is opened when the first fee is charged (or by creatorFacet.getTreasury()).
//
// privateArgs (at start or upgrade, optional): { feeBasisPoints: bigint, feeCollector: string }
import {
  provideKindHandle,
  defineDurableKind,
  defineDurableKindMulti,
  provideDurableMapStore,
  provide,
} from '@quickvat/vat-data';

const VERSION = 'v2';
const ACCOUNT_STATE_VERSION = 1;
const BASIS = 10000n;

const assertName = (name) => {
  if (typeof name !== 'string' || name === '' || name.length > 64) {
    throw TypeError(`account name must be a non-empty string of at most 64 characters, got ${typeof name === 'string' ? JSON.stringify(name) : typeof name}`);
  }
};
const assertAmount = (amount) => {
  if (typeof amount !== 'bigint') throw TypeError(`amount must be a bigint, got ${typeof amount}`);
  if (amount <= 0n) throw RangeError(`amount must be positive, got ${amount}`);
};
const assertBasisPoints = (bps) => {
  if (typeof bps !== 'bigint' || bps < 0n || bps > 1000n) throw RangeError(`feeBasisPoints must be a bigint between 0n and 1000n, got ${String(bps)}`);
};
const allowanceKey = (owner, spender) => JSON.stringify([owner, spender]);

export const defineInstallationKinds = (installationBaggage, tools) => {
  const incarnation = tools.incarnation;

  return (instanceBaggage, context, privateArgs) => {
    const parameters = context.parameters ?? {};
    const symbol = provide(instanceBaggage, 'symbol', () => String(parameters.symbol ?? 'QVT'));
    provide(instanceBaggage, 'totalSupply', () => 0n);
    provide(instanceBaggage, 'migratedAccounts', () => 0);
    const accounts = provideDurableMapStore(instanceBaggage, 'accounts');
    const allowances = provideDurableMapStore(instanceBaggage, 'allowances');

    const setBaggage = (key, value) => {
      if (instanceBaggage.has(key)) instanceBaggage.set(key, value);
      else instanceBaggage.init(key, value);
    };
    const args = privateArgs ?? {};
    if (args.feeBasisPoints !== undefined) {
      assertBasisPoints(args.feeBasisPoints);
      setBaggage('feeBasisPoints', args.feeBasisPoints);
    } else {
      provide(instanceBaggage, 'feeBasisPoints', () => 25n);
    }
    if (args.feeCollector !== undefined) {
      assertName(args.feeCollector);
      setBaggage('feeCollector', args.feeCollector);
    } else {
      provide(instanceBaggage, 'feeCollector', () => 'treasury');
    }

    const getTotalSupply = () => instanceBaggage.get('totalSupply');
    const feeFor = (amount) => (amount * instanceBaggage.get('feeBasisPoints')) / BASIS;
    const lookup = (name) => {
      assertName(name);
      if (!accounts.has(name)) throw Error(`no account named ${JSON.stringify(name)}`);
      return accounts.get(name);
    };

    // Moves amount from the account kit `from` to `toName`, charging the fee to `from`.
    // Checks everything before changing anything.
    const move = (from, toName, amount) => {
      assertAmount(amount);
      const to = lookup(toName);
      if (to.internal === from.internal) throw Error('cannot transfer to the same account');
      const sender = from.internal.record();
      if (sender.frozen) throw Error(`account ${JSON.stringify(sender.name)} is frozen`);
      const fee = feeFor(amount);
      if (sender.balance < amount + fee) {
        throw RangeError(`insufficient balance in ${JSON.stringify(sender.name)}: has ${sender.balance}, needs ${amount} + fee ${fee}`);
      }
      from.internal.debit(amount + fee);
      from.internal.bumpNonce();
      to.internal.credit(amount);
      if (fee > 0n) provideCollector().internal.credit(fee);
      return fee;
    };

    // An account is one durable object with two facets: `holder` is the
    // capability handed to its owner, `internal` never leaves the contract.
    const makeAccount = defineDurableKindMulti(
      provideKindHandle(instanceBaggage, 'Account'),
      (name) => ({ name, balance: 0n, nonce: 0n, frozen: false }),
      {
        holder: {
          getName({ state }) {
            return state.name;
          },
          getBalance({ state }) {
            return state.balance;
          },
          getNonce({ state }) {
            return state.nonce;
          },
          isFrozen({ state }) {
            return state.frozen;
          },
          describe({ facets }) {
            return facets.internal.record();
          },
          transfer({ state, facets }, toName, amount) {
            move(facets, toName, amount);
            return state.balance;
          },
          approve({ state }, spenderName, amount) {
            lookup(spenderName);
            if (typeof amount !== 'bigint' || amount < 0n) throw RangeError(`allowance must be a non-negative bigint, got ${String(amount)}`);
            const key = allowanceKey(state.name, spenderName);
            if (allowances.has(key)) {
              const allowance = allowances.get(key);
              allowance.control.setRemaining(amount);
              return allowance.view;
            }
            const allowance = makeAllowance(state.name, spenderName, amount);
            allowances.init(key, allowance);
            return allowance.view;
          },
          allowanceFor({ state }, spenderName) {
            const key = allowanceKey(state.name, spenderName);
            return allowances.has(key) ? allowances.get(key).view.getRemaining() : 0n;
          },
          // Spends from ownerName's account under the allowance it gave this
          // account; the owner pays the fee. Returns the fee.
          transferFrom({ state }, ownerName, toName, amount) {
            assertAmount(amount);
            const owner = lookup(ownerName);
            const key = allowanceKey(ownerName, state.name);
            const remaining = allowances.has(key) ? allowances.get(key).view.getRemaining() : 0n;
            if (remaining < amount) {
              throw RangeError(`allowance of ${JSON.stringify(state.name)} to spend from ${JSON.stringify(ownerName)} is ${remaining}, needs ${amount}`);
            }
            const fee = move(owner, toName, amount);
            allowances.get(key).control.setRemaining(remaining - amount);
            return fee;
          },
        },
        internal: {
          record({ state }) {
            return { name: state.name, balance: state.balance, nonce: state.nonce, frozen: state.frozen };
          },
          credit({ state }, amount) {
            state.balance = state.balance + amount;
          },
          debit({ state }, amount) {
            state.balance = state.balance - amount;
          },
          bumpNonce({ state }) {
            state.nonce = state.nonce + 1n;
          },
          setFrozen({ state }, frozen) {
            state.frozen = frozen;
          },
        },
      },
      {
        stateVersion: ACCOUNT_STATE_VERSION,
        migrate(old, oldVersion) {
          if (oldVersion !== 0) throw Error(`Account: cannot migrate from state version ${oldVersion}`);
          instanceBaggage.set('migratedAccounts', instanceBaggage.get('migratedAccounts') + 1);
          return { name: old.name, balance: old.balance, nonce: 0n, frozen: false };
        },
      },
    );

    // The owner gets the `view` facet (it may pass it on, e.g. to the
    // spender); only the contract can change the remaining amount.
    const makeAllowance = defineDurableKindMulti(
      provideKindHandle(instanceBaggage, 'Allowance'),
      (owner, spender, remaining) => ({ owner, spender, remaining }),
      {
        view: {
          getDetails({ state }) {
            return { owner: state.owner, spender: state.spender, remaining: state.remaining };
          },
          getRemaining({ state }) {
            return state.remaining;
          },
        },
        control: {
          setRemaining({ state }, remaining) {
            state.remaining = remaining;
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

    // The fee collector's account is opened when first needed (not during the
    // upgrade: an upgrade touches kinds, never records).
    const provideCollector = () => {
      const name = instanceBaggage.get('feeCollector');
      if (!accounts.has(name)) openAccount(name);
      return accounts.get(name);
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
        allowance(_, ownerName, spenderName) {
          return lookup(ownerName).holder.allowanceFor(spenderName);
        },
        getTotalSupply() {
          return getTotalSupply();
        },
        getAccountNames() {
          return [...accounts.keys()];
        },
        getFeeInfo() {
          return { feeBasisPoints: instanceBaggage.get('feeBasisPoints'), feeCollector: instanceBaggage.get('feeCollector') };
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
        freeze(_, name) {
          lookup(name).internal.setFrozen(true);
        },
        unfreeze(_, name) {
          lookup(name).internal.setFrozen(false);
        },
        setFee(_, feeBasisPoints) {
          assertBasisPoints(feeBasisPoints);
          instanceBaggage.set('feeBasisPoints', feeBasisPoints);
        },
        getFeeInfo() {
          return { feeBasisPoints: instanceBaggage.get('feeBasisPoints'), feeCollector: instanceBaggage.get('feeCollector') };
        },
        getTreasury() {
          return provideCollector().holder;
        },
        getMigrationCount() {
          return instanceBaggage.get('migratedAccounts');
        },
      },
    );

    return () => ({ publicFacet: makePublicFacet(), creatorFacet: makeCreatorFacet() });
  };
};
