// Promise semantics across upgrades (issue #11, part 3) and the root object
// rule (part 5).
import assert from 'node:assert/strict';
import { Host, isUpgradeDisconnection } from '../../host/index.js';
import { DURABLE_ROOT, HOLDER_V1, HOLDER_V2, OBSERVER, ORACLE, PROMISES_IN_VIRTUAL } from '../fixtures/liveslots-vats.js';

async function withHost(fn: (host: Host) => Promise<void>) {
  const host = await Host.open();
  try {
    await fn(host);
  } finally {
    await host.close();
  }
}

function holder(host: Host) {
  const kit = host.startInstance(host.install(HOLDER_V1, { label: 'holder' }));
  return { admin: kit.adminFacet, root: kit.root as object };
}

describe('liveslots: promises across upgrades (issue #11)', () => {
  it('a new incarnation continues the promise and object ID counters while an old promise is pending', () =>
    withHost(async (host) => {
      const oracle = host.createVat(ORACLE, { name: 'oracle' }).root;
      const h = holder(host);
      assert.equal(await host.E(h.root).pending(oracle), 'asked');
      await host.upgrade(h.admin, HOLDER_V2);
      assert.equal(await host.E(h.root).ping(oracle, 5), 5);
      assert.equal(await host.E(h.root).ping(oracle, 6), 6);
      assert.equal(await host.E(h.root).version(), 'v2');
    }));

  it('a promise a third vat decides survives the holder’s upgrade and settles for everyone', () =>
    withHost(async (host) => {
      const oracle = host.createVat(ORACLE, { name: 'oracle' }).root;
      const h = holder(host);
      const { p } = (await host.E(h.root).hold(oracle)) as { p: Promise<unknown> };
      await host.upgrade(h.admin, HOLDER_V2);
      assert.equal(await host.E(oracle).answer(42), 1);
      assert.equal(await p, 42);
    }));

  it('a disconnection is the record { name: "vatUpgraded", upgradeMessage, incarnationNumber } at the host and in other vats', () =>
    withHost(async (host) => {
      const h = holder(host);
      const observer = host.createVat(OBSERVER, { name: 'observer' }).root;
      assert.equal(await host.E(observer).watch(h.root), 'watching');
      const waiting = host.E(h.root).neverResolves();
      // Sends to one vat are delivered in order: once this answers, the one above was delivered.
      assert.equal(await host.E(h.root).version(), 'v1');
      await host.upgrade(h.admin, HOLDER_V2, { upgradeMessage: 'moving to v2' });
      const reason = await waiting.then(
        () => assert.fail('should reject'),
        (r: unknown) => r,
      );
      assert.deepEqual(reason, { name: 'vatUpgraded', upgradeMessage: 'moving to v2', incarnationNumber: 2 });
      assert.ok(isUpgradeDisconnection(reason));
      assert.deepEqual(await host.E(observer).outcome(), [
        'rejected',
        true,
        { name: 'vatUpgraded', upgradeMessage: 'moving to v2', incarnationNumber: 2 },
      ]);
    }));

  it('promises kept in virtual object state and virtual collections settle and read back', () =>
    withHost(async (host) => {
      const oracle = host.createVat(ORACLE, { name: 'oracle' }).root;
      const keeper = host.createVat(PROMISES_IN_VIRTUAL, { name: 'keeper' }).root;
      assert.equal(await host.E(keeper).keep(oracle), 'kept');
      assert.equal(await host.E(oracle).answer('yes'), 2);
      assert.equal(await host.E(keeper).settleLocal('mine'), 'ok');
      assert.deepEqual(await host.E(keeper).readSettled(), ['yes', 'yes', 'mine']);
      const [a, b, c] = (await host.E(keeper).read()) as Promise<unknown>[];
      assert.deepEqual(await Promise.all([a, b, c]), ['yes', 'yes', 'mine']);
    }));
});

describe('liveslots: the root object (issue #11, part 5)', () => {
  for (const which of ['durable', 'virtual']) {
    it(`refuses a ${which} object as the root at start, with a clear error`, () =>
      withHost(async (host) => {
        assert.throws(
          () => host.createVat(DURABLE_ROOT, { name: 'bad-root', vatParameters: which }),
          new RegExp(`buildRootObject must return an ephemeral Far object, not a ${which} object`),
        );
      }));
  }
});
