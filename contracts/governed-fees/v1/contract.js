// Governed fee quoter, version 1: the example a governance contract
// (contracts/governance) governs at all four upgrade levels.
//
// Its behaviour depends on two named exits, both filled by the host from the
// instance's exit policy (which only the adminFacet can change):
//   host:parameters   { feeBasisPoints: bigint }           (level a: a typed parameter)
//   host:expressions  { feeRule: '(amount, bps) => fee' }   (level b: a confined expression)
// The fee rule is source text evaluated inside this vat, in a Compartment
// whose only globals are the endowments named in ENDOWMENTS (plus the
// frozen primordials every compartment has, where Date.now() and
// Math.random() throw). Levels c and d replace the bundle (v2/, v2-oracle/).
//
// publicFacet:  quote(amount) -> fee (bigint), describe(), getQuoteCount()
//
// Durable state: the number of quotes served (instance baggage). Parameters
// and the rule are not state: a new incarnation reads them from its exits.
import { provideKindHandle, defineDurableKind, provide } from '@quickvat/vat-data';
import parameters from 'host:parameters';
import expressions from 'host:expressions';

const VERSION = 'v1';

// Everything a fee rule can reach besides frozen primordials. Plain bigint
// helpers: no I/O, no clock, no randomness.
const ENDOWMENTS = harden({
  BASIS_POINTS: 10_000n,
  min: (a, b) => (a < b ? a : b),
  max: (a, b) => (a > b ? a : b),
});

const assertAmount = (amount) => {
  if (typeof amount !== 'bigint') throw TypeError(`amount must be a bigint, got ${typeof amount}`);
  if (amount < 0n) throw RangeError(`amount must not be negative, got ${amount}`);
};

/** Reads and checks the governed inputs; a bad one fails start or upgrade (atomic). */
const readGovernedInputs = (params, exprs) => {
  const { feeBasisPoints } = params ?? {};
  if (typeof feeBasisPoints !== 'bigint') {
    throw TypeError(`host:parameters feeBasisPoints must be a bigint, got ${typeof feeBasisPoints}`);
  }
  if (feeBasisPoints < 0n || feeBasisPoints > 10_000n) {
    throw RangeError(`host:parameters feeBasisPoints must be 0..10000, got ${feeBasisPoints}`);
  }
  const source = exprs?.feeRule;
  if (typeof source !== 'string') throw TypeError(`host:expressions feeRule must be source text, got ${typeof source}`);
  return { feeBasisPoints, source };
};

/**
 * Evaluates a fee rule's source text in a fresh Compartment whose only
 * endowments are ENDOWMENTS, and returns a checked fee function.
 */
const makeFeeRule = (source) => {
  const compartment = new Compartment({ globals: ENDOWMENTS, __options__: true });
  let rule;
  try {
    rule = compartment.evaluate(source);
  } catch (err) {
    throw Error(`host:expressions feeRule does not evaluate: ${err?.message ?? err}`);
  }
  if (typeof rule !== 'function') throw TypeError(`host:expressions feeRule must evaluate to a function, got ${typeof rule}`);
  return (amount, bps) => {
    const fee = rule(amount, bps);
    if (typeof fee !== 'bigint') throw TypeError(`the fee rule returned a ${typeof fee}, expected a bigint`);
    if (fee < 0n) throw RangeError(`the fee rule returned a negative fee ${fee}`);
    return fee;
  };
};

export const defineInstallationKinds = (installationBaggage, tools) => {
  const incarnation = tools.incarnation;

  return (instanceBaggage) => {
    // Checked before anything is defined: a bad parameter or rule fails this
    // incarnation's start, so an upgrade to it is rolled back.
    const { feeBasisPoints, source } = readGovernedInputs(parameters, expressions);
    const rule = makeFeeRule(source);
    rule(10_000n, feeBasisPoints); // a rule that throws on a plain amount is refused now, not at the first quote

    provide(instanceBaggage, 'quoteCount', () => 0n);
    const countQuote = () => instanceBaggage.set('quoteCount', instanceBaggage.get('quoteCount') + 1n);

    const makePublicFacet = defineDurableKind(
      provideKindHandle(instanceBaggage, 'FeesPublic'),
      () => ({}),
      {
        quote(_, amount) {
          assertAmount(amount);
          const fee = rule(amount, feeBasisPoints);
          countQuote();
          return fee;
        },
        describe() {
          return {
            version: VERSION,
            incarnation,
            feeBasisPoints,
            feeRule: source,
            endowments: Object.keys(ENDOWMENTS),
          };
        },
        getQuoteCount() {
          return instanceBaggage.get('quoteCount');
        },
      },
    );

    return () => ({ publicFacet: makePublicFacet() });
  };
};
