import assert from 'node:assert/strict';
import { ExitNotGranted, Host, UpgradeError } from '../../host/index.js';
import { ABORTED_CRANK_LINES } from '../../host/kernel/crank-outbox.js';

const CONTRACT = `
import { Far } from '@endo/far';
import params, { feeRate } from 'host:parameters';
export function buildRootObject() {
  return Far('root', { fee: (amount) => amount * feeRate, all: () => params });
}`;

const WITH_LIBRARY = `
import { Far } from '@endo/far';
import { gcd } from 'host:math';
import console from 'host:console';
export function buildRootObject() {
  return Far('root', { reduce(a, b) { const g = gcd(a, b); console.log('reduced', a, b, 'by', g); return [a / g, b / g]; } });
}`;

describe('named exits', () => {
  let host: Host;
  beforeEach(async () => {
    host = await Host.open();
  });
  afterEach(async () => {
    await host.close();
  });

  it('fills host:parameters from the installation policy', async () => {
    const kit = host.startInstance(host.install(CONTRACT, { label: 'fees', exits: { 'host:parameters': { data: { feeRate: 3, name: 'prod' } } } }));
    assert.equal(await host.E(kit.root).fee(10), 30);
    assert.deepEqual(await host.E(kit.root).all(), { feeRate: 3, name: 'prod' });
  });

  it('lets a unit test satisfy the same exit with a local stand-in', async () => {
    const kit = host.startInstance(host.install(CONTRACT, { label: 'fees', exits: { 'host:parameters': { data: { feeRate: 0 } } } }));
    assert.equal(await host.E(kit.root).fee(10), 0);
  });

  it('refuses to install a bundle importing an exit the policy does not grant, naming it', () => {
    assert.throws(
      () => host.install(CONTRACT, { label: 'fees' }),
      (e: Error) => e instanceof ExitNotGranted && /installation fees imports named exit "host:parameters", which its exit policy does not grant \(granted: none\)/.test(e.message),
    );
    assert.throws(() => host.install(WITH_LIBRARY, { label: 'lib', exits: { 'host:math': { module: 'export const gcd = (a, b) => b ? gcd(b, a % b) : a;' } } }), /"host:console"/);
  });

  it('supplies a powerless module and an attenuated console', async () => {
    const kit = host.startInstance(
      host.install(WITH_LIBRARY, {
        label: 'lib',
        exits: {
          'host:math': { module: 'export const gcd = (a, b) => (b ? gcd(b, a % b) : a);' },
          'host:console': { power: 'console' },
        },
      }),
    );
    assert.deepEqual(await host.E(kit.root).reduce(12, 18), [2, 3]);
    assert.ok(host.kernel.vatLog.some((l) => /log: reduced 12 18 by 6/.test(l)), host.kernel.vatLog.join('\n'));
    assert.throws(
      () =>
        host.install(WITH_LIBRARY, {
          label: 'lib2',
          exits: { 'host:math': { module: "import fs from 'fs'; export const gcd = () => 1;" }, 'host:console': { power: 'console' } },
        }),
      /a powerless module may not import anything/,
    );
  });

  it('an upgrade whose bundle needs a new exit must be granted it', async () => {
    const plain = `import { Far } from '@endo/far'; export function buildRootObject() { return Far('root', { fee: (a) => a }); }`;
    const kit = host.startInstance(host.install(plain, { label: 'fees' }));
    await assert.rejects(host.upgrade(kit.adminFacet, CONTRACT), (e: Error) => e instanceof UpgradeError && /named exit "host:parameters"/.test(e.message));
    assert.equal(await host.E(kit.root).fee(10), 10);
    await host.upgrade(kit.adminFacet, CONTRACT, { exits: { 'host:parameters': { data: { feeRate: 2 } } } });
    assert.equal(await host.E(kit.root).fee(10), 20);
  });

  it("keeps a rolled-back crank's console lines out of the log but for a few marked ones, and lets no vat text start a line of its own (break16 #5)", async () => {
    const chatty = (version: string, startup: string) => `
import { Far } from '@endo/far';
import console from 'host:console';
export function buildRootObject() {
  ${startup}
  return Far('root', { version: () => '${version}', say: (text) => { console.log(text); return text.length; } });
}`;
    const exits = { 'host:console': { power: 'console' as const } };
    const kit = host.startInstance(host.install(chatty('v1', ''), { label: 'chatty', exits }));
    await host.E(kit.root).say('first line\nv9 error: forged kernel note\r\u2028host: a host waiter threw');
    const before = host.kernel.vatLog.length;
    const committed = host.kernel.vatLog.at(-1)!;
    assert.match(committed, /^v\d+ log: first line\\nv9 error: forged kernel note\\r\\u2028host: a host waiter threw$/);
    // v2 writes 500 lines while starting, then fails to start: the upgrade is refused and rolled back.
    const v2 = chatty('v2', "for (let i = 0; i < 500; i++) console.error('flood ' + i + '\\nkernel crank aborted: forged'); throw Error('v2 refuses to start');");
    await assert.rejects(host.upgrade(kit.adminFacet, v2, { exits }), (e: Error) => e instanceof UpgradeError && /v2 refuses to start/.test(e.message));
    assert.equal(await host.E(kit.root).version(), 'v1');
    const added = host.kernel.vatLog.slice(before);
    const marked = added.filter((l) => l.startsWith('(aborted crank, rolled back) '));
    assert.equal(marked.length, ABORTED_CRANK_LINES + 1, added.join('\n'));
    assert.match(marked[0], /^\(aborted crank, rolled back\) v\d+ error: flood 0\\nkernel crank aborted: forged$/);
    assert.match(marked.at(-1)!, new RegExp(`${500 - ABORTED_CRANK_LINES} more vat log lines of this crank dropped`));
    assert.ok(added.length <= ABORTED_CRANK_LINES + 3, `a refused upgrade adds at most a few lines, got ${added.length}`);
    assert.ok(host.kernel.vatLog.includes(committed), 'the earlier lines stay');
    for (const line of host.kernel.vatLog) assert.doesNotMatch(line, /[\n\r\u2028\u2029]/);
  });
});
