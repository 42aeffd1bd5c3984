import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleSource, type SourceBundle } from '../../host/bundles/bundle-source.js';
import { ModuleStore } from '../../host/bundles/module-store.js';
import { Store } from '../../host/store/index.js';
import { diffLines, formatReviewText, loadPetnames, renderReviewHtml, reviewBundle, unifiedDiff, type Review } from '../../host/review/index.js';
import { removeTrees, USES_EXIT, V1_V2, writeTree } from '../bundles/fixtures.js';
import { findChromium, renderedDom } from './chromium.js';

const V1 = 'contracts/demo/v1/';
const V2 = 'contracts/demo/v2/';

describe('review', function () {
  this.timeout(20_000);
  let v1: SourceBundle;
  let v2: SourceBundle;
  let review: Review;
  let mathPiece: string;

  before(async () => {
    const dir = writeTree(V1_V2);
    v1 = await bundleSource(path.join(dir, V1, 'contract.js'));
    v2 = await bundleSource(path.join(dir, V2, 'contract.js'));
    mathPiece = v2.manifest.modules[`${V2}math.js`].piece;
    review = reviewBundle(v2, { against: v1, petnames: { [mathPiece]: 'mathStuff v4 (audited)' } });
  });
  after(removeTrees);

  it('marks modules known, changed and novel for a v1 -> v2 pair, with petnames, removals and a diff', () => {
    const byName = Object.fromEntries(review.modules.map((m) => [m.name, m]));
    assert.deepEqual(
      review.modules.map((m) => [m.name, m.status]),
      [
        [`${V2}contract.js`, 'changed'],
        ['contracts/demo/lib/shared.js', 'known'],
        [`${V2}audit.js`, 'novel'],
        [`${V2}math.js`, 'known'],
      ],
    );
    assert.equal(review.bundleId, v2.bundleId);
    assert.deepEqual(review.against, { bundleId: v1.bundleId, entry: `${V1}contract.js` });
    assert.equal(byName[`${V2}math.js`].petname, 'mathStuff v4 (audited)', 'same bytes under a new path keep the voter\'s name');
    assert.equal(byName[`${V2}math.js`].hash, mathPiece);
    assert.equal(byName[`${V2}audit.js`].petname, undefined);
    assert.equal(byName[`${V2}contract.js`].entry, true);

    const entry = byName[`${V2}contract.js`];
    assert.equal(entry.previous?.name, `${V1}contract.js`);
    assert.equal(entry.previous?.hash, v1.manifest.modules[`${V1}contract.js`].piece);
    assert.match(entry.unifiedDiff!, new RegExp(`^--- a/${V1}contract\\.js\n\\+\\+\\+ b/${V2}contract\\.js\n@@ `));
    // The author's lines, as written.
    assert.match(entry.unifiedDiff!, /^-import \{ old \} from '\.\/legacy\.js';$/m);
    assert.match(entry.unifiedDiff!, /^\+import \{ audit \} from '\.\/audit\.js';$/m);
    assert.match(entry.unifiedDiff!, /^ import \{ add \} from '\.\/math\.js';$/m);

    assert.deepEqual(review.removed.map((m) => m.name), [`${V1}legacy.js`]);
    assert.deepEqual(review.summary, { known: 2, changed: 1, novel: 1, removed: 1 });

    // Without a running version to compare with, everything is novel.
    const alone = reviewBundle(v2);
    assert.deepEqual(new Set(alone.modules.map((m) => m.status)), new Set(['novel']));
    assert.equal(alone.against, undefined);
  });

  it('lists named exits as known or novel against the running version', async () => {
    const dir = writeTree(USES_EXIT);
    const withExits = await bundleSource(path.join(dir, 'contract.js'));
    const r = reviewBundle(withExits, { against: v1 });
    assert.deepEqual(
      r.exits.map((e) => [e.specifier, e.status, e.modules]),
      [
        ['host:parameters', 'novel', ['contract.js']],
        ['host:price-oracle', 'novel', ['fee.js']],
      ],
    );
    const back = reviewBundle(v1, { against: withExits });
    assert.deepEqual(back.removedExits, ['host:parameters', 'host:price-oracle']);
    assert.match(formatReviewText(r), /host:price-oracle {2}novel {2}\(used by fee\.js\)/);
  });

  it('reviews against pieces held in a module store, and refuses pieces that do not match their hash', async () => {
    const store = Store.open();
    try {
      const modules = new ModuleStore(store);
      modules.put(v1.pieces);
      const r = reviewBundle(v2, { against: { manifest: modules.manifest(modules.install(v1.manifest).bundleId), pieces: (h) => modules.getPiece(h) } });
      assert.deepEqual(r.summary, review.summary);
      assert.equal(r.modules[0].unifiedDiff, review.modules[0].unifiedDiff);
    } finally {
      await store.close();
    }
    const lying = new Map(v2.pieces);
    lying.set(mathPiece, new TextEncoder().encode('module.exports = {};\n'));
    assert.throws(() => reviewBundle({ manifest: v2.manifest, pieces: lying }), new RegExp(`module ${V2}math\\.js: piece ${mathPiece} does not match its bytes`));
  });

  it('formats a terminal listing with statuses, sizes, hashes, petnames and diffs', () => {
    const text = formatReviewText(review);
    assert.match(text, new RegExp(`^bundle  ${v2.bundleId}$`, 'm'));
    assert.match(text, /^4 modules: 1 novel, 1 changed, 2 known, 1 removed$/m);
    assert.match(text, new RegExp(`^known +\\d+ +${mathPiece.slice(0, 12)} +${V2}math\\.js +mathStuff v4 \\(audited\\)$`, 'm'));
    assert.match(text, new RegExp(`^changed +\\d+ +\\w{12} +${V2}contract\\.js \\(entry\\) +was ${V1}contract\\.js$`, 'm'));
    assert.match(text, new RegExp(`^novel +\\d+ +\\w{12} +${V2}audit\\.js$`, 'm'));
    assert.match(text, /^removed modules:\n {2}\w{12} {2}contracts\/demo\/v1\/legacy\.js$/m);
    assert.match(text, /^\+import \{ audit \} from '\.\/audit\.js';$/m);
    assert.match(text, /^\+\/\/ Raise the cap to 1000 \(proposal 7\); every result is audited\.$/m, 'the author\'s comment line');
    assert.match(formatReviewText(review, { fullHashes: true }), new RegExp(mathPiece));
    assert.doesNotMatch(formatReviewText(review, { diffs: false }), /^\+import/m);
  });

  it('renders a self-contained HTML page that escapes source text', () => {
    const html = renderReviewHtml(review);
    assert.match(html, /^<!doctype html>/);
    assert.doesNotMatch(html, /<script/i, 'the hostile string in v2 stays text');
    assert.match(html, /&lt;script&gt;alert\(&quot;pwned&quot;\)/);
    assert.doesNotMatch(html, /\b(?:src|href)=["'](?!#)/i, 'no external resources');
    assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
    assert.equal(html.match(/<tr class="module /g)?.length, 4);
    assert.match(html, new RegExp(`data-status="known" data-module="${V2}math\\.js" data-hash="${mathPiece}"`));
    assert.match(html, /<td class="petname">mathStuff v4 \(audited\)<\/td>/);
    assert.match(html, /<span class="del">-import \{ old \} from &#39;\.\/legacy\.js&#39;;/);
    assert.match(html, /<span class="add">\+import \{ audit \} from &#39;\.\/audit\.js&#39;;/);
    assert.match(html, /<span class="add">\+\/\/ Raise the cap to 1000 \(proposal 7\); every result is audited\.<\/span>/);

    const evil = renderReviewHtml({ ...review, entry: '"><img src=x onerror=alert(1)>', modules: review.modules.map((m) => ({ ...m, petname: '<b>& "me"</b>' })) });
    assert.doesNotMatch(evil, /<img|<b>/);
    assert.match(evil, /&lt;b&gt;&amp; &quot;me&quot;&lt;\/b&gt;/);
  });

  it('loads petnames files and rejects malformed ones clearly', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quickvat-petnames-'));
    try {
      const file = (name: string, text: string) => {
        const p = path.join(dir, name);
        fs.writeFileSync(p, text);
        return p;
      };
      const good = file('good.json', JSON.stringify({ [mathPiece.toUpperCase()]: 'mathStuff v4 (audited)' }));
      assert.deepEqual(loadPetnames(good), { [mathPiece]: 'mathStuff v4 (audited)' });
      assert.throws(() => loadPetnames(path.join(dir, 'absent.json')), /cannot read petnames file .*absent\.json: ENOENT/);
      assert.throws(() => loadPetnames(file('bad.json', '{ "a": ')), /petnames file .*bad\.json is not valid JSON/);
      assert.throws(() => loadPetnames(file('array.json', '[]')), /bad|array\.json must be a JSON object mapping piece hashes to names, got an array/);
      assert.throws(() => loadPetnames(file('key.json', '{"abc": "x"}')), /key\.json: key "abc" is not a piece hash/);
      assert.throws(() => loadPetnames(file('name.json', JSON.stringify({ [mathPiece]: 3 }))), new RegExp(`name\\.json: the name for ${mathPiece} must be a non-empty string, got 3`));
      assert.throws(
        () => loadPetnames(file('twice.json', JSON.stringify({ [mathPiece]: 'a', [mathPiece.toUpperCase()]: 'b' }))),
        /hash .* is named twice/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('diffs lines minimally', () => {
    assert.equal(unifiedDiff('a\nb\nc\n', 'a\nb\nc\n', 'x', 'y'), '');
    assert.equal(unifiedDiff('a\nb\nc\n', 'a\nB\nc\nd\n', 'old', 'new'), '--- old\n+++ new\n@@ -1,3 +1,4 @@\n a\n-b\n+B\n c\n+d\n');
    assert.equal(unifiedDiff('', 'x\n', 'old', 'new'), '--- old\n+++ new\n@@ -0,0 +1,1 @@\n+x\n');
    const many = Array.from({ length: 40 }, (_, i) => `line ${i}`);
    const edited = [...many];
    edited[5] = 'five';
    edited.splice(30, 1);
    assert.equal(
      unifiedDiff(many.join('\n'), edited.join('\n'), 'a', 'b'),
      '--- a\n+++ b\n@@ -3,7 +3,7 @@\n line 2\n line 3\n line 4\n-line 5\n+five\n line 6\n line 7\n line 8\n@@ -28,7 +28,6 @@\n line 27\n line 28\n line 29\n-line 30\n line 31\n line 32\n line 33\n',
    );
    const lcs = diffLines('x\na\nb\nc\ny\n', 'a\nq\nb\nc\n');
    assert.deepEqual(lcs.map((l) => l.op + l.text), ['-x', ' a', '+q', ' b', ' c', '-y']);
  });
});

describe('review: the HTML page in a headless browser', function () {
  this.timeout(30_000);
  after(removeTrees);

  it('shows every module row with its status and the diff', async function () {
    const chromium = findChromium();
    if (!chromium) {
      console.log('      (skipped: no chromium on PATH; install it with `apt-get install -y chromium` to run this test)');
      this.skip();
    }
    const dir = writeTree(V1_V2);
    const v1 = await bundleSource(path.join(dir, V1, 'contract.js'));
    const v2 = await bundleSource(path.join(dir, V2, 'contract.js'));
    const page = path.join(dir, 'review.html');
    fs.writeFileSync(page, renderReviewHtml(reviewBundle(v2, { against: v1 })));
    const dom = renderedDom(chromium!, page);
    const rows = [...dom.matchAll(/<tr class="module status-(\w+)" data-status="\w+" data-module="([^"]+)"/g)].map((m) => [m[2], m[1]]);
    assert.deepEqual(rows, [
      [`${V2}contract.js`, 'changed'],
      ['contracts/demo/lib/shared.js', 'known'],
      [`${V2}audit.js`, 'novel'],
      [`${V2}math.js`, 'known'],
    ]);
    assert.match(dom, /<section class="change" id="diff-0"/);
    assert.match(dom, /<span class="add">\+import \{ audit \} from '\.\/audit\.js';/);
    assert.doesNotMatch(dom, /<script/i, 'the browser parsed no script element out of the source text');
    assert.match(dom, /&lt;script&gt;alert\("pwned"\)/);
  });
});
