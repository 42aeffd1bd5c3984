// Gaps a hostile review of issue 13 found in reviews and bundling
// (notes/break13): re-wired imports and entries, known bytes under another
// module name, JavaScript line terminators other than LF, terminal control
// characters, and node_modules paths reached by ../ from outside the root.
import assert from 'node:assert/strict';
import path from 'node:path';
import { BundleError, bundleSource, validateManifest, type Manifest } from '../../host/bundles/bundle-source.js';
import { sha256Hex } from '../../host/bundles/manifest.js';
import { diffLines, formatReviewText, renderReviewHtml, reviewBundle } from '../../host/review/index.js';
import { removeTrees, writeTree } from '../bundles/fixtures.js';

const enc = (s: string) => new TextEncoder().encode(s);

/** A hand-made bundle: module name -> [source, imports]. */
function bundle(entry: string, modules: Record<string, [string, Record<string, string>?]>): { manifest: Manifest; pieces: Map<string, Uint8Array> } {
  const pieces = new Map<string, Uint8Array>();
  const records: Record<string, { piece: string; imports: Record<string, string>; exits: string[]; size: number }> = {};
  for (const [name, [source, imports]] of Object.entries(modules)) {
    const bytes = enc(source);
    pieces.set(sha256Hex(bytes), bytes);
    records[name] = { piece: sha256Hex(bytes), imports: imports ?? {}, exits: [], size: bytes.length };
  }
  return { manifest: validateManifest({ format: 'quickvat-manifest-1', entry, modules: records, exits: [] }), pieces };
}

const FEE = '// the fee every trade pays\nexport const rate = 30n;\n';
const PROMO = '// launch-week promotion\nexport const rate = 0n;\n';
const MAIN = "import { rate } from './fee.js';\nexport const feeOn = (n) => (n * rate) / 10000n;\n";

describe('review gaps (issue 13, hostile review)', () => {
  after(removeTrees);

  it('shows an import re-wired between known modules as a change, in the review, text and HTML', () => {
    const v1 = bundle('main.js', { 'main.js': [MAIN, { './fee.js': 'fee.js' }], 'fee.js': [FEE], 'promo.js': [PROMO] });
    const v2 = bundle('main.js', { 'main.js': [MAIN, { './fee.js': 'promo.js' }], 'fee.js': [FEE], 'promo.js': [PROMO] });
    const review = reviewBundle(v2, { against: v1 });
    assert.deepEqual(review.modules.map((m) => [m.name, m.status]), [['main.js', 'changed'], ['fee.js', 'known'], ['promo.js', 'known']]);
    assert.deepEqual(review.modules[0].importChanges, [{ specifier: './fee.js', from: 'fee.js', to: 'promo.js' }]);
    assert.match(formatReviewText(review), /import "\.\/fee\.js": fee\.js -> promo\.js/);
    assert.match(renderReviewHtml(review), /<tr data-specifier="\.\/fee\.js"><td><code>\.\/fee\.js<\/code><\/td><td><code>fee\.js<\/code><\/td><td><code>promo\.js<\/code><\/td><\/tr>/);
  });

  it('shows a changed entry module name', () => {
    const v1 = bundle('main.js', { 'main.js': [MAIN, { './fee.js': 'fee.js' }], 'fee.js': [FEE], 'start.js': ['export const x = 1;\n'] });
    const v2 = bundle('start.js', { 'main.js': [MAIN, { './fee.js': 'fee.js' }], 'fee.js': [FEE], 'start.js': ['export const x = 1;\n'] });
    const review = reviewBundle(v2, { against: v1 });
    assert.deepEqual(review.entryChange, { from: 'main.js', to: 'start.js' });
    assert.match(formatReviewText(review), /^entry {3}start\.js \(CHANGED: was main\.js\)$/m);
    assert.match(renderReviewHtml(review), /id="entry-change"[^>]*>changed: was <code>main\.js<\/code>/);
  });

  it('treats known bytes under another module name (extension) as changed, naming the rename', () => {
    const LIB = 'export const allowed = (a, cap, f) => a < cap > (f);\n';
    const v1 = bundle('main.js', { 'main.js': ["import { allowed } from './lib.js';\n", { './lib.js': 'lib.js' }], 'lib.js': [LIB] });
    const v2 = bundle('main.js', { 'main.js': ["import { allowed } from './lib.js';\n", { './lib.js': 'lib.ts' }], 'lib.ts': [LIB] });
    const review = reviewBundle(v2, { against: v1 });
    const lib = review.modules.find((m) => m.name === 'lib.ts')!;
    assert.equal(lib.status, 'changed');
    assert.equal(lib.previous?.name, 'lib.js');
    assert.deepEqual(review.removed, []);
    assert.match(formatReviewText(review), /renamed: lib\.js -> lib\.ts \(same bytes; the name decides how they compile\)/);
  });

  it('splits lines wherever JavaScript does (U+2028, U+2029, CR), in diffs, text and HTML', () => {
    const OLD = 'let rate = 30n; // fee in basis points\n';
    const NEW = 'let rate = 30n; // fee in basis points (reworded)\u2028rate = 3000n; // see note\n';
    assert.deepEqual(
      diffLines(OLD, NEW).map((l) => l.op + l.text),
      ['-let rate = 30n; // fee in basis points', '+let rate = 30n; // fee in basis points (reworded)', '+rate = 3000n; // see note'],
    );
    assert.deepEqual(diffLines('a\rb\u2029c\r\nd\n', '').map((l) => l.text), ['a', 'b', 'c', 'd']);
    const v1 = bundle('m.js', { 'm.js': [OLD] });
    const v2 = bundle('m.js', { 'm.js': [NEW] });
    const text = formatReviewText(reviewBundle(v2, { against: v1 }));
    assert.match(text, /^\+rate = 3000n; \/\/ see note$/m);
    assert.doesNotMatch(text, /\u2028/);
    const html = renderReviewHtml(reviewBundle(v2));
    assert.match(html, /<span>rate = 3000n; \/\/ see note<\/span>/);
  });

  it('neutralises terminal control characters in the text review, and refuses them in module names', () => {
    const OLD = 'let rate = 30n; // fee\n';
    const NEW = 'let rate = 30n; rate = 3000n; // \x1b[2K\x1b[1G+let rate = 30n; // fee \u202e\x07\n';
    const text = formatReviewText(reviewBundle(bundle('m.js', { 'm.js': [NEW] }), { against: bundle('m.js', { 'm.js': [OLD] }) }));
    assert.doesNotMatch(text, /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]/);
    assert.match(text, /\/\/ \\x1b\[2K\\x1b\[1G\+let rate = 30n; \/\/ fee \\u202e\\x07$/m);
    const html = renderReviewHtml(reviewBundle(bundle('m.js', { 'm.js': [NEW] })));
    assert.doesNotMatch(html, /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]/);
    for (const name of ['rates.js\rknown ', 'a\x1b[2Kb.js', 'x\u2028y.js', 'evil\u202ej.sj']) {
      assert.throws(() => bundle(name, { [name]: ['export {};\n'] }), /invalid manifest: modules\[.*\] is a module name containing the control character U\+[0-9A-F]{4}; names must be printable/);
    }
    assert.throws(() => bundle('m.js', { 'm.js': ['export {};\n', { './a\x1b.js': 'm.js' }] }), /is a specifier containing the control character U\+001B/);
  });

  it("bundling refuses a ../ path into a node_modules directory outside the package root, and still packs packages", async () => {
    const dir = writeTree({
      'other/node_modules/creds/package.json': JSON.stringify({ name: 'creds', version: '1.0.0' }),
      'other/node_modules/creds/key.json': '{"apiKey":"TOP-SECRET"}',
      'proj/contract/package.json': JSON.stringify({ name: 'c', version: '1.0.0', type: 'module' }),
      'proj/contract/main.js': "import x from '../../other/node_modules/creds/key.json';\nexport const leaked = x;\n",
      'proj/contract/ok.js': "import { gcd } from 'mathlib';\nexport const g = gcd;\n",
      'proj/node_modules/mathlib/package.json': JSON.stringify({ name: 'mathlib', version: '4.1.0', type: 'module', exports: { '.': './index.js' } }),
      'proj/node_modules/mathlib/index.js': "export { gcd } from './gcd.js';\n",
      'proj/node_modules/mathlib/gcd.js': 'export const gcd = (a, b) => (b ? gcd(b, a % b) : a);\n',
    });
    await assert.rejects(bundleSource(path.join(dir, 'proj/contract/main.js')), (err: unknown) => {
      assert.ok(err instanceof BundleError, String(err));
      assert.match(err.message, /it imports "\.\.\/\.\.\/other\/node_modules\/creds\/key\.json" \(main\.js -> .*\), outside the package root/);
      return true;
    });
    // A package above the root (hoisted node_modules), reached by its name, and its own relative imports: packed.
    const ok = await bundleSource(path.join(dir, 'proj/contract/ok.js'));
    assert.deepEqual(Object.keys(ok.manifest.modules).sort(), ['mathlib@4.1.0/gcd.js', 'mathlib@4.1.0/index.js', 'ok.js']);
  });
});
