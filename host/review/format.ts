// A review as a terminal listing and as a self-contained HTML page.
import { diffHunks, hunkHeader, splitLines } from './diff.js';
import type { Review, ReviewModule } from './review.js';
import type { KindChange, UpgradeSummary } from './upgrade-summary.js';

/** What each status means, in the words the page and the listing use. */
export const STATUS_LEGEND: readonly (readonly [string, string])[] = [
  ['novel', 'code the running version does not have: read it in full'],
  ['changed', 'replaces a module of the running version: read the diff'],
  ['known', 'the very bytes (same sha256) the running version already runs'],
  ['removed', 'in the running version, gone from this one'],
];

// Characters that must never reach a reader raw: C0/C1 controls (ANSI escape
// sequences, CR redrawing a line, backspace), DEL, line terminators left
// inside a single line (U+0085, U+2028, U+2029), zero-width and bidi
// controls (which reorder what a reader sees). Tab and LF are layout.
const UNPRINTABLE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

/** `text` with every control character shown as an escape (\x1b, \u202e): what a contract wrote can never drive the reader's terminal or reorder the text. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

function againstLine(review: Review): string {
  const u = review.upgrade;
  if (u) return `instance ${u.instance.id}, incarnation ${u.instance.incarnation}, running bundle ${u.instance.bundleId}`;
  if (review.against) return `${review.against.bundleId} (entry ${review.against.entry})`;
  return 'nothing: every module is novel';
}

function versionChange(k: KindChange): string {
  const { from, to } = k.stateVersion;
  if (from === undefined) return `stateVersion ${to}`;
  if (to === undefined) return `stateVersion ${from}`;
  return from === to ? `stateVersion ${from}` : `stateVersion ${from} -> ${to}${to < from ? ' (LOWERED)' : ''}`;
}

function kindLine(k: KindChange): string {
  const parts = [versionChange(k)];
  if (k.facetsAdded.length) parts.push(`facets +${k.facetsAdded.join(', +')}`);
  if (k.facetsRemoved.length) parts.push(`facets -${k.facetsRemoved.join(', -')}`);
  if (k.methodsAdded.length) parts.push(`methods +${k.methodsAdded.join(', +')}`);
  if (k.methodsRemoved.length) parts.push(`methods -${k.methodsRemoved.join(', -')}`);
  return parts.join('; ');
}

const exitList = (exits: readonly string[]) => (exits.length ? exits.join(', ') : 'none');

function summaryText(s: UpgradeSummary): string[] {
  const out = ['upgrade summary (both versions loaded in trial vats):'];
  if (s.kinds.length === 0) out.push('  no durable kinds');
  for (const k of s.kinds) out.push(`  kind ${k.tag}  ${k.status}  ${kindLine(k)}`);
  out.push(`  named exits: ${exitList(s.exits.from)} -> ${exitList(s.exits.to)}`);
  return out;
}

export interface TextFormatOptions {
  /** print whole hashes instead of their first 12 digits */
  readonly fullHashes?: boolean;
  /** append unified diffs of changed modules (default true) */
  readonly diffs?: boolean;
}

function short(hash: string, full: boolean | undefined): string {
  return full ? hash : hash.slice(0, 12);
}

function pad(text: string, width: number, right = false): string {
  return right ? text.padStart(width) : text.padEnd(width);
}

function summaryLine(review: Review): string {
  const s = review.summary;
  const parts = [`${s.novel} novel`, `${s.changed} changed`, `${s.known} known`];
  if (review.against) parts.push(`${s.removed} removed`);
  return `${review.modules.length} module${review.modules.length === 1 ? '' : 's'}: ${parts.join(', ')}`;
}

export function formatReviewText(review: Review, options: TextFormatOptions = {}): string {
  const full = options.fullHashes;
  const out: string[] = [];
  out.push(`bundle  ${review.bundleId}`);
  out.push(`entry   ${review.entry}${review.entryChange ? ` (CHANGED: was ${review.entryChange.from})` : ''}`);
  out.push(`against ${againstLine(review)}`);
  out.push(summaryLine(review), '');
  if (review.upgrade?.summary) out.push(...summaryText(review.upgrade.summary), '');
  if (review.upgrade?.preflight) {
    const p = review.upgrade.preflight;
    out.push(p.ok ? 'pre-flight: no problems' : `pre-flight: ${p.problems.length} problem${p.problems.length === 1 ? '' : 's'}`);
    for (const problem of p.problems) out.push(`  ${problem.code}: ${problem.message}`);
    for (const w of p.warnings ?? []) out.push(`  warning ${w.code}: ${w.message}`);
    out.push('');
  }

  const rows = review.modules.map((m) => [
    m.status,
    String(m.size),
    short(m.hash, full),
    m.entry ? `${m.name} (entry)` : m.name,
    [m.petname ?? '', m.previous && m.previous.name !== m.name ? `was ${m.previous.name}` : ''].filter(Boolean).join('; '),
  ]);
  const header = ['STATUS', 'SIZE', 'HASH', 'MODULE', 'PETNAME / NOTE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => pad(c, widths[i], i === 1))
      .join('  ')
      .trimEnd();
  out.push(line(header), ...rows.map(line));

  out.push('', 'named exits:');
  if (review.exits.length === 0) out.push('  none');
  for (const exit of review.exits) out.push(`  ${exit.specifier}  ${review.against ? exit.status : 'novel'}  (used by ${exit.modules.join(', ')})`);
  for (const exit of review.removedExits) out.push(`  ${exit}  no longer used`);

  if (review.removed.length > 0) {
    out.push('', 'removed modules:');
    for (const m of review.removed) out.push(`  ${short(m.hash, full)}  ${m.name}${m.petname ? `  (${m.petname})` : ''}`);
  }

  if (options.diffs !== false) {
    for (const m of review.modules) {
      if (m.status !== 'changed') continue;
      out.push('', `changed ${m.previous!.name} ${short(m.previous!.hash, full)} -> ${m.name} ${short(m.hash, full)}`);
      if (m.previous!.name !== m.name) out.push(`  renamed: ${m.previous!.name} -> ${m.name}${m.previous!.hash === m.hash ? ' (same bytes; the name decides how they compile)' : ''}`);
      for (const c of m.importChanges ?? []) out.push(`  import ${JSON.stringify(c.specifier)}: ${c.from ?? '(none)'} -> ${c.to ?? '(none)'}`);
      out.push(m.unifiedDiff === undefined ? '  (no diff: a piece was not available)' : m.unifiedDiff.trimEnd() || (m.previous!.hash === m.hash ? '  (same source)' : '  (sources differ only in bytes a line diff does not show)'));
    }
  }
  // One pass over everything printed: names, messages from the guest, diff lines.
  return `${out.map((l) => l.split('\n').map(printable).join('\n')).join('\n')}\n`;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * Escapes any value for HTML text and attribute values. Every value on the
 * page goes through it, numbers included: summaries carry values a contract
 * chose (a stateVersion may arrive as any string), so nothing is trusted to be
 * markup-free (issue 13).
 */
export function escapeHtml(text: unknown): string {
  return printable(String(text)).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

const CSS = `
:root { color-scheme: light dark; --fg: #1d1d1f; --bg: #fff; --muted: #6b6b70; --line: #d8d8dc;
  --novel: #b35c00; --changed: #0b5cad; --known: #217a3c; --add: #e6f6ea; --del: #fbe9e9; --hunk: #eef2fb; }
@media (prefers-color-scheme: dark) { :root { --fg: #e8e8ea; --bg: #18181b; --muted: #a0a0a8; --line: #3a3a40;
  --novel: #f0a04b; --changed: #6aa8ff; --known: #5fcf80; --add: #1d3a26; --del: #45201f; --hunk: #23293a; } }
body { font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 2rem auto; max-width: 72rem; padding: 0 1rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; } h3 { font-size: 1rem; }
code, pre, .hash { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; } dt { color: var(--muted); } dd { margin: 0; word-break: break-all; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; } td.size { text-align: right; font-variant-numeric: tabular-nums; }
.hash { word-break: break-all; }
.badge { display: inline-block; padding: 0 .5rem; border-radius: .7rem; font-size: .8rem; font-weight: 700; border: 1px solid currentColor; }
.status-novel .badge, .badge.novel { color: var(--novel); } .status-changed .badge, .badge.changed { color: var(--changed); } .status-known .badge, .badge.known { color: var(--known); }
.entry { color: var(--muted); font-size: .85rem; } .was { color: var(--muted); font-size: .85rem; display: block; }
pre { overflow-x: auto; border: 1px solid var(--line); border-radius: 4px; padding: .5rem 0; margin: .5rem 0 1.5rem; }
pre span { display: block; padding: 0 .75rem; white-space: pre-wrap; overflow-wrap: anywhere; min-height: 1.2em; }
#legend { color: var(--muted); } #legend .badge { margin-left: .8rem; }
.problem { color: var(--novel); } .ok { color: var(--known); } .lowered { color: var(--novel); font-weight: 700; }
.add { background: var(--add); } .del { background: var(--del); } .hunk { background: var(--hunk); color: var(--muted); }
details { margin: .3rem 0; } summary { cursor: pointer; }
`;

function moduleRow(m: ReviewModule, index: number): string {
  const target = m.status === 'changed' && m.diff ? `#diff-${index}` : m.status === 'novel' && m.source !== undefined ? `#source-${index}` : undefined;
  const name = target ? `<a href="${target}">${escapeHtml(m.name)}</a>` : escapeHtml(m.name);
  const was = m.previous && m.previous.name !== m.name ? `<span class="was">was ${escapeHtml(m.previous.name)}</span>` : '';
  return [
    `<tr class="module status-${escapeHtml(m.status)}" data-status="${escapeHtml(m.status)}" data-module="${escapeHtml(m.name)}" data-hash="${escapeHtml(m.hash)}">`,
    `<td><span class="badge">${escapeHtml(m.status)}</span></td>`,
    `<td><code>${name}</code>${m.entry ? ' <span class="entry">(entry)</span>' : ''}${was}</td>`,
    `<td class="size">${escapeHtml(m.size)}</td>`,
    `<td class="hash">${escapeHtml(m.hash)}</td>`,
    `<td class="petname">${m.petname === undefined ? '' : escapeHtml(m.petname)}</td>`,
    '</tr>',
  ].join('');
}

function diffBlock(m: ReviewModule, context: number): string {
  const spans: string[] = [];
  for (const hunk of diffHunks(m.diff ?? [], context)) {
    spans.push(`<span class="hunk">${escapeHtml(hunkHeader(hunk))}</span>`);
    for (const l of hunk.lines) {
      const cls = l.op === '+' ? 'add' : l.op === '-' ? 'del' : 'ctx';
      spans.push(`<span class="${cls}">${escapeHtml(l.op + l.text)}</span>`);
    }
  }
  return `<pre class="diff">${spans.join('')}</pre>`;
}

/** A self-contained page (inline CSS, no scripts or external resources) a voter opens in a browser. */
export function renderReviewHtml(review: Review, options: { context?: number } = {}): string {
  const title = `quickvat review of bundle ${review.bundleId.slice(0, 12)}`;
  const parts: string[] = [];
  parts.push(
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    // Defence in depth: even if something slipped past escaping, nothing may load or run.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(title)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    '<h1>Bundle review</h1>',
    '<dl>',
    `<dt>bundle</dt><dd class="hash" id="bundle-id">${escapeHtml(review.bundleId)}</dd>`,
    `<dt>entry</dt><dd><code>${escapeHtml(review.entry)}</code>${review.entryChange ? ` <strong id="entry-change" class="problem">changed: was <code>${escapeHtml(review.entryChange.from)}</code></strong>` : ''}</dd>`,
    review.upgrade
      ? `<dt>against</dt><dd id="against-instance">instance <code>${escapeHtml(review.upgrade.instance.id)}</code>, incarnation ${escapeHtml(review.upgrade.instance.incarnation)}, running bundle <span class="hash" id="against-id">${escapeHtml(review.upgrade.instance.bundleId)}</span></dd>`
      : review.against
        ? `<dt>against</dt><dd class="hash" id="against-id">${escapeHtml(review.against.bundleId)} (entry <code>${escapeHtml(review.against.entry)}</code>)</dd>`
        : '<dt>against</dt><dd>nothing: every module is novel</dd>',
    '</dl>',
    `<p id="legend">${STATUS_LEGEND.map(([status, meaning]) => `<span class="badge ${status}">${status}</span> ${escapeHtml(meaning)}`).join(' ')}</p>`,
    `<p id="summary">${escapeHtml(summaryLine(review))}</p>`,
    ...upgradeSections(review),
    '<h2>Modules</h2>',
    '<table id="modules"><thead><tr><th>status</th><th>module</th><th>size</th><th>hash (sha256)</th><th>petname</th></tr></thead><tbody>',
    ...review.modules.map(moduleRow),
    '</tbody></table>',
    '<h2>Named exits</h2>',
  );
  if (review.exits.length === 0 && review.removedExits.length === 0) parts.push('<p>none</p>');
  else {
    parts.push('<table id="exits"><thead><tr><th>status</th><th>exit</th><th>used by</th></tr></thead><tbody>');
    for (const exit of review.exits) {
      const status = review.against ? exit.status : 'novel';
      parts.push(
        `<tr class="exit status-${escapeHtml(status)}" data-status="${escapeHtml(status)}" data-exit="${escapeHtml(exit.specifier)}"><td><span class="badge">${escapeHtml(status)}</span></td><td><code>${escapeHtml(exit.specifier)}</code></td><td>${exit.modules.map((n) => `<code>${escapeHtml(n)}</code>`).join(', ')}</td></tr>`,
      );
    }
    for (const exit of review.removedExits) {
      parts.push(`<tr class="exit status-removed" data-status="removed" data-exit="${escapeHtml(exit)}"><td><span class="badge">removed</span></td><td><code>${escapeHtml(exit)}</code></td><td></td></tr>`);
    }
    parts.push('</tbody></table>');
  }
  if (review.removed.length > 0) {
    parts.push('<h2>Removed modules</h2><table id="removed"><thead><tr><th>module</th><th>size</th><th>hash</th><th>petname</th></tr></thead><tbody>');
    for (const m of review.removed) {
      parts.push(`<tr class="removed" data-module="${escapeHtml(m.name)}"><td><code>${escapeHtml(m.name)}</code></td><td class="size">${escapeHtml(m.size)}</td><td class="hash">${escapeHtml(m.hash)}</td><td>${m.petname === undefined ? '' : escapeHtml(m.petname)}</td></tr>`);
    }
    parts.push('</tbody></table>');
  }
  const changed = review.modules.map((m, i) => [m, i] as const).filter(([m]) => m.status === 'changed');
  if (changed.length > 0) {
    parts.push('<h2>Changes</h2>');
    for (const [m, i] of changed) {
      parts.push(`<section class="change" id="diff-${i}" data-module="${escapeHtml(m.name)}">`);
      parts.push(`<h3><code>${escapeHtml(m.previous!.name)}</code> → <code>${escapeHtml(m.name)}</code></h3>`);
      if (m.previous!.name !== m.name) {
        parts.push(`<p class="renamed">renamed from <code>${escapeHtml(m.previous!.name)}</code>${m.previous!.hash === m.hash ? ' (same bytes; the name decides how they compile)' : ''}</p>`);
      }
      if (m.importChanges?.length) {
        parts.push('<table class="import-changes"><thead><tr><th>import</th><th>was</th><th>now</th></tr></thead><tbody>');
        for (const c of m.importChanges) {
          parts.push(`<tr data-specifier="${escapeHtml(c.specifier)}"><td><code>${escapeHtml(c.specifier)}</code></td><td><code>${escapeHtml(c.from ?? '(none)')}</code></td><td><code>${escapeHtml(c.to ?? '(none)')}</code></td></tr>`);
        }
        parts.push('</tbody></table>');
      }
      parts.push(m.diff ? diffBlock(m, options.context ?? 3) : '<p>No diff: a piece was not available.</p>');
      parts.push('</section>');
    }
  }
  const novel = review.modules.map((m, i) => [m, i] as const).filter(([m]) => m.status === 'novel' && m.source !== undefined);
  if (novel.length > 0) {
    // Shown in full, not behind a click: novel code is what a voter must read.
    parts.push('<h2>Novel sources</h2>');
    for (const [m, i] of novel) {
      parts.push(`<section class="source" id="source-${i}" data-module="${escapeHtml(m.name)}"><h3><code>${escapeHtml(m.name)}</code> (${escapeHtml(m.size)} bytes)</h3>`);
      parts.push(`<pre>${splitLines(m.source!).map((l) => `<span>${escapeHtml(l)}</span>`).join('')}</pre></section>`);
    }
  }
  parts.push('</body>', '</html>', '');
  return parts.join('\n');
}

function upgradeSections(review: Review): string[] {
  const u = review.upgrade;
  if (!u) return [];
  const parts: string[] = [];
  if (u.summary) {
    parts.push('<h2>Upgrade summary</h2>', '<p>Both versions loaded in trial vats against the running instance.</p>');
    parts.push('<table id="upgrade-summary"><thead><tr><th>durable kind</th><th>change</th><th>stateVersion</th><th>facets</th><th>methods</th></tr></thead><tbody>');
    for (const k of u.summary.kinds) {
      const { from, to } = k.stateVersion;
      const version = from === undefined ? String(to) : to === undefined ? String(from) : from === to ? String(from) : `${from} → ${to}`;
      const lowered = from !== undefined && to !== undefined && to < from;
      const list = (added: readonly string[], removed: readonly string[]) =>
        [...added.map((x) => `+${x}`), ...removed.map((x) => `−${x}`)].map((x) => `<code>${escapeHtml(x)}</code>`).join(' ');
      parts.push(
        `<tr class="kind" data-kind="${escapeHtml(k.tag)}" data-change="${escapeHtml(k.status)}"><td><code>${escapeHtml(k.tag)}</code></td><td>${escapeHtml(k.status)}</td>` +
          `<td${lowered ? ' class="lowered"' : ''}>${escapeHtml(version)}${lowered ? ' (lowered)' : ''}</td><td>${list(k.facetsAdded, k.facetsRemoved)}</td><td>${list(k.methodsAdded, k.methodsRemoved)}</td></tr>`,
      );
    }
    parts.push('</tbody></table>');
    const exits = (e: readonly string[]) => (e.length ? e.map((x) => `<code>${escapeHtml(x)}</code>`).join(', ') : 'none');
    parts.push(`<p id="exit-change">named exits: ${exits(u.summary.exits.from)} → ${exits(u.summary.exits.to)}</p>`);
  }
  if (u.preflight) {
    parts.push('<h2>Pre-flight</h2>');
    if (u.preflight.ok) parts.push('<p id="preflight" class="ok">no problems: the upgrade would be enacted</p>');
    else {
      parts.push(`<p id="preflight" class="problem">${u.preflight.problems.length} problem${u.preflight.problems.length === 1 ? '' : 's'}: the upgrade would be refused unless forced</p><ul id="preflight-problems">`);
      for (const p of u.preflight.problems) parts.push(`<li class="problem" data-code="${escapeHtml(p.code)}"><code>${escapeHtml(p.code)}</code> ${escapeHtml(p.message)}</li>`);
      parts.push('</ul>');
    }
    if (u.preflight.warnings?.length) {
      parts.push('<ul id="preflight-warnings">');
      for (const w of u.preflight.warnings) parts.push(`<li class="warning" data-code="${escapeHtml(w.code)}">warning <code>${escapeHtml(w.code)}</code> ${escapeHtml(w.message)}</li>`);
      parts.push('</ul>');
    }
  }
  return parts;
}
