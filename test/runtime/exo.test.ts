// Agoric-style authoring (issue 12): durable exo classes and kits with
// interface guards across an upgrade, guard and stateShape violations,
// @endo/errors messages and the global assert, and a missing named import of
// a built-in module refused at install.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BundleError, Host, type InstanceKit } from '../../host/index.js';
import { builtinImportsOf, builtinModuleExports } from '../../host/bundles/builtin-modules.js';
import { BANK_V1, BANK_V2 } from '../fixtures/exo-contracts.js';

describe('exos: interface guards, stateShape, @endo/errors (issue 12)', function () {
  this.timeout(30_000);
  let host: Host;
  let bank: object;
  let kit: InstanceKit;
  const E = (target: unknown) => host.E(target);

  beforeEach(async () => {
    host = await Host.open();
    kit = host.startInstance(host.install(BANK_V1, { label: 'bank' }));
    bank = kit.publicFacet as object;
  });
  afterEach(async () => {
    await host.close();
  });

  it('a durable exo class keeps its identity and state across an upgrade; the new incarnation’s behaviour and guards apply', async () => {
    const purse = await E(bank).openPurse('ann', 10n);
    assert.equal(await E(purse).deposit(0n), 10n, 'v1 accepts a zero deposit');
    assert.equal(await E(purse).withdraw(3n), 3n);
    await assert.rejects(E(purse).describe(), /describe/);
    const { holder, admin } = (await E(bank).openAccount('acct')) as { holder: object; admin: object };
    await E(holder).note('first');

    // Agoric's baggage keys: state written by Agoric-style code has Agoric's shape.
    assert.deepEqual(await E(bank).baggageKeys(), ['Account_kindHandle', 'Bank_kindHandle', 'Bank_singleton', 'Purse_kindHandle']);
    assert.deepEqual(await host.upgrade(kit.adminFacet, BANK_V2), { incarnation: 2 });
    assert.equal(await E(bank).version(), 'v2');
    assert.equal(await E(purse).getBalance(), 7n, 'state survived');
    assert.equal(await E(purse).describe(), 'ann holds 7', 'a method the new incarnation added works on an old object');
    // New guard: deposits must be at least 1n.
    await assert.rejects(E(purse).deposit(0n), { message: 'In "deposit" method of (Purse): arg 0: "[0n]" - Must be >= "[1n]"' });
    // New behaviour: a withdrawal costs a fee.
    assert.equal(await E(purse).withdraw(2n), 2n);
    assert.equal(await E(purse).getBalance(), 4n);
    // The kit: same facets, old state, and the facet method v2 added.
    assert.deepEqual(await E(admin).notes(), ['opened by acct', 'first']);
    await E(admin).rename('renamed');
    assert.equal(await E(holder).getName(), 'renamed');
    await assert.rejects(E(holder).note(42), { message: 'In "note" method of (Account holder): arg 0: number 42 - Must be a string' });
  });

  it('a guard violation rejects that call with the guard’s message and rolls back nothing else', async () => {
    const ann = await E(bank).openPurse('ann', 10n);
    const bob = await E(bank).openPurse('bob');
    await assert.rejects(E(ann).deposit('5'), { message: 'In "deposit" method of (Purse): arg 0: string "5" - Must be a bigint' });
    await assert.rejects(E(ann).withdraw(-1n), { message: 'In "withdraw" method of (Purse): arg 0: "[-1n]" - Must be non-negative' });
    await assert.rejects(E(ann).deposit(1n, 2n), /"In \\"deposit\\" method of \(Purse\)" accepts at most 1 arguments, not 2/);
    await assert.rejects(E(bank).openPurse(7), { message: 'In "openPurse" method of (Bank): arg 0: number 7 - Must be a string' });
    assert.equal(await E(ann).getBalance(), 10n, 'nothing was deposited');
    // Inside one delivery: ann's write stands although bob's guard refused the inner call.
    assert.equal(await E(ann).pay(bob, -2n), 'refused: In "deposit" method of (Purse): arg 0: "[-2n]" - Must be non-negative');
    assert.equal(await E(ann).getBalance(), 9n);
    assert.equal(await E(ann).pay(bob, 4n), 'paid');
    assert.deepEqual([await E(ann).getBalance(), await E(bob).getBalance()], [8n, 4n]);
    await assert.rejects(E(ann).pay('bob', 1n), /In "pay" method of \(Purse\): arg 0: .*Must be a remotable/);
  });

  it('refuses a state write or an initial state that does not match stateShape', async () => {
    const ann = await E(bank).openPurse('ann', 5n);
    await assert.rejects(E(ann).rename(42), { message: 'Purse state.owner: number 42 - Must be a string' });
    await assert.rejects(E(bank).openAnyPurse(5), { message: 'Purse initial state: owner: number 5 - Must be a string' });
    await E(ann).rename('anne');
    await assert.rejects(E(ann).withdraw(6n), { message: 'purse of "anne" holds "[5n]", cannot withdraw "[6n]"' });
    assert.equal(await E(ann).getBalance(), 5n);
  });

  it('gives contracts @endo/errors (Fail, q) and the global assert with SES’s messages', async () => {
    assert.equal(await E(bank).check(5), 'ok');
    await assert.rejects(E(bank).check('x'), { message: '"x" must be a number' });
    await assert.rejects(E(bank).check(-1), { message: 'n must be positive' });
    await assert.rejects(E(bank).check(100), { message: '100 is too big' });
  });
});

describe('built-in modules: a missing named import is refused at install (issue 12)', () => {
  it('names the module and the missing name, and lists what the built-in module exports', async () => {
    const host = await Host.open();
    try {
      const source = `import { prepareExo, prepareExoKit } from '@agoric/vat-data';\nimport { M } from '@endo/patterns';\nexport const defineInstallationKinds = () => () => () => ({});`;
      let caught: unknown;
      try {
        host.install(source, { label: 'typo' });
      } catch (err) {
        caught = err;
      }
      assert.ok(caught instanceof BundleError, String(caught));
      const exported = builtinModuleExports().get('@agoric/vat-data')!;
      assert.ok(exported.includes('prepareExoClassKit') && !exported.includes('prepareExoKit'));
      assert.equal(
        caught.message,
        `cannot bundle typo.js: module typo.js imports "prepareExoKit" from built-in module "@agoric/vat-data", which does not export it; "@agoric/vat-data" exports: ${exported.join(', ')}`,
      );
      assert.deepEqual(host.installations(), [], 'nothing was installed');
      // ES semantics: a built-in module has no default export.
      assert.throws(
        () => host.install(`import far from '@endo/far';\nexport const defineInstallationKinds = () => () => () => far;`, { label: 'default' }),
        /module default\.js imports a default export from built-in module "@endo\/far", which does not export it; "@endo\/far" exports: E, Far, getInterfaceOf, passStyleOf$/,
      );
    } finally {
      await host.close();
    }
  });

  it('reads imports, re-exports and default imports of built-in modules from ES source', () => {
    const source = [
      "import { M, mustMatch as mm } from '@endo/patterns';",
      "import * as far from '@endo/far';",
      "import def, { E } from '@endo/eventual-send';",
      "import local from './local.js';",
      "export { Fail, q as quote } from '@endo/errors';",
      "import type { Passable } from '@endo/pass-style';",
    ].join('\n');
    assert.deepEqual(builtinImportsOf(source), [
      { specifier: '@endo/errors', names: ['Fail', 'q'] },
      { specifier: '@endo/eventual-send', names: ['E', 'default'] },
      { specifier: '@endo/far', names: [] },
      { specifier: '@endo/patterns', names: ['M', 'mustMatch'] },
    ]);
  });

  it('docs/builtin-modules.md lists exactly the names each built-in module exports', () => {
    const doc = fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'builtin-modules.md'), 'utf8');
    const table = doc.slice(doc.indexOf('## Every name, by module'));
    const documented = new Map(
      [...table.matchAll(/^\| `([^`]+)` \| (.*) \|$/gm)].map(([, specifier, names]) => [specifier, [...names.matchAll(/`([^`]+)`/g)].map((m) => m[1])]),
    );
    assert.deepEqual(documented, new Map([...builtinModuleExports()].map(([k, v]) => [k, [...v]])));
  });
});
