// A message a vat sends comes back to it: a send pipelined to a promise that
// resolves to one of the vat's own objects is delivered to the vat with the
// result promise it awaits, so it decides that promise itself. The kernel
// does not notify a vat of its own resolutions; liveslots settles the
// awaiting promise from its answer (break-priv #3: it used to hang forever).
import assert from 'node:assert/strict';
import { Host } from '../../host/index.js';
import { settleChecked } from '../fixtures/gc-workload.js';

const ECHO = `import { Far } from '@endo/far';
export function buildRootObject() { return Far('echo', { echo: (x) => x }); }`;

const SELF = `import { Far, E } from '@endo/far';
export function buildRootObject() {
  const root = Far('self', {
    foo: (n) => n + 1,
    later: async (n) => n * 10,
    fail: () => { throw Error('no foo today'); },
    pipelined: (s) => E(E(s).echo(root)).foo(41),
    pipelinedAsync: (s) => E(E(s).echo(root)).later(4),
    pipelinedThrows: (s) => E(E(s).echo(root)).fail(),
    awaited: async (s) => { const me = await E(s).echo(root); return E(me).foo(1); },
    // A vat handed, in a message, the result promise of a message it is still answering (break-rr #3).
    hold: () => new Promise((r) => held.push(r)),
    release: () => { const n = held.length; held.splice(0).forEach((r) => r(1)); return n; },
    take: async (x) => ['took', await x],
    takeRaw: (x) => 'got',
    handRaw: (other) => E(other).takeRaw(E(other).hold()),
    handAwaited: (other) => E(other).take(E(other).hold()),
  });
  const held = [];
  return root;
}`;

/** A send that comes back must settle within a few cranks, with nothing named freed on the way. */
const settle = <T>(host: Host, p: Promise<T>): Promise<T> => settleChecked(host, p, 1000);

describe('liveslots: a send that comes back to its sender (break-priv #3)', () => {
  it('settles it with the answer: a value, a promise\'s value or an error', async function () {
    this.timeout(120_000);
    const host = await Host.open({ autoRun: false });
    try {
      const echo = host.createVat(ECHO, { name: 'echo' });
      const self = host.createVat(SELF, { name: 'self' });
      for (let round = 0; round < 3; round++) {
        assert.equal(await settle(host, host.E(self.root).pipelined(echo.root)), 42);
        assert.equal(await settle(host, host.E(self.root).pipelinedAsync(echo.root)), 40);
        await assert.rejects(settle(host, host.E(self.root).pipelinedThrows(echo.root)), /no foo today/);
        assert.equal(await settle(host, host.E(self.root).awaited(echo.root)), 2);
      }
    } finally {
      await host.close();
    }
  });

  it('takes, in a message, the result promise of a message it is still answering (break-rr #3)', async function () {
    this.timeout(120_000);
    const host = await Host.open({ autoRun: false });
    try {
      const a = host.createVat(SELF, { name: 'a' });
      const b = host.createVat(SELF, { name: 'b' });
      assert.equal(await settle(host, host.E(a.root).handRaw(b.root)), 'got');
      const awaited = host.E(a.root).handAwaited(b.root);
      for (let i = 0; i < 50; i++) await host.run({ maxCranks: 1 });
      assert.equal(await settle(host, host.E(b.root).release()), 2);
      assert.deepEqual(await settle(host, awaited), ['took', 1]);
      assert.ok(!host.kernel.vatLog.some((l) => l.includes('crank aborted')), host.kernel.vatLog.join('\n'));
    } finally {
      await host.close();
    }
  });
});
