import assert from 'node:assert/strict';
import { ExitNotGranted, Host, UpgradeError } from '../../host/index.js';

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
});
