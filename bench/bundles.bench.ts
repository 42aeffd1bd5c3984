// Code as content-addressed data: what a second contract sharing libraries
// with the first costs to upload, and how long a ~700 kB bundle takes to install.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Sandbox } from '../host/engine/index.js';
import { bundleSource, Host, manifestToVatBundle } from '../host/index.js';
import { compare, fmtBytes } from './harness.js';

/** A deterministic library package of roughly `bytes` of real-looking code. */
function library(bytes: number): string {
  const parts: string[] = ['export const table = new Map();'];
  for (let i = 0; parts.join('\n').length < bytes; i++) {
    parts.push(`export function rule${i}(amount, rate = ${(i % 97) + 1}n) {
  // Fee rule ${i}: tiered, rounded half up, never negative.
  const tiers = [${[1, 2, 3, 4, 5].map((t) => `${t * (i + 1)}n`).join(', ')}];
  let fee = 0n;
  for (const t of tiers) fee += (amount > t ? t : amount) * rate / 10000n;
  table.set('rule${i}', fee);
  return fee < 0n ? 0n : fee;
}`);
  }
  return parts.join('\n');
}

function writeTree(tree: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-bench-bundles-'));
  for (const [rel, text] of Object.entries(tree)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}

export async function runBundlesBench(): Promise<void> {
  console.log('\n== bundles');
  const lib = library(820_000);
  const dir = writeTree({
    'package.json': JSON.stringify({ name: 'bench-contracts', version: '1.0.0', type: 'module' }),
    'node_modules/feerules/package.json': JSON.stringify({ name: 'feerules', version: '1.0.0', type: 'module', exports: { '.': './index.js' } }),
    'node_modules/feerules/index.js': lib,
    'lib/shared.js': `import { rule1, rule2 } from 'feerules';\nexport const fee = (a) => rule1(a) + rule2(a);\n`,
    'contracts/a.js': `import { Far } from '@endo/far';\nimport { fee } from '../lib/shared.js';\nexport function buildRootObject() { return Far('a', { fee }); }\n`,
    'contracts/b.js': `import { Far } from '@endo/far';\nimport { fee } from '../lib/shared.js';\nimport { rule7 } from 'feerules';\nexport function buildRootObject() { return Far('b', { fee: (x) => fee(x) + rule7(x), name: () => 'b' }); }\n`,
  });
  try {
    const a = await bundleSource(path.join(dir, 'contracts', 'a.js'));
    const b = await bundleSource(path.join(dir, 'contracts', 'b.js'));
    const host = await Host.open();
    host.bundles.put(a.pieces);
    const missing = host.bundles.missing(b.manifest);
    const size = (bundle: typeof b, hashes: Iterable<string>) => [...hashes].reduce((n, h) => n + bundle.pieces.get(h)!.length, 0);
    const full = size(b, b.pieces.keys());
    const sent = size(b, missing);
    console.log('second contract sharing its libraries with the first');
    console.log(`  full size ${fmtBytes(full)} in ${b.pieces.size} pieces; uploaded ${fmtBytes(sent)} in ${missing.length} piece(s) = ${((sent / full) * 100).toFixed(2)}% of it`);
    host.bundles.put(b.pieces);
    const cap = host.bundles.install(b.manifest);
    const vatBundle = manifestToVatBundle(b.manifest, (h) => b.pieces.get(h));
    console.log(`install of a ${fmtBytes(full)} bundle`);
    await compare(
      `install (zygote: evaluate the module graph in a vat, snapshot) vs evaluating the same code in a bare sandbox`,
      {
        name: 'bare sandbox: evaluate the same modules',
        fn: () => {
          const s = Sandbox.create();
          for (const m of Object.values(vatBundle.modules)) s.evaluate(`(function (require, module, exports) {${m.source}\n})`, { budget: 50_000_000_000n });
          s.dispose();
        },
      },
      { name: 'host.install(bundlecap)', fn: () => void host.install(cap, { label: 'b' }) },
    );
    await host.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
