// Exo class options and `this` checks on virtual/durable kinds (issue 12,
// review break-12 items 3, 4 and 5): receiveAmplifier/receiveInstanceTester
// work as in Endo, unknown options and malformed stateShapes are refused, and
// a method applied to another facet or another kind's object is refused.
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';

const OPTIONS_VAT = `
import { prepareExoClass, prepareExoClassKit, prepareKind, prepareExo, defineVirtualExoClassKit, M } from '@agoric/vat-data';
const run = (f) => { try { return 'ok: ' + JSON.stringify(f()); } catch (e) { return 'threw: ' + e.message; } };
export const defineInstallationKinds = () => (baggage) => {
  let amplify, isKit, isC, vAmplify;
  const makeK = prepareExoClassKit(baggage, 'K', undefined, () => ({ v: 1 }),
    { a: { get() { return this.state.v; } }, b: { set(x) { this.state.v = x; } } },
    { receiveAmplifier: (f) => { amplify = f; }, receiveInstanceTester: (f) => { isKit = f; } });
  const makeV = defineVirtualExoClassKit('V', undefined, () => ({ v: 7 }), { a: { get() { return this.state.v; } }, b: {} }, { receiveAmplifier: (f) => { vAmplify = f; } });
  const makeC = prepareExoClass(baggage, 'C', undefined, () => ({}), { m() { return 'm'; } }, { receiveInstanceTester: (f) => { isC = f; } });
  const W = { pub: M.interface('Wpub', { bal: M.call().returns(M.number()) }), ledger: M.interface('Wledger', { credit: M.call(M.number()).returns() }) };
  const makeW = prepareExoClassKit(baggage, 'W', W, () => ({ bal: 0 }), { pub: { bal() { return this.state.bal; } }, ledger: { credit(n) { this.state.bal += n; } } });
  const makePurse = prepareExoClass(baggage, 'Purse', undefined, () => ({ balance: 5 }), { withdraw(n) { this.state.balance -= n; return this.state.balance; } });
  const makeVault = prepareExoClass(baggage, 'Vault', undefined, () => ({ balance: 1000 }), { bal() { return this.state.balance; } });
  const makeP1 = prepareKind(baggage, 'P1', () => ({ secret: 's1' }), { reveal({ state }) { return state.secret; } });
  const makeP2 = prepareKind(baggage, 'P2', () => ({ secret: 'TOP' }), { hello() { return 'hi'; } });
  const pub = prepareExo(baggage, 'Pub', undefined, {
    amplifiers() {
      const k1 = makeK(), k2 = makeK(), c = makeC(), v = makeV();
      k2.b.set(2);
      return harden({
        amplified: run(() => amplify(k2.a).b === k2.b && amplify(k2.b).a.get()),
        notFacet: run(() => amplify(c)),
        otherKit: run(() => amplify(v.a)),
        virtual: run(() => vAmplify(v.b).a.get()),
        isKit: run(() => [isKit(k1.a), isKit(k1.b, 'b'), isKit(k1.a, 'b'), isKit(c), isKit(v.a)]),
        noFacet: run(() => isKit(k1.a, 'z')),
        isC: run(() => [isC(c), isC(k1.a)]),
        classFacetName: run(() => isC(c, 'a')),
      });
    },
    refusals() {
      return harden({
        ampOnClass: run(() => prepareExoClass(baggage, 'C2', undefined, () => ({}), { m() {} }, { receiveAmplifier: () => {} }) && 'defined'),
        typo: run(() => prepareExoClass(baggage, 'T', undefined, () => ({ a: 1 }), { m() {} }, { stateshape: { a: M.string() } }) && 'defined'),
        splitRecord: run(() => prepareExoClass(baggage, 'S1', undefined, () => ({ a: 1 }), { m() {} }, { stateShape: M.splitRecord({ a: M.number() }) }) && 'defined'),
        notPattern: run(() => prepareExoClass(baggage, 'S2', undefined, () => ({ a: 1 }), { m() {} }, { stateShape: { a: () => 1 } }) && 'defined'),
      });
    },
    confusion() {
      const w1 = makeW(), w2 = makeW(), purse = makePurse(), vault = makeVault();
      return harden({
        crossFacet: run(() => Object.getPrototypeOf(w1.ledger).credit.call(w2.pub, 77)),
        w2: w2.pub.bal(),
        crossKind: run(() => Object.getPrototypeOf(purse).withdraw.call(vault, 900)),
        vault: vault.bal(),
        crossKindPlain: run(() => Object.getPrototypeOf(makeP1()).reveal.call(makeP2())),
        sameKind: run(() => Object.getPrototypeOf(w1.ledger).credit.call(w2.ledger, 1)),
      });
    },
  });
  return () => ({ publicFacet: pub });
};`;

describe('exo kind options and method receivers (issue 12)', function () {
  this.timeout(30_000);
  let host: Host;
  let pub: unknown;
  before(async () => {
    host = await Host.open();
    pub = host.startInstance(host.install(OPTIONS_VAT, { label: 'exo-options' })).publicFacet;
  });
  after(async () => {
    await host.close();
  });

  it('receiveAmplifier and receiveInstanceTester behave as Endo’s for durable and virtual class kits', async () => {
    assert.deepEqual(await host.E(pub).amplifiers(), {
      amplified: 'ok: 2',
      notFacet: 'threw: Must be a facet of "K": "[Alleged: C]"',
      otherKit: 'threw: Must be a facet of "K": "[Alleged: V a]"',
      virtual: 'ok: 7',
      isKit: 'ok: [true,true,false,false,false]',
      noFacet: 'threw: exo class kit "K" has no facet named "z"',
      isC: 'ok: [true,false]',
      classFacetName: 'threw: facetName can only be used with an exo class kit: "C" has no facet "a"',
    });
  });

  it('refuses receiveAmplifier on a single-facet class, unknown options and a stateShape that is not a record of patterns', async () => {
    const r = (await host.E(pub).refusals()) as Record<string, string>;
    assert.equal(r.ampOnClass, 'threw: Only facets of an exo class kit can be amplified "C2"');
    assert.match(r.typo, /^threw: kind "T": unknown option "stateshape" \(known: .*stateShape/);
    assert.equal(r.splitRecord, 'threw: kind "S1": stateShape must be a record of patterns, got a pattern that is not a record');
    assert.match(r.notPattern, /^threw: kind "S2": stateShape must be a record of patterns/);
  });

  it('refuses a method applied to another facet or another kind’s object', async () => {
    assert.deepEqual(await host.E(pub).confusion(), {
      crossFacet: 'threw: "In \\"credit\\" method of (W ledger)" may only be applied to a valid instance: "[Alleged: W pub]"',
      w2: 0,
      crossKind: 'threw: "In \\"withdraw\\" method of (Purse)" may only be applied to a valid instance: "[Alleged: Vault]"',
      vault: 1000,
      crossKindPlain: 'threw: reveal called on something that is not a P1',
      sameKind: 'ok: undefined',
    });
  });
});
