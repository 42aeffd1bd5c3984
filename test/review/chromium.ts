// Headless Chromium for the review page tests: the DOM the browser built
// from a page (not a test file itself). CI installs chromium (.ci/run).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export function findChromium(): string | undefined {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      const found = execFileSync('which', [name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      if (found) return found;
    } catch {
      // not this one
    }
  }
  return undefined;
}

/** The page at `file` as the browser parsed and laid it out (--dump-dom), with a throwaway profile. */
export function renderedDom(chromium: string, file: string): string {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'quickvat-chromium-'));
  try {
    return execFileSync(
      chromium,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        `--user-data-dir=${profile}`,
        '--dump-dom',
        pathToFileURL(file).href,
      ],
      { encoding: 'utf8', timeout: 25_000, stdio: ['ignore', 'pipe', 'ignore'] },
    );
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

/** The text a reader sees: the DOM's body with tags dropped and entities decoded. */
export function visibleText(dom: string): string {
  const body = dom.slice(dom.indexOf('<body'));
  return body
    .replace(/<style[\s\S]*?<\/style>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}
