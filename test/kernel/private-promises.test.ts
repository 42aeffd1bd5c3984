// Private promises (run-items.ts): a message's result promise that nothing
// but its own round trip names is freed as soon as its one subscriber has
// the settlement, without a GC sweep; one named anywhere else stays until
// the sweep finds nobody names it. Every case runs one crank per block and
// checks after each that nothing named was freed.
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';
import { assertNothingNamedIsFreed, runChecked, settleChecked } from '../fixtures/gc-workload.js';
import { runUntilIdle } from '../fixtures/run-idle.js';

const SERVER = `import { Far } from '@endo/far';
export function buildRootObject() {
  const thing = Far('thing', { bar: (x) => x * 2 });
  const held = [];
  return Far('server', {
    foo: () => thing,
    inc: (i) => i + 1,
    hold: () => new Promise((r) => held.push(r)),
    releaseAll: () => { const n = held.length; held.splice(0).forEach((r) => r(1)); return n; },
  });
}`;

const CLIENT = `import { Far, E } from '@endo/far';
export function buildRootObject() {
  let pending;
  return Far('client', {
    async ping(s, n) { let t = 0; for (let i = 0; i < n; i++) t += await E(s).inc(i); return t; },
    // A send to the result of another, before it settles (pipelining).
    pipeline: (s) => E(E(s).foo()).bar(21),
    // The result promise passed on to a third vat in a message.
    passOn: async (s, other) => E(other).awaitIt(E(s).foo()),
    // The result promise handed to the host inside a record.
    toHost: (s) => harden({ q: E(s).foo() }),
    awaitIt: async (p) => E(await p).bar(4),
    start: (s) => { pending = E(s).foo(); return true; },
    many: (s, n) => { for (let i = 0; i < n; i++) void E(s).foo(); return true; },
    passMany: (s, o, n) => { for (let i = 0; i < n; i++) void E(o).keep(E(s).hold()); return true; },
    keep: async (p) => { await p; return 1; },
    later: () => Promise.all([1, 2, 3].map((i) => E(pending).bar(i))),
  });
}`;

function count(host: Host, prefix: string): number {
  let n = 0;
  for (const _ of host.store.keys(prefix)) n++;
  return n;
}

interface Vats {
  readonly server: { readonly root: object; readonly vatId: string };
  readonly client: { readonly root: object; readonly vatId: string };
  readonly other: { readonly root: object; readonly vatId: string };
}

/** A host (autoRun off) with a server and two clients, closed after `body`. */
async function withVats(body: (host: Host, vats: Vats) => Promise<void>): Promise<void> {
  const host = await Host.open({ autoRun: false });
  try {
    const server = host.createVat(SERVER, { name: 'server' });
    const client = host.createVat(CLIENT, { name: 'client' });
    const other = host.createVat(CLIENT, { name: 'other' });
    await body(host, { server, client, other } as Vats);
  } finally {
    await host.close();
  }
}

describe('kernel: private promises are freed without a sweep (issue #10)', () => {
  it("frees a host send's result promise with its settlement, and a vat's with its notify: no rows, no sweep cycle", async function () {
    this.timeout(120_000);
    await withVats(async (host, { server, client, other }) => {
      const cycles = host.kernel.gcStats().cycles;
      for (let i = 0; i < 300; i++) assert.equal(await settleChecked(host, host.E(server.root).inc(i)), i + 1);
      assert.equal(count(host, 'k.kp.'), 0, 'host sends');
      // 300 vat-to-vat round trips (and the host's call).
      assert.equal(await settleChecked(host, host.E(client.root).ping(server.root, 300)), 45_150);
      assert.equal(count(host, 'k.kp.'), 0, 'vat sends');
      assert.equal(host.kernel.gcStats().cycles, cycles, 'no sweep cycle was needed');
      assert.equal(host.kernel.gcStats().debt, 0, 'no debt waits for one');
    });
  });

  it('counts in GC debt every settled row a notify does not free, and only those (break-priv #2)', async function () {
    this.timeout(120_000);
    await withVats(async (host, { server, client, other }) => {
      const debt = () => host.kernel.gcStats().debt;
      // 300 private results settle while the client, suspended, has not heard: they add no debt.
      const sent = host.E(client.root).many(server.root, 300);
      await host.run({ maxCranks: 1 });
      await settleChecked(host, sent);
      host.suspend(client.vatId);
      await runChecked(host, 400);
      assert.equal(count(host, 'k.kp.'), 300);
      assert.equal(debt(), 0);
      // 20 promises the host received in data: garbage for the sweep once settled and heard, one debt each.
      for (let i = 0; i < 20; i++) {
        const { q } = (await settleChecked(host, host.E(other.root).toHost(server.root))) as { q: Promise<object> };
        await settleChecked(host, q);
      }
      await runChecked(host, 20); // other hears the last settlements
      const shared = debt();
      assert.ok(shared >= 20, `debt ${shared} counts the 20`);
      // The client hears: its 300 rows go, adding no debt.
      host.resume(client.vatId);
      await runChecked(host, 400);
      assert.equal(count(host, 'k.kp.'), 20);
      assert.equal(debt(), shared);
    });
  });

  it('counts a shared promise that a notify leaves unnamed in GC debt, though a cycle took its settlement\'s (break-rr #2)', async function () {
    this.timeout(120_000);
    await withVats(async (host, { server, client, other }) => {
      // 300 results the client passes on to other, settled while other (suspended) has not heard, and a cycle runs meanwhile.
      assert.equal(await settleChecked(host, host.E(client.root).passMany(server.root, other.root, 300)), true);
      await runUntilIdle(host);
      host.suspend(other.vatId);
      const released = host.E(server.root).releaseAll();
      await runUntilIdle(host);
      assert.equal(await released, 300);
      assert.ok(host.kernel.gcStats().cycles > 0, 'a cycle ran while the notifies waited');
      host.resume(other.vatId);
      await runUntilIdle(host);
      assertNothingNamedIsFreed(host, 'idle');
      const unnamed = count(host, 'k.kp.');
      assert.ok(unnamed > 0, 'the rows wait for a sweep');
      assert.ok(host.kernel.gcStats().debt >= unnamed, `debt ${host.kernel.gcStats().debt} counts the ${unnamed} rows`);
    });
  });

  // Each promise below is named beyond its round trip at the moment its
  // subscriber is notified: freeing it then would leave a queued message, a
  // c-list or the host naming a deleted row. Suspensions force the orderings.

  it('keeps a result promise passed on in a message still queued when it settles', async function () {
    this.timeout(120_000);
    await withVats(async (host, { server, client, other }) => {
      // The message carrying the promise waits in other's lane while the server settles it and the client hears.
      host.suspend(other.vatId);
      const r = host.E(client.root).passOn(server.root, other.root);
      await runChecked(host, 200);
      host.resume(other.vatId);
      assert.equal(await settleChecked(host, r), 8);
    });
  });

  it('treats a promise row written before sharing was tracked (no shared field) as shared (break-priv #1)', async function () {
    this.timeout(120_000);
    await withVats(async (host, { server, client, other }) => {
      host.suspend(server.vatId);
      host.suspend(other.vatId);
      const r = host.E(client.root).passOn(server.root, other.root);
      await runChecked(host, 50);
      // The rows as an earlier build wrote them: no shared field, though a queued message names the promise.
      for (const [key, row] of [...host.store.entries('k.kp.')]) {
        const { shared: _shared, ...old } = row as { shared?: boolean };
        host.store.set(key, old);
      }
      host.store.commit();
      host.resume(server.vatId);
      await runChecked(host, 50);
      host.resume(other.vatId);
      assert.equal(await settleChecked(host, r), 8);
    });
  });

  it('keeps a result promise a message is sent to after it settled and before its subscriber heard', async function () {
    this.timeout(120_000);
    await withVats(async (host, { server, client, other }) => {
      host.suspend(server.vatId);
      await settleChecked(host, host.E(client.root).start(server.root));
      // The client's lane: later(), then the notify that foo() settled.
      host.suspend(client.vatId);
      const r = host.E(client.root).later();
      host.resume(server.vatId);
      await runChecked(host, 200);
      // later() sends three messages to the settled promise; the notify may come between them.
      host.resume(client.vatId);
      assert.deepEqual(await settleChecked(host, r), [2, 4, 6]);
    });
  });

  it('keeps a result promise messages were parked on until they are released', async function () {
    this.timeout(120_000);
    await withVats(async (host, { server, client, other }) => {
      for (let round = 0; round < 4; round++) {
        // The pipelined message is parked on the result promise while the server waits.
        host.suspend(server.vatId);
        const r = host.E(client.root).pipeline(server.root);
        await runChecked(host, 50);
        host.resume(server.vatId);
        assert.equal(await settleChecked(host, r), 42);
      }
    });
  });

  it('keeps a result promise the host received in a record, settled in the same block', async function () {
    this.timeout(120_000);
    await withVats(async (host, { server, client, other }) => {
      for (let round = 0; round < 5; round++) {
        const got = host.E(client.root).toHost(server.root);
        // One block: the record reaches the host pin, and the server settles the promise in it.
        await host.run({ maxCranks: 100 });
        assertNothingNamedIsFreed(host, `round ${round}`);
        const { q } = (await got) as { q: Promise<object> };
        const thing = await settleChecked(host, q);
        assert.equal(await settleChecked(host, host.E(thing).bar(5)), 10);
      }
    });
  });
});
