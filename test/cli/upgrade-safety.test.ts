// The CLI's upgrade-safety commands (issue 13): upgrade runs pre-flight first
// and refuses on problems (exit 3) unless --force; re-upgrading to the running
// bundle needs --restart; shadow --dry-run leaves the live state untouched;
// --json prints valid JSON only; exit codes 0 ok, 1 error, 3 problems found.
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

function run(cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The whole committed state, or only the part under `prefix`. */
async function stateHash(dir: string, prefix?: string): Promise<string> {
  const host = await Host.open({ path: path.join(dir, '.quickvat') });
  try {
    return prefix === undefined ? host.stateHash() : host.store.stateHash(prefix);
  } finally {
    await host.close();
  }
}

describe('quickvat CLI: upgrade safety (issue 13)', function () {
  this.timeout(120_000);
  let dir: string;
  let instanceId: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-cli-safety-'));
    // A v2 that adds a field without migrate, next to the real ones.
    const v1 = fs.readFileSync(exampleContractPath('ledger', 'v1'), 'utf8');
    fs.mkdirSync(path.join(dir, 'bad'));
    fs.writeFileSync(path.join(dir, 'bad', 'package.json'), '{"type":"module"}');
    fs.writeFileSync(path.join(dir, 'bad', 'contract.js'), v1.replace('(name) => ({ name, balance: 0n })', '(name) => ({ name, balance: 0n, frozen: false })'));
    for (const [v, file] of [['v1', exampleContractPath('ledger', 'v1')], ['v2', exampleContractPath('ledger', 'v2')], ['bad', path.join(dir, 'bad', 'contract.js')]]) {
      const r = run(dir, 'bundle', file, '-o', `${v}.json`);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal(run(dir, 'install', 'v1.json', '--label', 'ledger').code, 0);
    instanceId = JSON.parse(run(dir, '--json', 'start', 'ledger').stdout).instanceId;
    assert.equal(run(dir, 'call', `${instanceId}.publicFacet`, 'openAccount', 'alice').code, 0);
    assert.equal(run(dir, 'call', `${instanceId}.creatorFacet`, 'mint', 'alice', '"100n"').code, 0);
    fs.writeFileSync(path.join(dir, 'same.json'), JSON.stringify([['publicFacet', 'openAccount', 'bob'], ['creatorFacet', 'mint', 'bob', '10n'], ['publicFacet', 'balanceOf', 'bob']]));
    fs.writeFileSync(path.join(dir, 'differ.json'), JSON.stringify([['publicFacet', 'balanceOf', 'alice'], ['publicFacet', 'getInfo']]));
  });

  it('shadow --dry-run compares answers on two forks and changes nothing live; --json is JSON only; exit 3 when answers differ', async () => {
    // Uploading is not upgrading: upload v2 once, then measure.
    assert.equal(run(dir, 'shadow', instanceId, 'v2.json', '--calls', 'same.json', '--dry-run').code, 0);
    const before = await stateHash(dir);
    let r = run(dir, 'shadow', instanceId, 'v2.json', '--calls', 'same.json', '--dry-run');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.split('\n')[0], /^dry run: 3 calls go to two forks of v\d+ \(current and proposed version\); nothing live changes$/);
    assert.match(r.stdout, /3 publicFacet\.balanceOf\("bob"\) -> 10n/);
    assert.match(r.stdout, /3 deliveries, 0 differed/);

    r = run(dir, '--json', 'shadow', instanceId, 'v2.json', '--calls', 'differ.json', '--dry-run');
    assert.equal(r.code, 3, 'answers differ and nothing was promoted');
    const report = JSON.parse(r.stdout);
    assert.equal(report.dryRun, true);
    assert.equal(report.deliveries, 2);
    assert.equal(report.differed, 1);
    assert.deepEqual(report.answers.map((a: { method: string; same: boolean }) => [a.method, a.same]), [['balanceOf', true], ['getInfo', false]]);
    assert.equal(report.answers[0].current, '100n');

    r = run(dir, 'shadow', instanceId, 'v2.json', '--calls', 'differ.json', '--dry-run', '--promote');
    assert.equal(r.code, 3);
    assert.match(r.stdout, /DIFFERS getInfo\(\): current .*"version":"v1".*, proposed .*"version":"v2"/);
    assert.match(r.stdout, /2 deliveries, 1 differed; not promoted/);
    // v2 was uploaded before `before` (by the first run): nothing at all changed since.
    assert.equal(await stateHash(dir), before, 'the live state hash is unchanged');
  });

  it('shadow without --dry-run says first that the calls go to the live instance; under --json the warning goes to stderr', () => {
    let r = run(dir, 'shadow', instanceId, 'v2.json', '--calls', 'same.json');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.split('\n')[0], /^live: 3 calls go to the live instance v\d+ and change its state .*--dry-run/);
    r = run(dir, '--json', 'shadow', instanceId, 'v2.json', '--calls', 'differ.json');
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /^live: 2 calls go to the live instance/);
    const report = JSON.parse(r.stdout);
    assert.equal(report.dryRun, false);
    assert.equal(report.differences.length, 1);
    assert.equal(report.promoted, null);
  });

  it('upgrade runs pre-flight first: refuses on problems (exit 3, nothing changed) unless --force; the running bundle needs --restart', async () => {
    const instance = `k.vs.${instanceId}.`;
    const before = [await stateHash(dir, instance), await stateHash(dir, 'h.')];
    let r = run(dir, 'upgrade', instanceId, 'bad.json');
    assert.equal(r.code, 3, r.stderr + r.stdout);
    assert.match(r.stdout, /refused: pre-flight found problems \(nothing changed; --force to enact it anyway\)/);
    assert.match(r.stdout, /record-shape-changed: durable kind "Account": .*field frozen would be missing from old records/);
    r = run(dir, '--json', 'upgrade', instanceId, 'bad.json');
    assert.equal(r.code, 3);
    const refused = JSON.parse(r.stdout);
    assert.equal(refused.upgraded, false);
    assert.deepEqual(refused.problems.map((p: { code: string }) => p.code), ['record-shape-changed']);
    assert.deepEqual([await stateHash(dir, instance), await stateHash(dir, 'h.')], before, 'a refused upgrade changes nothing');

    r = run(dir, '--json', 'upgrade', instanceId, 'bad.json', '--force');
    assert.equal(r.code, 0, r.stderr);
    const forced = JSON.parse(r.stdout);
    assert.equal(forced.incarnation, 2);
    assert.deepEqual(forced.overriddenProblems.map((p: { code: string }) => p.code), ['record-shape-changed']);

    r = run(dir, 'upgrade', instanceId, 'bad.json');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already runs bundle [0-9a-f]{64}; nothing to upgrade \(pass restart: true/);
    // A restart is an upgrade too: pre-flight still sees old records lacking the field the forced version makes.
    r = run(dir, 'upgrade', instanceId, 'bad.json', '--restart');
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /record-shape-changed/);
    r = run(dir, 'upgrade', instanceId, 'bad.json', '--restart', '--force');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /upgraded v\d+ to incarnation 3/);
  });
});
