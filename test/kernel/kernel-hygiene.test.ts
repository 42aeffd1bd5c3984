// Issue #10, items 7-9 and determinism in blocks: errors a vat reads carry no
// other vat's counters; a self-referencing promise does not break its
// receiver; upgrades and installs are atomic with the host's records.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Host } from '../../host/index.js';
import { INNOCENT_VAT } from '../fixtures/runaway-vats.js';
import { V1, V2 } from '../fixtures/upgrade-contracts.js';

const tmpdir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'qv-hygiene-'));
const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'upgrade-kill-child.js');

// Provokes every kind of failure another vat can cause, and reports the texts.
const PROBE_VAT = `
  import { Far, E } from '@endo/far';
  export function buildRootObject() {
    const reason = (p) => p.then((v) => 'fulfilled: ' + String(v), (e) => String(e && e.message));
    return Far('probe', {
      async probe(victim, heap) {
        return [
          await reason(E(victim).spin()),
          await reason(E(E(victim).data()).anything()),
          await reason(E(victim).throws()),
          await reason(E(victim).noSuchMethod()),
          await reason(E(heap).ping()),
          await reason(E(E(victim).rejected()).anything()),
        ];
      },
    });
  }`;

const VICTIM_VAT = `
  import { Far } from '@endo/far';
  export function buildRootObject(vatPowers) {
    const made = [];
    return Far('victim', {
      allocate(n) { for (let i = 0; i < n; i++) made.push(Far('thing', { ping() { return i; } })); return made.slice(-n); },
      spin() { for (;;) {} },
      data() { return made.length; },
      throws() { throw new TypeError('victim refuses'); },
      rejected() { return Promise.reject(new Error('no')); },
      heap() { return Far('heap', { ping() { return 'pong'; } }); },
    });
  }`;

const SELF_REF_RESOLVER = `
  import { Far, E } from '@endo/far';
  import { makePromiseKit } from '@endo/promise-kit';
  export function buildRootObject() {
    const kit = makePromiseKit();
    return Far('resolver', {
      give(waiter) { return E(waiter).awaitIt(kit.promise); },
      resolveToSelf() { kit.resolve(harden({ self: kit.promise, n: 1 })); return 'resolved'; },
    });
  }`;

const SELF_REF_WAITER = `
  import { Far } from '@endo/far';
  export function buildRootObject() {
    return Far('waiter', {
      async awaitIt(p) {
        const v = await p;
        const again = await v.self;
        return [v.n, again.n];
      },
    });
  }`;

describe('kernel hygiene (issue #10)', () => {
  it('a vat cannot learn another vat’s allocations from any error it reads', async () => {
    const texts = async (extraAllocations: number): Promise<string[]> => {
      const host = await Host.open({ deliveryBudget: 20_000_000n });
      try {
        // Other vats and objects the probe has nothing to do with.
        for (let i = 0; i < extraAllocations; i++) host.createVat(INNOCENT_VAT, { name: `bystander${i}` });
        const victim = host.createVat(VICTIM_VAT, { name: 'victim' }).root;
        await host.E(victim).allocate(extraAllocations * 7);
        const heap = await host.E(victim).heap();
        const probe = host.createVat(PROBE_VAT, { name: 'probe' }).root;
        return (await host.E(probe).probe(victim, heap)) as string[];
      } finally {
        await host.close();
      }
    };
    const few = await texts(0);
    const many = await texts(3);
    assert.deepEqual(many, few, 'what the probe reads does not depend on what other vats allocated');
    for (const t of few) assert.doesNotMatch(t, /\bk[op]\d+|\bv\d+\b|units|\b[op][+-]\d+/, `no kernel numbers, vat ids, vrefs or compute counts in ${JSON.stringify(t)}`);
    assert.match(few[0], /spin failed: the receiving vat exhausted its compute budget/);
    assert.equal(few[2], 'victim refuses');
  });

  it('a promise resolved to a record containing itself reaches an innocent vat, which resumes', async () => {
    const host = await Host.open();
    try {
      const resolver = host.createVat(SELF_REF_RESOLVER, { name: 'resolver' }).root;
      const waiter = host.createVat(SELF_REF_WAITER, { name: 'waiter' }).root;
      const answer = host.E(resolver).give(waiter);
      await new Promise((r) => setImmediate(r));
      assert.equal(await host.E(resolver).resolveToSelf(), 'resolved');
      assert.deepEqual(await answer, [1, 1]);
      assert.equal(host.kernel.state.count('aborted'), 0, 'no crank was aborted as forged');
    } finally {
      await host.close();
    }
  });

  it('a failed install or upgrade leaves the committed store exactly as it was, pieces included', async () => {
    const host = await Host.open();
    try {
      const installation = host.install(V1, { label: 'c' });
      const kit = host.startInstance(installation);
      const before = host.stateHash();
      assert.throws(() => host.install(`${V1}\nthrow new Error('install refuses');`, { label: 'bad' }), /install refuses/);
      assert.equal(host.stateHash(), before, 'failed install');
      await assert.rejects(host.upgrade(kit.adminFacet, V2.replace('return (instanceBaggage) => {', 'return (instanceBaggage) => { throw Error("no v2");')), /no v2/);
      assert.equal(host.stateHash(), before, 'failed upgrade');
    } finally {
      await host.close();
    }
  });

  it('two hosts fed the same inputs in the same blocks end with identical state hashes', async () => {
    const run = async () => {
      const host = await Host.open({ autoRun: false, snapshotEvery: 3, maxQueuedPerVat: 5 });
      try {
        const a = host.createVat(INNOCENT_VAT, { name: 'a' }).root;
        const b = host.createVat(INNOCENT_VAT, { name: 'b' }).root;
        const pending = [host.E(a).add(1), host.E(b).add(2), host.E(a).burst(b, 9), host.E(b).spin(), host.E(a).interleave(50)].map((p) =>
          p.then(String, (e: Error) => `rejected: ${e.message}`),
        );
        const reports = [];
        for (let i = 0; i < 6; i++) reports.push(await host.run({ maxCranks: 4 }));
        return { hash: host.stateHash(), answers: await Promise.all(pending), reports: reports.map((r) => [r.cranks, String(r.computeUsed), r.stoppedBy]) };
      } finally {
        await host.close();
      }
    };
    const [one, two] = [await run(), await run()];
    assert.deepEqual(two, one);
  });

  for (const killAt of [1, 2, 3]) {
    it(`SIGKILL before commit ${killAt} of an upgrade leaves host records and kernel state agreeing`, async () => {
      const dir = tmpdir();
      const setup = await Host.open({ path: dir });
      const installation = setup.install(V1, { label: 'c' });
      const kit = { ...setup.startInstance(installation), installationId: installation.installationId };
      await setup.close();
      const code = await new Promise<number | null>((resolve, reject) => {
        const child = spawn(process.execPath, [CHILD, dir, kit.instanceId, String(killAt)], { stdio: ['ignore', 'ignore', 'inherit'] });
        child.on('error', reject);
        child.on('exit', (c, signal) => resolve(signal === 'SIGKILL' ? null : c));
      });
      const host = await Host.open({ path: dir });
      try {
        const record = host.kernel.vatRecord(kit.instanceId);
        const running = host.runningBundleOf(kit.instanceId)!;
        // The kernel's current incarnation started from the bundle the host records.
        const start = lastStartVat(host, kit.instanceId);
        const installed = (host.store.get(`h.installation.${kit.installationId ?? ''}`) as { bundleId: string } | undefined)?.bundleId;
        assert.equal(running, start ?? installed);
        assert.ok(host.bundles.holders(running).includes(`instance:${kit.instanceId}`), 'the running bundle is held');
        host.bundles.collect();
        assert.ok(host.bundles.bundlecap(running), 'collect() keeps the running bundle');
        assert.equal(record.incarnation, killAt === 1 ? 1 : 2, `child ended with ${code === null ? 'SIGKILL' : `code ${code}`}`);
        assert.equal(await host.E(host.instanceKit(kit.instanceId).publicFacet).version(), record.incarnation === 1 ? 'v1' : 'v2');
      } finally {
        await host.close();
      }
    });
  }
});

/** The bundle id of the startVat that began the vat's current incarnation, if an upgrade did. */
function lastStartVat(host: Host, vat: string): string | undefined {
  const record = host.kernel.vatRecord(vat);
  for (let pos = record.transcriptLength - 1; pos >= 0; pos--) {
    const d = host.kernel.state.transcriptEntry(vat, pos).d as unknown[];
    if (d[0] === 'startVat') return d[1] as string;
  }
  return undefined;
}
