// Rows a block creates and deletes again (its queue items, result promises
// and their c-list entries) never reach lmdb: the kernel writes them
// `fresh` (Store.set), and a fresh row deleted in its block leaves nothing
// to commit. A `fresh` write of a key that exists would leave a committed
// row undeleted, so this checks every fresh write the kernel makes, over
// traffic of every kind, against what the store holds at that moment.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Host } from '../../host/index.js';
import { Store } from '../../host/store/index.js';
import { runUntilIdle, settleOne } from '../fixtures/run-idle.js';

const SERVER = `import { Far } from '@endo/far';
export function buildRootObject() {
  const thing = Far('thing', { bar: (x) => x * 2 });
  return Far('server', {
    foo: () => thing,
    inc: (i) => i + 1,
    boom: () => { throw Error('boom'); },
    spin: () => { for (;;); },
  });
}`;

const CLIENT = `import { Far, E } from '@endo/far';
export function buildRootObject() {
  return Far('client', {
    async ping(s, n) { let t = 0; for (let i = 0; i < n; i++) t += await E(s).inc(i); return t; },
    pipeline: (s) => E(E(s).foo()).bar(21),
    passOn: (s, other) => E(other).awaitIt(E(s).foo()),
    awaitIt: async (p) => E(await p).bar(4),
    fanOut: (s, n) => Promise.all(Array.from({ length: n }, (_, i) => E(s).inc(i))),
    failing: (s) => E(s).boom().catch((e) => e.message),
    sendThenSpin: (s) => { void E(s).inc(1); for (;;); },
  });
}`;

/** Keys a c-list maps one way but not back: what a fresh write over an existing row would leave. */
function clistMismatches(store: Store): string[] {
  const out: string[] = [];
  for (const [key, value] of store.entries('k.c.')) {
    const [, , vat, dir, ref] = key.split('.', 4).concat(key.split('.').slice(4).join('.'));
    const back = store.get(`k.c.${vat}.${dir === 'v' ? 'k' : 'v'}.${value as string}`);
    if (back !== ref) out.push(`${key} -> ${String(value)} (back: ${String(back)})`);
  }
  return out;
}

describe('kernel: rows a block creates and drops never reach lmdb (issue #10)', () => {
  it('writes `fresh` only keys the store lacks, over host and vat round trips, pipelining, promises passed on, rejections, aborted cranks, a suspended vat\'s backlog and a restart', async function () {
    this.timeout(120_000);
    const set = Store.prototype.set;
    const wrong: string[] = [];
    let fresh = 0;
    Store.prototype.set = function (this: Store, key: string, value: unknown, options?: { once?: boolean; fresh?: boolean }) {
      if (options?.fresh) {
        fresh++;
        if (this.has(key)) wrong.push(key);
      }
      return set.call(this, key, value, options);
    };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-fresh-'));
    try {
      let host = await Host.open({ path: dir, autoRun: false, deliveryBudget: 20_000_000n });
      for (const name of ['server', 'client', 'other']) host.createVat(name === 'server' ? SERVER : CLIENT, { name });
      const work = async (h: Host) => {
        const root = (name: string) => h.vats().find((v) => v.name === name)!.root!;
        const [server, client, other] = ['server', 'client', 'other'].map((name) => ({ root: root(name) }));
        for (let i = 0; i < 50; i++) assert.equal(await settleOne(h, h.E(server.root).inc(i)), i + 1);
        assert.equal(await settleOne(h, h.E(client.root).ping(server.root, 50)), 1_275);
        assert.equal(await settleOne(h, h.E(client.root).pipeline(server.root)), 42);
        assert.equal(await settleOne(h, h.E(client.root).passOn(server.root, other.root)), 8);
        assert.equal((await settleOne(h, h.E(client.root).fanOut(server.root, 30))).length, 30);
        assert.equal(await settleOne(h, h.E(client.root).failing(server.root)), 'boom');
        // A crank that made a send and then ran out of meter: rolled back, rows and all.
        await assert.rejects(settleOne(h, h.E(client.root).sendThenSpin(server.root)));
        await assert.rejects(settleOne(h, h.E(server.root).spin()));
        // Many sends in one block: queue items made and consumed within it.
        const many = Array.from({ length: 100 }, (_, i) => h.E(server.root).inc(i));
        await runUntilIdle(h);
        assert.equal((await Promise.all(many)).length, 100);
        // Items that wait across blocks behind a suspended vat, some from a vat.
        const serverId = h.vats().find((v) => v.name === 'server')!.vatId;
        h.suspend(serverId);
        const waiting = Array.from({ length: 20 }, (_, i) => h.E(server.root).inc(i));
        const fanned = h.E(client.root).fanOut(server.root, 10);
        await runUntilIdle(h);
        h.resume(serverId);
        await runUntilIdle(h);
        assert.equal((await Promise.all(waiting)).length, 20);
        assert.equal((await fanned).length, 10);
        await runUntilIdle(h);
      };
      await work(host);
      await host.close();
      host = await Host.open({ path: dir, autoRun: false, deliveryBudget: 20_000_000n });
      await work(host);
      assert.ok(fresh > 1_000, `the kernel wrote ${fresh} rows fresh`);
      assert.deepEqual(wrong, [], 'fresh writes of keys the store held');
      assert.deepEqual([...host.store.keys('k.rq.i.')], [], 'an empty queue leaves no item rows');
      assert.deepEqual(clistMismatches(host.store), []);
      await host.close();
    } finally {
      Store.prototype.set = set;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('commits nothing for a row set fresh and deleted in one block, and still deletes one set fresh in an earlier block', async () => {
    const store = Store.open();
    try {
      store.set('k.x', 1, { fresh: true });
      store.set('k.x', 2);
      store.delete('k.x');
      assert.equal(store.dirty, false, 'a row born and dropped in the block leaves no write');
      store.set('k.y', 1, { fresh: true });
      store.commit();
      store.delete('k.y');
      assert.equal(store.dirty, true);
      store.commit();
      assert.equal(store.get('k.y'), undefined);
      assert.deepEqual([...store.keys('k.')], []);
      // A crank that dropped a fresh row and was rolled back gives it back.
      store.set('k.z', 1, { fresh: true });
      store.beginCrank();
      store.delete('k.z');
      store.abortCrank();
      assert.equal(store.get('k.z'), 1);
      store.commit();
      assert.deepEqual([...store.keys('k.')], ['k.z']);
    } finally {
      await store.close();
    }
  });
});
