// Governance (contracts/governance) holding the admin capability of a governed
// fee quoter (contracts/governed-fees): the four upgrade levels enacted from
// passed proposals, failed votes that change nothing, typed parameters,
// enactment once only, a failing upgrade reported and rolled back, and the
// governance contract's own upgrade.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Host, sourceBundleFromText } from '../../host/index.js';

// Compiled to dist/test/governance/; the contracts stay in contracts/.
const contractsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'contracts');
const source = (name: string, version: string) => fs.readFileSync(path.join(contractsDir, name, version, 'contract.js'), 'utf8');

const FEES_V1 = source('governed-fees', 'v1');
const FEES_V2 = source('governed-fees', 'v2');
const FEES_ORACLE = source('governed-fees', 'v2-oracle');
const GOV_V1 = source('governance', 'v1');
const GOV_V2 = source('governance', 'v2');

const RULE_V1 = '(amount, bps) => amount * bps / BASIS_POINTS';
const VOTING_PERIOD = 5;

type Presence = object;
interface Proposal {
  id: number;
  kind: string;
  proposer: string;
  change: Record<string, unknown>;
  status: string;
  votes: Record<string, boolean>;
  inFavor: number;
  against: number;
  deadline: number;
  incarnation: number | null;
  lastError: string | null;
  attempts: number;
}

/** A copy of `src` in which durable kind `kind` is never defined (an upgrade to it must fail). */
function withoutKind(src: string, kind: string): string {
  const pattern = new RegExp(`defineDurableKind\\(\\s*provideKindHandle\\((\\w+), '${kind}'\\)`);
  assert.match(src, pattern);
  return `${src.replace(pattern, `skipKind(provideKindHandle($1, '${kind}')`)}\nfunction skipKind() { return () => { throw Error('gone'); }; }\n`;
}

describe('governance of a fee quoter', function () {
  this.timeout(30_000);
  let host: Host;
  let fees: { instanceId: string; adminFacet: object; publicFacet: Presence };
  let gov: { instanceId: string; adminFacet: object; publicFacet: Presence; creatorFacet: Presence };
  let alice: Presence, bob: Presence, carol: Presence;
  const E = (target: unknown) => host.E(target);

  /** Uploads source text as a bundle; returns its bundlecap presence (what a proposer hands governance) and id. */
  function bundle(text: string, name: string): { cap: Presence; bundleId: string } {
    const sb = sourceBundleFromText(text, `${name}.js`);
    host.bundles.put(sb.pieces);
    const cap = host.bundles.install(sb.manifest);
    return { cap: host.bundlecapPresence(cap), bundleId: sb.bundleId };
  }

  /** alice proposes; bob and carol vote in favour (2 of 3: passed). */
  async function passed(kind: string, details: unknown): Promise<number> {
    const id = (await E(alice).propose(kind, details)) as number;
    assert.equal(((await E(bob).vote(id, true)) as Proposal).status, 'open');
    const p = (await E(carol).vote(id, true)) as Proposal;
    assert.equal(p.status, 'passed');
    return id;
  }

  const describeFees = () => E(fees.publicFacet).describe() as Promise<Record<string, unknown>>;
  const incarnationOf = (kit: { adminFacet: object }) => E(host.adminPresence(kit.adminFacet)).getIncarnation() as Promise<number>;

  /** A governed quoter (feeBasisPoints 25n, RULE_V1) and governance v1 holding its admin capability. */
  async function setUp(options: { path?: string } = {}) {
    host = await Host.open(options);
    const feeInstallation = host.install(FEES_V1, {
      label: 'fees',
      exits: {
        'host:parameters': { data: { feeBasisPoints: 25n } },
        'host:expressions': { data: { feeRule: RULE_V1 } },
      },
    });
    fees = host.startInstance(feeInstallation) as typeof fees;
    gov = host.startInstance(host.install(GOV_V1, { label: 'governance' }), {
      privateArgs: {
        adminFacet: host.adminPresence(fees.adminFacet),
        committee: ['alice', 'bob', 'carol'],
        threshold: 2,
        votingPeriod: VOTING_PERIOD,
        parameterTypes: { feeBasisPoints: 'bigint' },
        parameters: { feeBasisPoints: 25n },
        expressions: { feeRule: RULE_V1 },
      },
    }) as typeof gov;
    [alice, bob, carol] = (await Promise.all(['alice', 'bob', 'carol'].map((n) => E(gov.creatorFacet).getVoterFacet(n)))) as Presence[];
  }
  beforeEach(async () => {
    await setUp();
  });
  afterEach(async () => {
    await host.close();
  });

  it('the governed quoter reads its parameter and confined fee rule from named exits', async () => {
    assert.equal(await E(fees.publicFacet).quote(10_000n), 25n);
    assert.deepEqual(await describeFees(), {
      version: 'v1',
      incarnation: 1,
      feeBasisPoints: 25n,
      feeRule: RULE_V1,
      endowments: ['BASIS_POINTS', 'min', 'max'],
    });
    assert.equal(await E(gov.creatorFacet).getVoterFacet('alice'), alice, 'one voter facet per member');
    await assert.rejects(E(gov.creatorFacet).getVoterFacet('mallory'), /"mallory" is not a committee member \(members: alice, bob, carol\)/);
  });

  it('level a: a passed parameter proposal is enacted as one action', async () => {
    const id = await passed('parameter', { name: 'feeBasisPoints', value: 30n });
    const p = (await E(gov.publicFacet).getProposal(id)) as Proposal;
    assert.deepEqual(p.change, { name: 'feeBasisPoints', value: 30n, type: 'bigint', exit: 'host:parameters' });
    assert.deepEqual(p.votes, { bob: true, carol: true });
    assert.deepEqual(await E(gov.publicFacet).enact(id), { id, kind: 'parameter', incarnation: 2 });
    assert.equal(await E(fees.publicFacet).quote(10_000n), 30n);
    const d = await describeFees();
    assert.equal(d.feeBasisPoints, 30n);
    assert.equal(d.incarnation, 2);
    assert.equal(d.feeRule, RULE_V1, 'the other exit is untouched');
    assert.equal(await incarnationOf(fees), 2);
    const after = (await E(gov.publicFacet).getProposal(id)) as Proposal;
    assert.equal(after.status, 'enacted');
    assert.equal(after.incarnation, 2);
    assert.deepEqual(await E(gov.publicFacet).getCurrent(), { parameters: { feeBasisPoints: 30n }, expressions: { feeRule: RULE_V1 } });
  });

  it('level b: a passed expression proposal replaces the confined fee rule', async () => {
    const rule = '(amount, bps) => max(amount * bps / BASIS_POINTS, 7n)';
    const id = await passed('expression', { name: 'feeRule', source: rule });
    assert.deepEqual(((await E(gov.publicFacet).getProposal(id)) as Proposal).change, { name: 'feeRule', source: rule, exit: 'host:expressions' });
    assert.deepEqual(await E(gov.publicFacet).enact(id), { id, kind: 'expression', incarnation: 2 });
    assert.equal(await E(fees.publicFacet).quote(100n), 7n);
    assert.equal(await E(fees.publicFacet).quote(10_000n), 25n, 'the parameter is untouched');
    const d = await describeFees();
    assert.equal(d.feeRule, rule);
    assert.equal(d.incarnation, 2);

    // The rule sees only its endowments and frozen primordials: none of the
    // vat's powers.
    const probe = "(amount) => ['E', 'Far', 'HandledPromise', 'require', 'module', '__quickvat_dispatch'].some((n) => n in globalThis) ? 1000n : 3n";
    assert.deepEqual(await E(gov.publicFacet).enact(await passed('expression', { name: 'feeRule', source: probe })), { id: id + 1, kind: 'expression', incarnation: 3 });
    assert.equal(await E(fees.publicFacet).quote(100n), 3n);

    // A rule that reaches for the clock or randomness cannot run in its
    // compartment; the governed contract tries the rule at start, so enacting
    // it fails and the previous rule keeps serving.
    for (const [bad, why] of [
      ['(amount) => BigInt(Date.now()) % 10n', /Date%?\.now\(\) throws/],
      ['(amount) => BigInt(Math.floor(Math.random() * 10))', /random\(\) throws/],
      ['(amount) => amount / 0n', /RangeError|division by zero/],
    ] as const) {
      const badId = await passed('expression', { name: 'feeRule', source: bad });
      await assert.rejects(E(gov.publicFacet).enact(badId), (e: Error) => {
        assert.match(e.message, new RegExp(`enacting proposal ${badId} \\(expression\\) failed and changed nothing: `));
        assert.match(e.message, why);
        return true;
      });
      assert.equal(await E(fees.publicFacet).quote(100n), 3n);
    }
    assert.equal((await describeFees()).incarnation, 3);
  });

  it('level c: a passed bundle proposal upgrades the governed instance, showing the bundle id to review', async () => {
    await E(fees.publicFacet).quote(1_000n);
    const v2 = bundle(FEES_V2, 'fees-v2');
    const id = await passed('bundle', { bundlecap: v2.cap });
    const p = (await E(gov.publicFacet).getProposal(id)) as Proposal;
    assert.deepEqual(p.change, { bundleId: v2.bundleId });
    assert.match(v2.bundleId, /^[0-9a-f]{64}$/);
    assert.deepEqual(await E(gov.publicFacet).enact(id), { id, kind: 'bundle', incarnation: 2 });
    const d = await describeFees();
    assert.equal(d.version, 'v2');
    assert.equal(d.minimumFee, 5n);
    assert.equal(d.feeBasisPoints, 25n, 'the exits carry over');
    assert.equal(await E(fees.publicFacet).quote(1_000n), 5n, 'v2 charges its minimum fee');
    assert.equal(await E(fees.publicFacet).getQuoteCount(), 2n, 'durable state carries over');
    assert.equal(host.runningBundleOf(fees.instanceId), v2.bundleId);
  });

  it('level d: a passed bundle-with-exits proposal grants exactly the exits the voters saw', async () => {
    const oracle = bundle(FEES_ORACLE, 'fees-oracle');
    const exits = { 'host:oracle': { data: { priceMultiplier: 3n, priceSource: 'test feed' } } };
    // The new bundle needs host:oracle: as a plain bundle proposal it fails, naming the exit.
    const plain = await passed('bundle', { bundlecap: oracle.cap });
    await assert.rejects(E(gov.publicFacet).enact(plain), /failed and changed nothing: .*"host:oracle"/);
    assert.equal((await describeFees()).version, 'v1');

    const id = await passed('bundleWithExits', { bundlecap: oracle.cap, exits });
    assert.deepEqual(((await E(gov.publicFacet).getProposal(id)) as Proposal).change, { bundleId: oracle.bundleId, exits });
    assert.deepEqual(await E(gov.publicFacet).enact(id), { id, kind: 'bundleWithExits', incarnation: 2 });
    const d = await describeFees();
    assert.equal(d.version, 'v2-oracle');
    assert.deepEqual(d.oracle, { priceMultiplier: 3n, priceSource: 'test feed' });
    assert.equal(await E(fees.publicFacet).quote(10_000n), 75n);

    // Exits that parameter and expression proposals govern cannot ride along with a bundle.
    await assert.rejects(
      E(alice).propose('bundleWithExits', { bundlecap: oracle.cap, exits: { 'host:parameters': { data: { feeBasisPoints: 1n } } } }),
      /exit "host:parameters" is governed by parameter proposals/,
    );
    await assert.rejects(E(alice).propose('bundleWithExits', { bundlecap: oracle.cap, exits: { 'host:oracle': { data: { feed: alice } } } }), /plain data/);
  });

  it('a failed vote changes nothing and can never be enacted', async () => {
    const governedState = () => `${host.store.stateHash(`k.vs.${fees.instanceId}.`)}/${host.kernel.vatMemoryHash(fees.instanceId)}`;
    const before = { quote: await E(fees.publicFacet).quote(10_000n), describe: await describeFees(), hash: governedState() };
    const check = async () => {
      assert.equal(await E(fees.publicFacet).quote(10_000n), before.quote);
      assert.deepEqual(await describeFees(), before.describe);
      assert.equal(await incarnationOf(fees), 1);
    };

    // Deadline passes with one vote in favour.
    const expired = (await E(alice).propose('parameter', { name: 'feeBasisPoints', value: 99n })) as number;
    await E(bob).vote(expired, true);
    for (let i = 0; i < VOTING_PERIOD; i++) await E(gov.publicFacet).tick();
    await assert.rejects(E(carol).vote(expired, true), /voting on proposal \d+ is closed: its vote failed: voting ended at delivery \d+ with 1 of the 2 votes in favour it needed/);
    assert.equal(((await E(gov.publicFacet).getProposal(expired)) as Proposal).status, 'expired');
    await assert.rejects(E(gov.publicFacet).enact(expired), /proposal \d+ cannot be enacted: its vote failed: voting ended at delivery \d+ with 1 of the 2 votes in favour/);

    // Two of three against: the threshold is out of reach at once.
    const rejected = (await E(alice).propose('expression', { name: 'feeRule', source: '(amount) => amount' })) as number;
    await E(bob).vote(rejected, false);
    const p = (await E(carol).vote(rejected, false)) as Proposal;
    assert.equal(p.status, 'rejected');
    await assert.rejects(E(alice).vote(rejected, true), /voting on proposal \d+ is closed: its vote failed: 2 of 3 members voted against/);
    await assert.rejects(E(gov.publicFacet).enact(rejected), /cannot be enacted: its vote failed: 2 of 3 members voted against, so the threshold of 2 can no longer be reached/);

    // Still open: not enactable yet; a member votes once.
    const open = (await E(alice).propose('parameter', { name: 'feeBasisPoints', value: 1n })) as number;
    await E(alice).vote(open, true);
    await assert.rejects(E(alice).vote(open, true), /alice already voted on proposal \d+ \(in favour\)/);
    await assert.rejects(E(gov.publicFacet).enact(open), /cannot be enacted: it has not passed: 1 of 2 votes in favour so far/);

    assert.equal(governedState(), before.hash, 'the governed vat\'s vatstore and memory are byte-identical');
    await check();
  });

  it('refuses a wrongly typed or undeclared parameter and an ungoverned expression at propose time', async () => {
    await assert.rejects(E(alice).propose('parameter', { name: 'feeBasisPoints', value: 30 }), {
      name: 'TypeError',
      message: 'parameter "feeBasisPoints" must be a bigint, got a number (30)',
    });
    await assert.rejects(E(alice).propose('parameter', { name: 'feeBasisPoints', value: '30' }), /must be a bigint, got a string \("30"\)/);
    await assert.rejects(E(alice).propose('parameter', { name: 'minimumFee', value: 3n }), /parameter "minimumFee" is not declared \(declared: feeBasisPoints\)/);
    await assert.rejects(E(alice).propose('expression', { name: 'other', source: '() => 1n' }), /expression "other" is not governed \(governed: feeRule\)/);
    await assert.rejects(E(alice).propose('expression', { name: 'feeRule', source: '(amount => ' }), /expression "feeRule" does not parse/);
    await assert.rejects(E(alice).propose('bundle', { bundlecap: 'abc' }), /details.bundlecap must be a bundlecap presence/);
    await assert.rejects(E(alice).propose('bundle', { bundlecap: alice }), /details.bundlecap is not a bundlecap/);
    await assert.rejects(E(alice).propose('constitution', {}), /proposal kind must be one of parameter, expression, bundle, bundleWithExits; got "constitution"/);
    assert.deepEqual(await E(gov.publicFacet).listProposals(), [], 'no proposal was recorded');
  });

  it('enacts a proposal once only', async () => {
    const id = await passed('parameter', { name: 'feeBasisPoints', value: 40n });
    assert.deepEqual(await E(gov.publicFacet).enact(id), { id, kind: 'parameter', incarnation: 2 });
    await assert.rejects(E(gov.publicFacet).enact(id), new RegExp(`proposal ${id} cannot be enacted: it was already enacted at delivery \\d+ \\(governed instance incarnation 2\\)`));
    assert.equal(await incarnationOf(fees), 2);
    assert.equal(await E(fees.publicFacet).quote(10_000n), 40n);
  });

  it('reports a bundle proposal whose upgrade fails and leaves the old version serving', async () => {
    await E(fees.publicFacet).quote(500n);
    const broken = bundle(withoutKind(FEES_V2, 'FeesPublic'), 'fees-broken');
    const id = await passed('bundle', { bundlecap: broken.cap });
    const hash = host.store.stateHash(`k.vs.${fees.instanceId}.`);
    await assert.rejects(
      E(gov.publicFacet).enact(id),
      new RegExp(`enacting proposal ${id} \\(bundle\\) failed and changed nothing: .*kind "FeesPublic" \\(defined by incarnation 1\\) was not redefined`),
    );
    assert.equal(host.store.stateHash(`k.vs.${fees.instanceId}.`), hash);
    const p = (await E(gov.publicFacet).getProposal(id)) as Proposal;
    assert.equal(p.status, 'passed', 'still not enacted');
    assert.equal(p.attempts, 1);
    assert.match(p.lastError!, /kind "FeesPublic" \(defined by incarnation 1\) was not redefined/);
    assert.equal((await describeFees()).version, 'v1');
    assert.equal(await E(fees.publicFacet).quote(10_000n), 25n);
    assert.equal(await E(fees.publicFacet).getQuoteCount(), 2n);
    assert.equal(await incarnationOf(fees), 1);
    assert.equal(host.runningBundleOf(fees.instanceId) === broken.bundleId, false);
  });

  it('the governance contract upgrades to v2 with its proposals and admin capability intact', async () => {
    const enacted = await passed('parameter', { name: 'feeBasisPoints', value: 50n });
    await E(gov.publicFacet).enact(enacted);
    const pending = await passed('expression', { name: 'feeRule', source: '(amount, bps) => amount * bps / BASIS_POINTS + 1n' });
    assert.equal(((await E(gov.publicFacet).getInfo()) as { version: string }).version, 'v1');
    // Open across the upgrade (votingPeriod 5 deliveries: it is withdrawn 5 deliveries later).
    const open = (await E(bob).propose('parameter', { name: 'feeBasisPoints', value: 60n })) as number;
    const before = (await E(gov.publicFacet).listProposals()) as Proposal[];

    await host.upgrade(gov.adminFacet, GOV_V2);
    const info = (await E(gov.publicFacet).getInfo()) as { version: string; incarnation: number };
    assert.equal(info.version, 'v2');
    assert.equal(info.incarnation, 2);
    const after = (await E(gov.publicFacet).listProposals()) as Proposal[];
    assert.deepEqual(
      after.map(({ id, kind, status, votes, change }) => ({ id, kind, status, votes, change })),
      before.map(({ id, kind, status, votes, change }) => ({ id, kind, status, votes, change })),
    );

    // v2's new method, on the voter facets v1 handed out: a proposer withdraws
    // an open proposal; nobody else can.
    await assert.rejects(E(alice).withdraw(open), new RegExp(`only bob, who proposed ${open}, can withdraw it`));
    assert.equal(((await E(bob).withdraw(open)) as Proposal).status, 'withdrawn');

    // The passed proposal enacts through the admin presence v1 stored.
    assert.deepEqual(await E(gov.publicFacet).enact(pending), { id: pending, kind: 'expression', incarnation: 3 });
    assert.equal(await E(fees.publicFacet).quote(10_000n), 51n, 'parameter from before the upgrade, rule from after');
    await assert.rejects(E(gov.publicFacet).enact(enacted), /already enacted/);
    await assert.rejects(E(carol).vote(open, true), /voting on proposal \d+ is closed: it was withdrawn by bob/);
    await assert.rejects(E(gov.publicFacet).enact(open), /cannot be enacted: it was withdrawn by bob/);
    await assert.rejects(E(alice).withdraw(pending), /proposal \d+ cannot be withdrawn: .*enacted/);
  });

  it('keeps proposals, votes and the admin capability across a host restart', async () => {
    await host.close();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-governance-'));
    try {
      await setUp({ path: dir });
      const id = (await E(alice).propose('parameter', { name: 'feeBasisPoints', value: 35n })) as number;
      await E(bob).vote(id, true);
      await host.close();

      host = await Host.open({ path: dir });
      gov = host.instanceKit(gov.instanceId) as typeof gov;
      fees = host.instanceKit(fees.instanceId) as typeof fees;
      const carolAgain = await E(gov.creatorFacet).getVoterFacet('carol');
      assert.equal(((await E(carolAgain).vote(id, true)) as Proposal).status, 'passed');
      assert.deepEqual(await E(gov.publicFacet).enact(id), { id, kind: 'parameter', incarnation: 2 });
      assert.equal(await E(fees.publicFacet).quote(10_000n), 35n);
    } finally {
      await host.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
