// A line diff (Myers' O(ND) algorithm) and its unified-format rendering, for
// showing a voter what changed in a module.

export interface DiffLine {
  readonly op: ' ' | '-' | '+';
  readonly text: string;
  /** 1-based line in the old text (for ' ' and '-') */
  readonly oldLine?: number;
  /** 1-based line in the new text (for ' ' and '+') */
  readonly newLine?: number;
}

export interface DiffHunk {
  readonly oldStart: number;
  readonly oldLines: number;
  readonly newStart: number;
  readonly newLines: number;
  readonly lines: readonly DiffLine[];
}

/** Edit distances beyond this fall back to "replace everything": the trace grows as D². */
const MAX_EDIT_DISTANCE = 4000;

/**
 * The lines of a source as JavaScript sees them: LF, CR, CRLF, U+2028 and
 * U+2029 all end a line (ECMA-262 LineTerminatorSequence). Splitting on LF
 * alone would let a U+2028 end a // comment in the code while the review
 * shows the rest of that "line" as comment (issue 13).
 */
export function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split(/\r\n|[\n\r\u2028\u2029]/);
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** Every line of both texts, in order, marked kept, removed or added. */
export function diffLines(oldText: string, newText: string): DiffLine[] {
  const a = splitLines(oldText);
  const b = splitLines(newText);
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const middle = myers(a.slice(start, endA), b.slice(start, endB));
  const out: DiffLine[] = [];
  let oldLine = 1;
  let newLine = 1;
  const keep = (text: string) => out.push({ op: ' ', text, oldLine: oldLine++, newLine: newLine++ });
  for (let i = 0; i < start; i++) keep(a[i]);
  for (const [op, text] of middle) {
    if (op === ' ') keep(text);
    else if (op === '-') out.push({ op, text, oldLine: oldLine++ });
    else out.push({ op, text, newLine: newLine++ });
  }
  for (let i = endA; i < a.length; i++) keep(a[i]);
  return out;
}

function myers(a: string[], b: string[]): [' ' | '-' | '+', string][] {
  const n = a.length;
  const m = b.length;
  if (n === 0) return b.map((t) => ['+', t]);
  if (m === 0) return a.map((t) => ['-', t]);
  const max = Math.min(n + m, MAX_EDIT_DISTANCE);
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  // trace[d] holds v[-d-1 .. d+1] as it was before step d.
  const trace: Int32Array[] = [];
  for (let d = 0; d <= max; d++) {
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1] < v[offset + k + 1]) ? v[offset + k + 1] : v[offset + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) return backtrack(a, b, trace);
    }
  }
  return [...a.map((t): ['-', string] => ['-', t]), ...b.map((t): ['+', string] => ['+', t])];
}

function backtrack(a: string[], b: string[], trace: Int32Array[]): [' ' | '-' | '+', string][] {
  const out: [' ' | '-' | '+', string][] = [];
  let x = a.length;
  let y = b.length;
  for (let d = trace.length - 1; d >= 0; d--) {
    const snapshot = trace[d];
    const at = (k: number) => snapshot[k + d + 1];
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = d === 0 ? 0 : at(prevK);
    const prevY = d === 0 ? 0 : prevX - prevK;
    while (x > prevX && y > prevY) {
      x--;
      y--;
      out.push([' ', a[x]]);
    }
    if (d > 0) {
      if (x === prevX) out.push(['+', b[prevY]]);
      else out.push(['-', a[prevX]]);
    }
    x = prevX;
    y = prevY;
  }
  return out.reverse();
}

/** Groups changes with `context` unchanged lines around them, as `diff -u` does. */
export function diffHunks(lines: readonly DiffLine[], context = 3): DiffHunk[] {
  const changed = lines.map((l, i) => (l.op === ' ' ? -1 : i)).filter((i) => i >= 0);
  const hunks: DiffHunk[] = [];
  let i = 0;
  while (i < changed.length) {
    const from = Math.max(0, changed[i] - context);
    let to = Math.min(lines.length, changed[i] + context + 1);
    while (i + 1 < changed.length && changed[i + 1] - context <= to) {
      i++;
      to = Math.min(lines.length, changed[i] + context + 1);
    }
    i++;
    const slice = lines.slice(from, to);
    const oldCount = slice.filter((l) => l.op !== '+').length;
    const newCount = slice.filter((l) => l.op !== '-').length;
    // diff -u names the line before an empty range.
    const oldStart = firstLine(lines, from, 'oldLine') - (oldCount === 0 ? 1 : 0);
    const newStart = firstLine(lines, from, 'newLine') - (newCount === 0 ? 1 : 0);
    hunks.push({ oldStart, oldLines: oldCount, newStart, newLines: newCount, lines: slice });
  }
  return hunks;
}

function firstLine(lines: readonly DiffLine[], from: number, field: 'oldLine' | 'newLine'): number {
  for (let i = from; i < lines.length; i++) {
    const n = lines[i][field];
    if (n !== undefined) return n;
  }
  let last = 0;
  for (let i = from - 1; i >= 0 && last === 0; i--) last = lines[i][field] ?? 0;
  return last + 1;
}

export function hunkHeader(h: DiffHunk): string {
  return `@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`;
}

/** Renders marked lines as a unified diff; empty when nothing changed. */
export function formatUnifiedDiff(lines: readonly DiffLine[], oldLabel: string, newLabel: string, context = 3): string {
  const hunks = diffHunks(lines, context);
  if (hunks.length === 0) return '';
  const out = [`--- ${oldLabel}`, `+++ ${newLabel}`];
  for (const h of hunks) {
    out.push(hunkHeader(h));
    for (const l of h.lines) out.push(`${l.op}${l.text}`);
  }
  return `${out.join('\n')}\n`;
}

/** A unified diff of two texts; empty when they are equal. */
export function unifiedDiff(oldText: string, newText: string, oldLabel: string, newLabel: string, context = 3): string {
  return formatUnifiedDiff(diffLines(oldText, newText), oldLabel, newLabel, context);
}
