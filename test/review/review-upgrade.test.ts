// A review against a running instance (issue 13): what voters see besides the
// code, checked in the rendered page of a headless browser: the legend, the
// instance with its incarnation and bundle, the upgrade summary from both
// versions loaded in trial vats, pre-flight's results, and new modules'
// source without a click.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatReviewText, Host, renderReviewHtml, reviewBundle, sourceBundleFromText, type InstanceKit } from '../../host/index.js';
import { SHOP_FIELD_ADDED, SHOP_GOOD, SHOP_V1 } from '../fixtures/shop-contracts.js';
import { findChromium, renderedDom, visibleText } from './chromium.js';

// The good v2 with a comment line and a very long line, to be seen as written.
const V2 = `// Shop v2: items carry a note (proposal 12).\n${SHOP_GOOD}\nexport const LONG_LINE = '${'wrap-me '.repeat(60)}';\n`;

describe('review against a running instance (issue 13)', function () {
  this.timeout(60_000);
  let host: Host;
  let kit: InstanceKit & { publicFacet: object };
  before(async () => {
    host = await Host.open();
    kit = host.startInstance(host.install(SHOP_V1, { label: 'shop' })) as typeof kit;
    await host.E(kit.publicFacet).addItems(['apple', 'pear']);
  });
  after(async () => {
    await host.close();
  });

  const reviewOf = async (source: string) => {
    const proposed = sourceBundleFromText(source, 'v2.js');
    const runningId = host.runningBundleOf(kit.instanceId)!;
    const before = host.stateHash();
    const upgrade = await host.reviewContext(kit.instanceId, proposed);
    assert.equal(host.stateHash(), before, 'reviewing changes nothing');
    return reviewBundle(proposed, { against: { manifest: host.bundles.manifest(runningId)!, pieces: (h) => host.bundles.getPiece(h) }, upgrade });
  };

  it('names the instance, summarizes the upgrade from trial vats and shows pre-flight, in text', async () => {
    const review = await reviewOf(V2);
    assert.deepEqual(review.upgrade!.instance, { id: kit.instanceId, incarnation: 1, bundleId: host.runningBundleOf(kit.instanceId) });
    const item = review.upgrade!.summary!.kinds.find((k) => k.tag === 'Item')!;
    assert.deepEqual([item.status, item.stateVersion, item.methodsAdded, item.methodsRemoved], ['kept', { from: 1, to: 2 }, ['note'], []]);
    assert.equal(review.upgrade!.preflight!.ok, true);
    const text = formatReviewText(review);
    assert.match(text, new RegExp(`^against instance ${kit.instanceId}, incarnation 1, running bundle [0-9a-f]{64}$`, 'm'));
    assert.match(text, /^ {2}kind Item {2}kept {2}stateVersion 1 -> 2; methods \+note$/m);
    assert.match(text, /^ {2}named exits: none -> none$/m);
    assert.match(text, /^pre-flight: no problems$/m);
    assert.match(text, /^\+\/\/ Shop v2: items carry a note \(proposal 12\)\.$/m, 'the author\'s comment, as written');

    const bad = formatReviewText(await reviewOf(SHOP_FIELD_ADDED));
    assert.match(bad, /^pre-flight: 1 problem$/m);
    assert.match(bad, /^ {2}record-shape-changed: durable kind "Item"/m);
  });

  it('renders a page a voter can use: legend, instance, upgrade summary, pre-flight, new source visible, long lines wrapped', async function () {
    const chromium = findChromium();
    if (!chromium) {
      console.log('      (skipped: no chromium on PATH; install it with `apt-get install -y chromium` to run this test)');
      this.skip();
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-review-'));
    try {
      const good = path.join(dir, 'good.html');
      fs.writeFileSync(good, renderReviewHtml(await reviewOf(V2)));
      const shown = visibleText(renderedDom(chromium!, good));
      for (const expected of [
        'novel code the running version does not have',
        'changed replaces a module of the running version',
        'known the very bytes (same sha256) the running version already runs',
        'removed in the running version, gone from this one',
        `against instance ${kit.instanceId} , incarnation 1, running bundle ${host.runningBundleOf(kit.instanceId)}`,
        'Upgrade summary',
        'Item kept 1 → 2 +note',
        'Shop kept 0',
        'named exits: none → none',
        'Pre-flight no problems: the upgrade would be enacted',
        '+// Shop v2: items carry a note (proposal 12).',
      ]) {
        assert.ok(shown.includes(expected), `the rendered page shows ${JSON.stringify(expected)}`);
      }
      const css = fs.readFileSync(good, 'utf8');
      assert.match(css, /pre span \{[^}]*white-space: pre-wrap; overflow-wrap: anywhere;/, 'long lines wrap');

      const bad = path.join(dir, 'bad.html');
      fs.writeFileSync(bad, renderReviewHtml(await reviewOf(SHOP_FIELD_ADDED)));
      const badShown = visibleText(renderedDom(chromium!, bad));
      assert.ok(badShown.includes('1 problem: the upgrade would be refused unless forced'), badShown.slice(0, 2000));
      assert.ok(badShown.includes('record-shape-changed durable kind "Item": existing records have fields {label, qty}'), 'the problem in the page');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('shows a new module\'s source in full without a click', async function () {
    const chromium = findChromium();
    if (!chromium) this.skip();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qv-review-'));
    try {
      // Against nothing, the module is novel: its source is a section of the page, not a collapsed <details>.
      const page = path.join(dir, 'novel.html');
      fs.writeFileSync(page, renderReviewHtml(reviewBundle(sourceBundleFromText(V2, 'v2.js'))));
      const dom = renderedDom(chromium!, page);
      assert.doesNotMatch(dom, /<details/);
      assert.ok(visibleText(dom).includes("// Shop v2: items carry a note (proposal 12)."));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
