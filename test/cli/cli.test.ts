import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exampleContractPath } from '../../host/example-contracts.js';
import { Host } from '../../host/index.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'host', 'cli', 'main.js');
const contract = (v: string) => exampleContractPath('ledger', v);

function run(cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function stateHash(dir: string): Promise<string> {
  const host = await Host.open({ path: path.join(dir, '.quickvat') });
  try {
    return host.store.stateHash();
  } finally {
    await host.close();
  }
}

describe('quickvat CLI', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-cli-'));
  });

  it('goes through the demo steps: bundle, install, start, call, review, upgrade, snapshot', () => {
    let r = run(dir, 'bundle', contract('v1'), '-o', 'v1.json');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /bundled .*contract\.js: 1 modules, \d+ bytes/);
    r = run(dir, 'bundle', contract('v2'), '-o', 'v2.json');
    assert.equal(r.code, 0, r.stderr);

    r = run(dir, '--json', 'install', 'v1.json', '--label', 'ledger');
    assert.equal(r.code, 0, r.stderr);
    const installed = JSON.parse(r.stdout);
    assert.equal(installed.label, 'ledger');
    assert.equal(installed.uploadedBytes, installed.totalBytes);

    r = run(dir, '--json', 'start', 'ledger', '--parameters', '{"symbol":"GOLD"}');
    assert.equal(r.code, 0, r.stderr);
    const { instanceId, facets } = JSON.parse(r.stdout);
    assert.deepEqual(facets, ['creatorFacet', 'publicFacet']);

    assert.equal(run(dir, 'call', `${instanceId}.publicFacet`, 'openAccount', 'alice').code, 0);
    assert.equal(run(dir, 'call', `${instanceId}.creatorFacet`, 'mint', 'alice', '"250n"').stdout.trim(), '250n');

    r = run(dir, 'review', 'v2.json', '--against', instanceId, '--html', 'review.html');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /changed\s+\d+\s+[0-9a-f]{12}\s+contracts\/ledger\/v2\/contract\.js \(entry\)/);
    assert.match(fs.readFileSync(path.join(dir, 'review.html'), 'utf8'), /<html/);

    r = run(dir, 'upgrade', instanceId, 'v2.json', '--private-args', '{"feeBasisPoints":"10n"}');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`upgraded ${instanceId} to incarnation 2`));
    assert.equal(run(dir, 'call', `${instanceId}.publicFacet`, 'balanceOf', 'alice').stdout.trim(), '250n');
    assert.match(run(dir, 'call', `${instanceId}.publicFacet`, 'getInfo').stdout, /"version":"v2"/);

    assert.match(run(dir, 'snapshot', 'list').stdout, new RegExp(`${instanceId}\\s+ledger\\s+inc 2`));

    // A second instance, upgraded through pre-flight and a shadow first.
    const second = JSON.parse(run(dir, '--json', 'start', 'ledger').stdout).instanceId;
    r = run(dir, 'preflight', second, 'v2.json');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pre-flight: no problems/);
    fs.writeFileSync(path.join(dir, 'calls.json'), JSON.stringify([['publicFacet', 'openAccount', 'bob'], ['creatorFacet', 'mint', 'bob', '10n'], ['publicFacet', 'balanceOf', 'bob']]));
    r = run(dir, 'shadow', second, 'v2.json', '--calls', 'calls.json', '--promote');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /3 publicFacet\.balanceOf\("bob"\) -> 10n/);
    assert.match(r.stdout, /3 deliveries, 0 differed; promoted: v\d+ is at incarnation 2/);
    r = run(dir, 'preflight', second, 'v1.json');
    assert.equal(r.code, 3);
    assert.match(r.stdout, /state-version-lowered: durable kind "Account" lowers stateVersion from 1 to 0/);
    assert.match(run(dir, 'snapshot', 'verify').stdout, /\d+ images verified/);
  });

  it('prints returned objects as refs usable by later commands, by ref, by --as name and by instance label', async () => {
    const fresh = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-cli-refs-'));
    assert.equal(run(fresh, 'bundle', contract('v1'), '-o', 'v1.json').code, 0);
    assert.equal(run(fresh, 'install', 'v1.json', '--label', 'ledger').code, 0);
    let r = run(fresh, 'start', 'ledger', '--label', 'gold', '--parameters', '{"symbol":"GOLD"}');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^started v\d+ \(label gold\) from ledger: facets gold\.creatorFacet, gold\.publicFacet$/m);

    r = run(fresh, 'call', 'gold.publicFacet', 'openAccount', 'alice', '--as', 'alice');
    assert.equal(r.code, 0, r.stderr);
    const [, ref, iface] = /^(ko\d+) \((Alleged: [^)]+)\)$/m.exec(r.stdout) ?? [];
    assert.ok(ref, `a ref in ${r.stdout}`);
    assert.match(iface, /Account/);
    assert.match(r.stdout, /saved as alice/);
    assert.equal(run(fresh, 'call', 'gold.creatorFacet', 'mint', 'alice', '40n').stdout.trim(), '40n');
    // Each command is its own process: the ref and the name outlive them.
    assert.equal(run(fresh, 'call', ref, 'getBalance').stdout.trim(), '40n');
    assert.equal(run(fresh, 'call', 'alice', 'getBalance').stdout.trim(), '40n');
    r = run(fresh, '--json', 'call', 'gold.publicFacet', 'openAccount', 'bob');
    assert.deepEqual(JSON.parse(r.stdout).result.$ref.startsWith('ko'), true);
    r = run(fresh, 'call', 'gold.publicFacet', 'balanceOf', 'alice');
    assert.equal(r.stdout.trim(), '40n');

    r = run(fresh, 'list');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /installations:\n\s+v\d+\s+ledger/);
    assert.match(r.stdout, /instances:\n\s+v\d+\s+gold\s+inc 1\s+bundle [0-9a-f]{12}…/);
    assert.match(r.stdout, new RegExp(`names:\\n\\s+alice\\s+${ref} \\(Alleged: `));
    const listed = JSON.parse(run(fresh, '--json', 'list').stdout);
    assert.deepEqual(listed.instances.map((i: { label: string; suspended: boolean; incarnation: number }) => [i.label, i.incarnation, i.suspended]), [['gold', 1, false]]);
    assert.equal(listed.names.alice.ref, ref);
    const host = await Host.open({ path: path.join(fresh, '.quickvat') });
    host.suspend(listed.instances[0].instanceId, 'paused for the test');
    await host.close();
    assert.match(run(fresh, 'list').stdout, /\s+gold\s+inc 1\s+bundle [0-9a-f]{12}…\s+SUSPENDED \(paused for the test\)/);
    assert.equal(JSON.parse(run(fresh, '--json', 'list').stdout).instances[0].suspended, true);
    r = run(fresh, 'call', 'alice', 'getBalance');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^quickvat: alice: its vat v\d+ is suspended \(paused for the test\); nothing was sent\n$/);
    const again = await Host.open({ path: path.join(fresh, '.quickvat') });
    again.resume(listed.instances[0].instanceId);
    await again.close();

    // Internals never show: an unknown method lists only the API.
    r = run(fresh, 'call', 'alice', 'nope');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^quickvat: alice\.nope: .*has no method "nope"; its methods: .*getBalance/);
    assert.doesNotMatch(r.stderr, /__/);
    fs.rmSync(fresh, { recursive: true, force: true });
  });

  it('prints its version, and errors as {"error"} on stderr with --json', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    for (const flag of ['--version', '-V']) {
      const r = run(dir, flag);
      assert.equal(r.code, 0);
      assert.equal(r.stdout.trim(), pkg.version);
    }
    for (const args of [['call', 'v99.publicFacet', 'x'], ['frobnicate'], ['install'], ['call', 'ko99999', 'x'], ['call', 'x', 'y', '--as', 'v3']]) {
      const r = run(dir, '--json', ...args);
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.stdout, '');
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      const { error } = JSON.parse(lines[0]);
      assert.equal(typeof error, 'string');
      assert.doesNotMatch(error, /^(error|quickvat):/);
    }
  });

  it('answers bad input with one clear line and a non-zero exit, leaving the state unchanged', async () => {
    fs.writeFileSync(path.join(dir, 'garbage.json'), '{"format":"quickvat-bundle-file-1","manifest":{}}');
    const before = await stateHash(dir);
    const cases: [string[], RegExp][] = [
      [['install', 'missing.json'], /^quickvat: missing\.json: no such file$/],
      [['install', 'garbage.json'], /^quickvat: bundle file garbage\.json: invalid manifest/],
      [['call', 'v99.publicFacet', 'x'], /^quickvat: unknown instance "v99"/],
      [['upgrade', 'v99', 'v2.json'], /^quickvat: unknown instance "v99"/],
      [['start', 'nothing-installed-by-this-name'], /^quickvat: unknown installation "nothing-installed-by-this-name"/],
      [['call', 'v2.publicFacet', 'transfer', '{not json'], /^quickvat: argument 1 is not JSON/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['install'], /missing required argument 'bundle'/],
    ];
    for (const [args, message] of cases) {
      const r = run(dir, ...args);
      assert.notEqual(r.code, 0, `${args.join(' ')} should fail`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
      assert.match(lines[0], message);
    }
    assert.equal(await stateHash(dir), before);
  });
});
