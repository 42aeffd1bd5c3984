// The README runs as written (issue 14): its tour's fenced blocks, extracted
// in order, run as one bash script in a fresh directory where quickvat is
// installed as a dependent would have it (node_modules/quickvat and its bin).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The tour's blocks as one script: sh blocks as they are, a js block whose first line is `// <file>` written to that file. */
export function tourScript(readme: string): string {
  const start = readme.indexOf('## A five-minute tour');
  assert.ok(start >= 0, 'the README has a tour');
  const next = readme.indexOf('\n## ', start + 1);
  const tour = readme.slice(start, next < 0 ? undefined : next);
  const parts: string[] = [];
  for (const [, lang, body] of tour.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)) {
    if (lang === 'sh') parts.push(body);
    else if (lang === 'js' || lang === 'mjs') {
      const file = /^\/\/ ([\w.-]+\.m?js)\n/.exec(body)?.[1];
      assert.ok(file, `a js block in the tour names its file on its first line: ${body.slice(0, 60)}`);
      parts.push(`cat > ${file} <<'QUICKVAT_README_EOF'\n${body}QUICKVAT_README_EOF\n`);
    } else assert.fail(`a \`\`\`${lang} block in the tour: only sh and js blocks are run`);
  }
  return parts.join('');
}

describe('README', function () {
  this.timeout(240_000);

  it('has exactly two set-up commands: one runs the demo, one the tests', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const setup = /## Set up and run\n+```sh\n([\s\S]*?)```/.exec(readme)?.[1].trim().split('\n') ?? [];
    assert.equal(setup.length, 2);
    assert.match(setup[0], /^npm install && npm run demo\b/);
    assert.match(setup[1], /^npm install && npm test\b/);
  });

  it('runs its tour as written on a fresh directory', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-readme-'));
    try {
      // What `npm install <this clone>` makes, without the network.
      fs.mkdirSync(path.join(dir, 'node_modules', '.bin'), { recursive: true });
      fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'quickvat'), 'dir');
      fs.symlinkSync(path.join('..', 'quickvat', 'dist', 'host', 'cli', 'main.js'), path.join(dir, 'node_modules', '.bin', 'quickvat'));
      const script = tourScript(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
      fs.writeFileSync(path.join(dir, 'tour.sh'), script);
      // Offline: npx must find the local bin, never fetch a package.
      const r = spawnSync('bash', ['-euo', 'pipefail', 'tour.sh'], {
        cwd: dir,
        encoding: 'utf8',
        env: { ...process.env, npm_config_offline: 'true', npm_config_update_notifier: 'false' },
      });
      assert.equal(r.status, 0, `the tour failed:\n${r.stdout}\n${r.stderr}`);
      const lines = r.stdout.split('\n');
      assert.equal(lines[0], '6n');
      assert.match(lines[1], /^ko\d+ 16n$/);
      assert.match(r.stdout, /^ko\d+ \(Alleged: Counter\)\nsaved as a$/m);
      assert.match(r.stdout, /instances:\n\s+v\d+\s+tally\s+inc 1/);
      assert.match(r.stdout, /pre-flight: no problems/);
      assert.match(r.stdout, /2 deliveries, 0 differed; promoted: v\d+ is at incarnation 2/);
      assert.match(r.stdout, /^0n$/m);
      assert.match(r.stdout, /\d+ images verified/);
      assert.ok(fs.existsSync(path.join(dir, 'tour', '.quickvat', 'names.json')));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
