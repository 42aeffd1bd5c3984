// Labels that could be mistaken for ids or refs, and contract text that could
// forge output lines or drive the terminal (found by a hostile review of
// issue #14).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CLI = path.join(ROOT, 'dist', 'host', 'cli', 'main.js');
const run = (cwd: string, ...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

const ODD = `import { Far } from '@endo/far';
export function buildRootObject() {
  return Far('Counter)\\nsaved as alice\\u001b[2K', {
    boom() { throw Error('first line\\nquickvat: all good\\u001b]0;owned\\u0007'); },
    self() { return this; },
  });
}`;

describe('quickvat CLI: labels and contract text', function () {
  this.timeout(120_000);

  it('refuses labels that read as ids or refs, or are taken; derives valid labels from file names', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-cli-labels-'));
    fs.writeFileSync(path.join(dir, 'v1.js'), ODD);
    for (const bad of ['v3', 'ko1', 'odd.publicFacet', '', 'a b']) {
      const r = run(dir, 'install', 'v1.js', '--label', bad);
      assert.equal(r.code, 1, bad);
      assert.match(r.stderr, /a label is a letter then letters, digits, _ or -/);
    }
    let r = run(dir, '--json', 'install', 'v1.js');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).label, 'contract-v1', 'a file named like an id does not give an id-like label');
    r = run(dir, 'install', 'v1.js', '--label', 'contract-v1');
    assert.match(r.stderr, /installation label "contract-v1" is already used by v1; pass another --label/);
    assert.equal(run(dir, 'start', 'contract-v1', '--label', 'odd').code, 0);
    r = run(dir, 'start', 'contract-v1', '--label', 'odd');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /label "odd" already names instance v2; pass another --label/);

    // What the contract says is shown, not obeyed.
    r = run(dir, 'call', 'odd.root', 'self');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.split('\n').filter(Boolean).length, 1, JSON.stringify(r.stdout));
    assert.doesNotMatch(r.stdout, /\u001b/);
    r = run(dir, 'call', 'odd.root', 'boom');
    assert.equal(r.code, 1);
    assert.equal(r.stderr.split('\n').filter(Boolean).length, 1, JSON.stringify(r.stderr));
    assert.doesNotMatch(r.stderr, /[\u0007\u001b]/);
    r = run(dir, '--json', 'call', 'odd.root', 'boom');
    assert.match(JSON.parse(r.stderr).error, /first line\nquickvat: all good/, '--json keeps the whole message');
  });
});
