// Governance, version 2: as v1, plus withdraw(id) on the voter facet, with
// which a proposer takes back a proposal not yet enacted. Upgrading v1 to v2
// keeps every proposal, vote, voter facet and the admin presence (all in
// baggage and durable kinds); v2 redefines all of v1's kinds.
//
// What v1 says about itself still holds:
//
// privateArgs at start (read once; an upgrade finds everything in baggage):
//   adminFacet     the governed instance's admin presence (host.adminPresence)
//   committee      member names, e.g. ['alice', 'bob', 'carol']
//   threshold      votes in favour a proposal needs, 1..committee.length
//   votingPeriod   deliveries to this contract a proposal stays open for
//   parameterTypes { name: 'bigint' | 'number' | 'string' | 'boolean' }
//   parameters     the governed instance's current host:parameters record
//   expressions    its current host:expressions record { name: source }; its
//                  keys (plus expressionNames, if given) are the governed
//                  expressions
//
// A proposal is one of four levels:
//   propose('parameter',       { name, value })      -> setExits host:parameters
//   propose('expression',      { name, source })     -> setExits host:expressions
//   propose('bundle',          { bundlecap })        -> upgrade(bundlecap)
//   propose('bundleWithExits', { bundlecap, exits }) -> upgrade(bundlecap, { exits })
// Voters see exactly what they vote on: the typed value, the source text, the
// bundle id (to review with `quickvat review`) and the exits granted.
//
// Time is counted in deliveries to this contract, never by a clock: every
// method bumps a durable counter. A proposal made at delivery n takes votes up
// to and including delivery n + votingPeriod. It passes when `threshold`
// members vote in favour by then; it fails when the deadline passes first, or
// as soon as enough members vote against that the threshold is out of reach.
// A member votes once. Anyone may enact a passed proposal, once: one action
// that makes the one admin call. Enactments run one at a time, so each
// setExits sends the full current record (governance keeps the current
// parameters and expressions) without racing another.
//
// creatorFacet: getVoterFacet(name) -> that member's voter facet (the same one each time)
// voter facet:  getName(), propose(kind, details) -> id, vote(id, inFavor),
//               withdraw(id) (new in v2: the proposer, before enactment)
// publicFacet:  getProposal(id), listProposals(), enact(id), tick(), getInfo(), getCurrent()
import { provideKindHandle, defineDurableKind, provideDurableMapStore, provide } from '@quickvat/vat-data';
import { E, passStyleOf } from '@quickvat/far';

const VERSION = 'v2';
const KINDS = ['parameter', 'expression', 'bundle', 'bundleWithExits'];
const PARAMETER_TYPES = ['bigint', 'number', 'string', 'boolean'];
const PARAMETERS_EXIT = 'host:parameters';
const EXPRESSIONS_EXIT = 'host:expressions';
const MAX_SOURCE_LENGTH = 8192;
const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const EXIT_NAME = /^host:[A-Za-z0-9_.\/-]{1,64}$/;

const has = (record, key) => Object.prototype.hasOwnProperty.call(record, key);
const quote = (s) => JSON.stringify(s);
const show = (v) => (typeof v === 'bigint' ? `${v}n` : typeof v === 'string' ? quote(v) : String(v));

const assertRecord = (value, what) => {
  if (passStyleOf(value) !== 'copyRecord') throw TypeError(`${what} must be a record, got a ${passStyleOf(value)}`);
};

const assertName = (name, what) => {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw TypeError(`${what} must be a name (a letter, then up to 63 letters, digits, _ . -), got ${show(name)}`);
  }
};

/** Named-exit data must be plain data: no object references, promises or errors. */
const assertPlainData = (value, path, depth = 0) => {
  if (depth > 32) throw TypeError(`${path} is nested too deeply`);
  const style = passStyleOf(value);
  switch (style) {
    case 'copyRecord':
      for (const [k, v] of Object.entries(value)) assertPlainData(v, `${path}.${k}`, depth + 1);
      return;
    case 'copyArray':
      value.forEach((v, i) => assertPlainData(v, `${path}[${i}]`, depth + 1));
      return;
    case 'string':
    case 'number':
    case 'bigint':
    case 'boolean':
    case 'null':
    case 'undefined':
      return;
    default:
      throw TypeError(`${path} is a ${style}; named-exit data must be plain data`);
  }
};

/** The shape the host accepts for one named exit: { data }, { module: source } or { power: 'console' }. */
const assertExitSpec = (spec, path) => {
  assertRecord(spec, path);
  const keys = Object.keys(spec);
  if (keys.length !== 1) throw TypeError(`${path} must have exactly one of data, module, power; got ${keys.length ? keys.join(', ') : 'none'}`);
  if (keys[0] === 'data') return assertPlainData(spec.data, `${path}.data`);
  if (keys[0] === 'module') {
    if (typeof spec.module !== 'string' || spec.module.length > MAX_SOURCE_LENGTH) {
      throw TypeError(`${path}.module must be source text of at most ${MAX_SOURCE_LENGTH} characters`);
    }
    return undefined;
  }
  if (keys[0] === 'power') {
    if (spec.power !== 'console') throw TypeError(`${path}.power: only 'console' can be granted, got ${show(spec.power)}`);
    return undefined;
  }
  throw TypeError(`${path} must have exactly one of data, module, power; got ${keys[0]}`);
};

/** The config kept in baggage, checked from privateArgs at the first start. */
const checkConfig = (privateArgs) => {
  assertRecord(privateArgs ?? null, 'privateArgs');
  const { adminFacet, committee, threshold, votingPeriod } = privateArgs;
  const parameterTypes = privateArgs.parameterTypes ?? {};
  const parameters = privateArgs.parameters ?? {};
  const expressions = privateArgs.expressions ?? {};
  const expressionNames = privateArgs.expressionNames ?? [];
  if (passStyleOf(adminFacet) !== 'remotable') throw TypeError('privateArgs.adminFacet must be the governed instance\'s admin presence (host.adminPresence)');
  if (!Array.isArray(committee) || committee.length < 1 || committee.length > 64) throw TypeError('privateArgs.committee must list 1..64 member names');
  committee.forEach((n, i) => assertName(n, `privateArgs.committee[${i}]`));
  if (new Set(committee).size !== committee.length) throw TypeError('privateArgs.committee names a member twice');
  if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > committee.length) {
    throw RangeError(`privateArgs.threshold must be an integer 1..${committee.length}, got ${show(threshold)}`);
  }
  if (!Number.isSafeInteger(votingPeriod) || votingPeriod < 1) throw RangeError(`privateArgs.votingPeriod must be a positive integer (deliveries), got ${show(votingPeriod)}`);
  assertRecord(parameterTypes, 'privateArgs.parameterTypes');
  for (const [name, type] of Object.entries(parameterTypes)) {
    assertName(name, 'a parameter name');
    if (!PARAMETER_TYPES.includes(type)) throw TypeError(`parameter ${quote(name)} has type ${show(type)}; types are ${PARAMETER_TYPES.join(', ')}`);
  }
  assertRecord(parameters, 'privateArgs.parameters');
  for (const [name, value] of Object.entries(parameters)) checkParameter(parameterTypes, name, value);
  assertRecord(expressions, 'privateArgs.expressions');
  for (const [name, source] of Object.entries(expressions)) {
    assertName(name, 'an expression name');
    checkSource(source, `expression ${quote(name)}`);
  }
  if (!Array.isArray(expressionNames)) throw TypeError('privateArgs.expressionNames must be an array of names');
  expressionNames.forEach((n, i) => assertName(n, `privateArgs.expressionNames[${i}]`));
  return {
    admin: adminFacet,
    config: harden({
      committee: [...committee],
      threshold,
      votingPeriod,
      parameterTypes: { ...parameterTypes },
      expressionNames: [...new Set([...Object.keys(expressions), ...expressionNames])].sort(),
    }),
    parameters: harden({ ...parameters }),
    expressions: harden({ ...expressions }),
  };
};

/** A parameter value must be declared and of its declared type. */
const checkParameter = (parameterTypes, name, value) => {
  if (typeof name !== 'string' || !has(parameterTypes, name)) {
    const declared = Object.keys(parameterTypes);
    throw TypeError(`parameter ${show(name)} is not declared (declared: ${declared.length ? declared.join(', ') : 'none'})`);
  }
  const type = parameterTypes[name];
  // eslint-disable-next-line valid-typeof
  if (typeof value !== type) throw TypeError(`parameter ${quote(name)} must be a ${type}, got a ${typeof value} (${show(value)})`);
  if (type === 'number' && !Number.isFinite(value)) throw TypeError(`parameter ${quote(name)} must be a finite number, got ${value}`);
};

/**
 * An expression is source text the governed contract evaluates in its own
 * confined compartment. Here it is only parsed (as a function body, in an
 * empty compartment, without running it), so a syntax error is refused at
 * propose time rather than at enactment.
 */
const checkSource = (source, what) => {
  if (typeof source !== 'string') throw TypeError(`${what} must be source text, got a ${typeof source}`);
  if (source.trim() === '' || source.length > MAX_SOURCE_LENGTH) throw RangeError(`${what} must be 1..${MAX_SOURCE_LENGTH} characters of source text`);
  const { Function: ConfinedFunction } = new Compartment({ globals: {}, __options__: true }).globalThis;
  try {
    ConfinedFunction(source);
  } catch (err) {
    throw SyntaxError(`${what} does not parse: ${err?.message ?? err}`);
  }
};

export const defineInstallationKinds = (installationBaggage, tools) => {
  const incarnation = tools.incarnation;

  return (instanceBaggage, _context, privateArgs) => {
    if (!instanceBaggage.has('config')) {
      const first = checkConfig(privateArgs);
      instanceBaggage.init('config', first.config);
      instanceBaggage.init('admin', first.admin);
      instanceBaggage.init('currentParameters', first.parameters);
      instanceBaggage.init('currentExpressions', first.expressions);
    }
    provide(instanceBaggage, 'deliveries', () => 0);
    provide(instanceBaggage, 'nextProposalId', () => 1);
    provide(instanceBaggage, 'enacting', () => null);
    const proposals = provideDurableMapStore(instanceBaggage, 'proposals');
    const bundlecaps = provideDurableMapStore(instanceBaggage, 'bundlecaps');
    const voters = provideDurableMapStore(instanceBaggage, 'voters');

    const config = instanceBaggage.get('config');
    const admin = instanceBaggage.get('admin');
    const { committee, threshold, votingPeriod, parameterTypes, expressionNames } = config;

    // An enactment cut short by an upgrade of this contract lost its reply:
    // the proposal goes back to 'passed' with a note, so it can be looked at
    // (the governed instance's incarnation tells whether it happened) and
    // enacted again if need be.
    const interrupted = instanceBaggage.get('enacting');
    if (interrupted !== null) {
      const p = proposals.get(interrupted);
      proposals.set(interrupted, harden({
        ...p,
        status: 'passed',
        lastError: `enactment interrupted by an upgrade of the governance contract (incarnation ${incarnation}); its outcome was not seen`,
      }));
      instanceBaggage.set('enacting', null);
    }

    /** Every method counts one delivery; returns the new count. */
    const tick = () => {
      const now = instanceBaggage.get('deliveries') + 1;
      instanceBaggage.set('deliveries', now);
      return now;
    };
    const deliveries = () => instanceBaggage.get('deliveries');

    const lookup = (id) => {
      if (!Number.isSafeInteger(id) || !proposals.has(id)) throw RangeError(`no proposal ${show(id)}`);
      return proposals.get(id);
    };
    const tally = (votes) => {
      const all = Object.values(votes);
      return { inFavor: all.filter((v) => v).length, against: all.filter((v) => !v).length };
    };
    // 'open' past its deadline reads as 'expired'; every other status is stored.
    const statusOf = (p, now) => (p.status === 'open' && now > p.deadline ? 'expired' : p.status);

    const view = (p, now = deliveries()) =>
      harden({
        id: p.id,
        kind: p.kind,
        proposer: p.proposer,
        change: p.change,
        status: statusOf(p, now),
        votes: p.votes,
        ...tally(p.votes),
        threshold,
        proposedAt: p.proposedAt,
        deadline: p.deadline,
        now,
        passedAt: p.passedAt,
        enactedAt: p.enactedAt,
        incarnation: p.incarnation,
        attempts: p.attempts,
        lastError: p.lastError,
        withdrawnAt: p.withdrawnAt ?? null,
      });

    // Why a proposal in status `status` cannot be voted on or enacted.
    const explain = (p, status) => {
      const { inFavor, against } = tally(p.votes);
      switch (status) {
        case 'expired':
          return `its vote failed: voting ended at delivery ${p.deadline} with ${inFavor} of the ${threshold} votes in favour it needed`;
        case 'rejected':
          return `its vote failed: ${against} of ${committee.length} members voted against, so the threshold of ${threshold} can no longer be reached`;
        case 'open':
          return `it has not passed: ${inFavor} of ${threshold} votes in favour so far, voting open until delivery ${p.deadline}`;
        case 'enacted':
          return `it was already enacted at delivery ${p.enactedAt} (governed instance incarnation ${p.incarnation})`;
        case 'enacting':
          return 'it is being enacted right now';
        case 'passed':
          return `it already passed at delivery ${p.passedAt}`;
        case 'withdrawn':
          return `it was withdrawn by ${p.proposer} at delivery ${p.withdrawnAt}`;
        default:
          return `it is ${status}`;
      }
    };

    // ------------------------------------------------------------ proposing

    /** Checks a proposal's details and says what voters will see. */
    const describeChange = async (kind, details) => {
      assertRecord(details ?? null, `details of a ${kind} proposal`);
      switch (kind) {
        case 'parameter': {
          const { name, value } = details;
          checkParameter(parameterTypes, name, value);
          return { change: { name, value, type: parameterTypes[name], exit: PARAMETERS_EXIT } };
        }
        case 'expression': {
          const { name, source } = details;
          if (typeof name !== 'string' || !expressionNames.includes(name)) {
            throw TypeError(`expression ${show(name)} is not governed (governed: ${expressionNames.length ? expressionNames.join(', ') : 'none'})`);
          }
          checkSource(source, `expression ${quote(name)}`);
          return { change: { name, source, exit: EXPRESSIONS_EXIT } };
        }
        case 'bundle':
        case 'bundleWithExits': {
          const { bundlecap } = details;
          let exits;
          if (kind === 'bundleWithExits') {
            exits = details.exits;
            assertRecord(exits ?? null, 'details.exits');
            const names = Object.keys(exits);
            if (names.length === 0) throw TypeError('a bundleWithExits proposal must name at least one exit (use a bundle proposal otherwise)');
            for (const exit of names) {
              if (!EXIT_NAME.test(exit)) throw TypeError(`exit ${quote(exit)}: named exits are "host:" plus a name`);
              if (exit === PARAMETERS_EXIT || exit === EXPRESSIONS_EXIT) {
                throw TypeError(`exit ${quote(exit)} is governed by ${exit === PARAMETERS_EXIT ? 'parameter' : 'expression'} proposals, not granted with a bundle`);
              }
              assertExitSpec(exits[exit], `details.exits[${quote(exit)}]`);
            }
          } else if (has(details, 'exits')) {
            throw TypeError('a bundle proposal grants no exits; propose bundleWithExits to ask for some');
          }
          if (passStyleOf(bundlecap) !== 'remotable') throw TypeError(`details.bundlecap must be a bundlecap presence (host.bundlecapPresence), got a ${passStyleOf(bundlecap)}`);
          let bundleId;
          try {
            bundleId = await E(bundlecap).getBundleId();
          } catch (err) {
            throw TypeError(`details.bundlecap is not a bundlecap: ${err?.message ?? err}`);
          }
          if (typeof bundleId !== 'string') throw TypeError(`details.bundlecap gave a bundle id of type ${typeof bundleId}`);
          return { change: exits ? { bundleId, exits } : { bundleId }, bundlecap };
        }
        default:
          throw TypeError(`proposal kind must be one of ${KINDS.join(', ')}; got ${show(kind)}`);
      }
    };

    const propose = async (proposer, kind, details) => {
      const proposedAt = tick();
      const { change, bundlecap } = await describeChange(kind, details);
      const id = instanceBaggage.get('nextProposalId');
      instanceBaggage.set('nextProposalId', id + 1);
      proposals.init(id, harden({
        id,
        kind,
        proposer,
        change,
        proposedAt,
        deadline: proposedAt + votingPeriod,
        votes: {},
        status: 'open',
        passedAt: null,
        enactedAt: null,
        incarnation: null,
        attempts: 0,
        lastError: null,
      }));
      if (bundlecap !== undefined) bundlecaps.init(id, bundlecap);
      return id;
    };

    const vote = (voter, id, inFavor) => {
      const now = tick();
      if (typeof inFavor !== 'boolean') throw TypeError(`a vote is true (in favour) or false (against), got ${show(inFavor)}`);
      const p = lookup(id);
      const status = statusOf(p, now);
      if (status !== 'open') throw Error(`voting on proposal ${id} is closed: ${explain(p, status)}`);
      if (has(p.votes, voter)) throw Error(`${voter} already voted on proposal ${id} (${p.votes[voter] ? 'in favour' : 'against'})`);
      const votes = { ...p.votes, [voter]: inFavor };
      const { inFavor: yes, against: no } = tally(votes);
      let next = 'open';
      if (yes >= threshold) next = 'passed';
      else if (committee.length - no < threshold) next = 'rejected';
      const updated = harden({ ...p, votes, status: next, passedAt: next === 'passed' ? now : null });
      proposals.set(id, updated);
      return view(updated, now);
    };

    // Only the proposer, and only while the proposal is open or passed (not
    // while it is being enacted, nor after).
    const withdraw = (who, id) => {
      const now = tick();
      const p = lookup(id);
      if (p.proposer !== who) throw Error(`only ${p.proposer}, who proposed ${id}, can withdraw it`);
      const status = statusOf(p, now);
      if (status !== 'open' && status !== 'passed') throw Error(`proposal ${id} cannot be withdrawn: ${explain(p, status)}`);
      const updated = harden({ ...p, status: 'withdrawn', withdrawnAt: now });
      proposals.set(id, updated);
      return view(updated, now);
    };

    // ------------------------------------------------------------ enacting

    /** The one admin call a proposal makes, and how governance's records change if it succeeds. */
    const actionFor = (p) => {
      const { name } = p.change;
      switch (p.kind) {
        case 'parameter': {
          const parameters = harden({ ...instanceBaggage.get('currentParameters'), [name]: p.change.value });
          return {
            call: () => E(admin).setExits(harden({ [PARAMETERS_EXIT]: { data: parameters } })),
            record: () => instanceBaggage.set('currentParameters', parameters),
          };
        }
        case 'expression': {
          const expressions = harden({ ...instanceBaggage.get('currentExpressions'), [name]: p.change.source });
          return {
            call: () => E(admin).setExits(harden({ [EXPRESSIONS_EXIT]: { data: expressions } })),
            record: () => instanceBaggage.set('currentExpressions', expressions),
          };
        }
        case 'bundle':
          return { call: () => E(admin).upgrade(bundlecaps.get(p.id), harden({})), record: () => {} };
        case 'bundleWithExits':
          return { call: () => E(admin).upgrade(bundlecaps.get(p.id), harden({ exits: p.change.exits })), record: () => {} };
        default:
          throw Error(`proposal ${p.id} has unknown kind ${show(p.kind)}`);
      }
    };

    const enact = async (id) => {
      const now = tick();
      const p = lookup(id);
      const status = statusOf(p, now);
      if (status !== 'passed') throw Error(`proposal ${id} cannot be enacted: ${explain(p, status)}`);
      const busy = instanceBaggage.get('enacting');
      if (busy !== null) throw Error(`proposal ${busy} is being enacted; enact proposal ${id} after it settles`);
      const { call, record } = actionFor(p);
      instanceBaggage.set('enacting', id);
      proposals.set(id, harden({ ...p, status: 'enacting', attempts: p.attempts + 1 }));
      let result;
      try {
        result = await call();
      } catch (err) {
        const message = err?.message ?? String(err);
        proposals.set(id, harden({ ...proposals.get(id), status: 'passed', lastError: message }));
        instanceBaggage.set('enacting', null);
        throw Error(`enacting proposal ${id} (${p.kind}) failed and changed nothing: ${message}`);
      }
      record();
      const done = harden({ ...proposals.get(id), status: 'enacted', enactedAt: deliveries(), incarnation: result?.incarnation ?? null, lastError: null });
      proposals.set(id, done);
      instanceBaggage.set('enacting', null);
      return harden({ id, kind: p.kind, incarnation: done.incarnation });
    };

    // ------------------------------------------------------------ facets

    const makeVoter = defineDurableKind(
      provideKindHandle(instanceBaggage, 'GovernanceVoter'),
      (name) => ({ name }),
      {
        getName({ state }) {
          tick();
          return state.name;
        },
        propose({ state }, kind, details) {
          return propose(state.name, kind, details);
        },
        vote({ state }, id, inFavor) {
          return vote(state.name, id, inFavor);
        },
        withdraw({ state }, id) {
          return withdraw(state.name, id);
        },
      },
    );

    const makeCreatorFacet = defineDurableKind(
      provideKindHandle(instanceBaggage, 'GovernanceCreator'),
      () => ({}),
      {
        getVoterFacet(_, name) {
          tick();
          if (typeof name !== 'string' || !committee.includes(name)) throw Error(`${show(name)} is not a committee member (members: ${committee.join(', ')})`);
          if (!voters.has(name)) voters.init(name, makeVoter(name));
          return voters.get(name);
        },
      },
    );

    const makePublicFacet = defineDurableKind(
      provideKindHandle(instanceBaggage, 'GovernancePublic'),
      () => ({}),
      {
        getProposal(_, id) {
          const now = tick();
          return view(lookup(id), now);
        },
        listProposals() {
          const now = tick();
          return harden([...proposals.values()].map((p) => view(p, now)));
        },
        enact(_, id) {
          return enact(id);
        },
        tick() {
          return tick();
        },
        getInfo() {
          const now = tick();
          return harden({ version: VERSION, incarnation, committee, threshold, votingPeriod, parameterTypes, expressionNames, deliveries: now });
        },
        /** The parameters and expressions the governed instance runs with now (as far as governance enacted them). */
        getCurrent() {
          tick();
          return harden({ parameters: instanceBaggage.get('currentParameters'), expressions: instanceBaggage.get('currentExpressions') });
        },
      },
    );

    return () => ({ publicFacet: makePublicFacet(), creatorFacet: makeCreatorFacet() });
  };
};
