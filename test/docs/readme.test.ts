// The README runs as written (issue 14): its tour's fenced blocks, extracted
// in order, run as one bash script in a fresh directory where quickvat is
// installed as a dependent would have it (node_modules/quickvat and its bin).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { exampleContractPath } from '../../host/example-contracts.js';

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

describe('CLI reference (docs/cli.md)', function () {
  this.timeout(120_000);

  it('documents files the CLI accepts: its --exits, --calls and --petnames examples work as given', () => {
    const doc = fs.readFileSync(path.join(ROOT, 'docs', 'cli.md'), 'utf8');
    const example = (option: string) => {
      const m = new RegExp(`\\*\\*\`${option} FILE\`\\*\\*[\\s\\S]*?\`\`\`json\\n([\\s\\S]*?)\`\`\``).exec(doc);
      assert.ok(m, `docs/cli.md has an example for ${option}`);
      return m[1];
    };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-cli-doc-'));
    const cli = (...args: string[]) => {
      const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'host', 'cli', 'main.js'), ...args], { cwd: dir, encoding: 'utf8' });
      assert.equal(r.status, 0, `quickvat ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };
    try {
      fs.writeFileSync(path.join(dir, 'exits.json'), example('--exits'));
      fs.writeFileSync(path.join(dir, 'calls.json'), example('--calls'));
      fs.writeFileSync(path.join(dir, 'petnames.json'), example('--petnames'));
      // A contract importing every exit the example grants.
      fs.writeFileSync(
        path.join(dir, 'exits.js'),
        `import { feeBasisPoints } from 'host:parameters';
         import { gcd } from 'host:math';
         import console from 'host:console';
         export const defineInstallationKinds = () => () => () => ({});
         export const check = () => { console.log(String(gcd(12n, 8n) + feeBasisPoints)); };`,
      );
      assert.match(cli('install', 'exits.js', '--exits', 'exits.json'), /^installed exits as v\d+/);
      cli('bundle', exampleContractPath('ledger', 'v1'), '-o', 'ledger.json');
      cli('install', 'ledger.json', '--label', 'ledger');
      cli('start', 'ledger');
      assert.match(cli('shadow', 'ledger', 'ledger.json', '--calls', 'calls.json'), /3 publicFacet\.balanceOf\("bob"\) -> 10n\n3 deliveries, 0 differed; shadow dropped/);
      // The example's hash is a placeholder: the same file, keyed by a real piece's hash.
      fs.writeFileSync(path.join(dir, 'named.js'), 'export const x = 1;\n');
      cli('bundle', 'named.js', '-o', 'named.json');
      const [hash] = Object.keys((JSON.parse(fs.readFileSync(path.join(dir, 'named.json'), 'utf8')) as { pieces: Record<string, string> }).pieces);
      const [[placeholder, name]] = Object.entries(JSON.parse(example('--petnames')) as Record<string, string>);
      fs.writeFileSync(path.join(dir, 'petnames.json'), example('--petnames').replace(placeholder, hash));
      assert.match(cli('review', 'named.json', '--petnames', 'petnames.json'), new RegExp(`named\\.js \\(entry\\)\\s+${name.replace(/[()]/g, '\\$&')}`));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
