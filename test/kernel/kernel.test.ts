import assert from 'node:assert/strict';
import { Sandbox } from '../../host/engine/index.js';
import { Host } from '../../host/index.js';
import { storedImage } from '../../host/kernel/base-image.js';
import { ALICE_VAT, BOB_VAT, COUNTER_VAT } from '../fixtures/vats.js';

describe('kernel: vats that talk', () => {
  let host: Host;
  beforeEach(async () => {
    host = await Host.open();
  });
  afterEach(async () => {
    await host.close();
  });

  it('passes a promise before it resolves, and resolves it later across vats', async () => {
    const alice = host.createVat(ALICE_VAT, { name: 'alice' }).root;
    const bob = host.createVat(BOB_VAT, { name: 'bob' }).root;
    const { answer } = (await host.E(alice).giveUnresolved(bob)) as { answer: Promise<string> };
    let settled = false;
    void answer.then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, false, 'bob must still be waiting for the unresolved promise');
    assert.equal(await host.E(alice).resolveIt('forty-two'), 'resolved');
    assert.equal(await answer, 'bob saw forty-two');
  });

  it('pipelines a message to the result of another send', async () => {
    const alice = host.createVat(ALICE_VAT, { name: 'alice' }).root;
    const bob = host.createVat(BOB_VAT, { name: 'bob' }).root;
    assert.equal(await host.E(alice).pipeline(bob), 11);
    assert.equal(await host.E(alice).roundTrip(bob), 2);
  });

  it('keeps object identity across the boundary and back', async () => {
    const alice = host.createVat(ALICE_VAT, { name: 'alice' }).root;
    const bob = host.createVat(BOB_VAT, { name: 'bob' }).root;
    assert.equal(await host.E(alice).identity(bob), true);
    const counter = await host.E(bob).makeCounter(5);
    assert.equal(await host.E(counter).increment(), 6);
    assert.equal(await host.E(counter).increment(), 7);
  });

  it('gives the host a presence it can send to, and rejects unknown krefs clearly', async () => {
    assert.throws(() => host.E({}), /needs a presence/);
    const alice = host.createVat(ALICE_VAT, { name: 'alice' }).root;
    assert.throws(() => host.presence('ko999'), /no object "ko999" on this host/);
    assert.throws(() => host.presence('v2.publicFacet'), /references look like ko12/);
    await assert.rejects(host.E(host.presence(host.refOf(alice))).anything(), /anything/);
  });
});

describe('kernel: failed deliveries roll back', () => {
  let host: Host;
  beforeEach(async () => {
    host = await Host.open({ deliveryBudget: 20_000_000n });
  });
  afterEach(async () => {
    await host.close();
  });

  it('a method that throws rejects its result and the vat keeps working', async () => {
    const c = host.createVat(COUNTER_VAT, { name: 'counter' }).root;
    assert.equal(await host.E(c).add(5), 5);
    await assert.rejects(host.E(c).addThenThrow(1), (e: Error) => e.name === 'RangeError' && /refused after adding 1/.test(e.message));
    // A throw is an ordinary answer: the method's own writes before it stand.
    assert.deepEqual(await host.E(c).read(), [6, 6]);
  });

  it('meter exhaustion aborts the crank: heap and vatstore are as before, later deliveries work', async () => {
    const { vatId, root: c } = host.createVat(COUNTER_VAT, { name: 'counter' });
    assert.equal(await host.E(c).add(5), 5);
    const before = host.store.stateHash(`k.vs.${vatId}.`);
    const memBefore = host.kernel.vatMemoryHash(vatId);
    await assert.rejects(host.E(c).addThenSpin(100), /addThenSpin failed: the receiving vat exhausted its compute budget; the receiving vat was rolled back/);
    assert.equal(host.store.stateHash(`k.vs.${vatId}.`), before);
    assert.equal(host.kernel.vatMemoryHash(vatId), memBefore);
    assert.deepEqual(await host.E(c).read(), [5, 5]);
    assert.equal(await host.E(c).add(1), 6);
    assert.deepEqual(await host.E(c).keys(), ['entry.00000005', 'entry.00000006']);
  });
});

describe('kernel: hostile guests', () => {
  // A guest runtime that ignores liveslots and speaks raw syscalls: the
  // kernel must hold even against code that escaped its compartment.
  const HOSTILE_RUNTIME = `
    const raw = globalThis.__quickvat_syscall;
    const sys = (...req) => raw(JSON.stringify(req));
    globalThis.__quickvat_dispatch = (request) => {
      const d = JSON.parse(request);
      if (d[0] !== 'deliver') return '{"ok":true}';
      const [, , method, , result] = d;
      const ok = (v) => sys('resolve', [[result, false, { body: '#' + JSON.stringify(v), slots: [] }]]);
      switch (method) {
        case 'forge': sys('send', 'o-99', 'steal', { body: '#[]', slots: [] }, 'p+1'); break;
        case 'forgeArg': sys('send', 'o+0', 'x', { body: '#["$0"]', slots: ['o-42'] }, 'p+2'); break;
        case 'resolveOthers': sys('resolve', [['p-77', false, { body: '#1', slots: [] }]]); break;
        case 'badShape': sys('send', 'o+0', 'x', { body: 'not smallcaps', slots: [] }, 'p+3'); break;
        case 'catchAndHide': try { sys('send', 'o-99', 'x', { body: '#[]', slots: [] }, 'p+4'); } catch (e) {} ok('hidden'); break;
        case 'badKey': sys('vatstoreSet', 'a\\ud800', 'x'); break;
        case 'fine': ok('fine'); break;
      }
      return '{"ok":true}';
    };
  `;
  const hostileImage = () => {
    const s = Sandbox.create({ identity: 'hostile' });
    s.evaluate(HOSTILE_RUNTIME);
    return storedImage(s.snapshot());
  };

  it('rejects forged references, foreign promises and malformed capdata; nothing else changes', async () => {
    const host = await Host.open({ baseImage: hostileImage });
    try {
      const { vatId, root } = host.createVat({ entry: 'x', modules: {} }, { name: 'mallory' });
      assert.equal(await host.E(root).fine(), 'fine');
      const before = host.store.stateHash(`k.c.`);
      // The sender learns what failed, not the receiver's references; the
      // operator's diagnostics name them.
      const illegal = (method: string) => new RegExp(`^Error: ${method} failed: the receiving vat made an illegal syscall; the receiving vat was rolled back$`);
      const diagnosed = (pattern: RegExp) => assert.match(host.kernel.vatLog.at(-1) ?? '', pattern);
      await assert.rejects(host.E(root).forge(), illegal('forge'));
      diagnosed(/^v1 crank aborted: the vat used reference o-99, which it was never given \(forged or stale\)$/);
      await assert.rejects(host.E(root).forgeArg(), illegal('forgeArg'));
      diagnosed(/used reference o-42, which it was never given/);
      await assert.rejects(host.E(root).resolveOthers(), illegal('resolveOthers'));
      diagnosed(/used reference p-77|does not decide/);
      await assert.rejects(host.E(root).badShape(), illegal('badShape'));
      diagnosed(/must be smallcaps/);
      // Catching the syscall's error inside the guest does not save the crank.
      await assert.rejects(host.E(root).catchAndHide(), illegal('catchAndHide'));
      diagnosed(/forged or stale/);
      // A bad vatstore key is named in the vat's terms, never as the kernel's store key.
      await assert.rejects(host.E(root).badKey(), illegal('badKey'));
      diagnosed(/^v1 crank aborted: a vatstore key must not contain lone surrogates$/);
      // Each failed crank left the c-lists and the vat's vatstore exactly as they were.
      assert.equal(host.store.stateHash(`k.c.`), before);
      assert.equal(vatId, 'v1');
      assert.equal(await host.E(root).fine(), 'fine');
    } finally {
      await host.close();
    }
  });
});

describe('kernel: determinism across hosts', () => {
  it('two hosts fed the same deliveries end with identical state hashes', async () => {
    const run = async () => {
      const host = await Host.open({ snapshotEvery: 3 });
      const alice = host.createVat(ALICE_VAT, { name: 'alice' }).root;
      const bob = host.createVat(BOB_VAT, { name: 'bob' }).root;
      const c = host.createVat(COUNTER_VAT, { name: 'counter' }).root;
      await host.E(alice).pipeline(bob);
      await host.E(alice).roundTrip(bob);
      for (let i = 1; i <= 5; i++) await host.E(c).add(i);
      const hash = host.stateHash();
      await host.close();
      return hash;
    };
    const [a, b] = [await run(), await run()];
    assert.equal(a, b);
  });
});
