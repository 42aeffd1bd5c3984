// What every command shares: the program and its global options, output
// (human or --json), opening the host on the state directory, and reading
// the command line's files and values.
import { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleSource, Host, readBundleFile, type ExitPolicy, type SourceBundle } from '../index.js';
import { progress } from './progress.js';
import { parseValue, toJson } from './values.js';

/** The package root (dist/host/cli/ is three levels down). */
export const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/**
 * Exit codes (docs/cli.md): 0 ok; 1 an error (bad input, a failed command;
 * nothing stored changed); 3 a check ran and found problems (preflight,
 * shadow differences).
 */
export const EXIT = { ok: 0, error: 1, problems: 3 } as const;

/** A failure the user caused; printed as its message alone. */
export class UsageError extends Error {}

interface Global {
  state: string;
  json?: boolean;
}

export const globals = (): Global => program.opts() as Global;

/** --json, also before commander has parsed it (errors in parsing itself). */
export const jsonMode = (): boolean => Boolean(globals().json) || process.argv.slice(2).includes('--json');

// Configured before any command is added: subcommands copy these settings.
// With --json, commander's own error line is replaced by main's { "error" }.
export const program = new Command()
  .showHelpAfterError(false)
  .configureOutput({ outputError: (text, write) => (jsonMode() ? undefined : write(text)) })
  .exitOverride();

export const stateDir = (): string => path.resolve(globals().state);

export function out(human: string, data: unknown): void {
  if (jsonMode()) process.stdout.write(`${JSON.stringify(toJson(data))}\n`);
  else process.stdout.write(`${human}\n`);
}

export async function withHost<T>(fn: (host: Host) => Promise<T> | T, options: { create?: boolean } = {}): Promise<T> {
  const dir = stateDir();
  if (!options.create && !fs.existsSync(path.join(dir, 'data.mdb'))) {
    throw new UsageError(`no quickvat state in ${dir} (install something first, or pass --state DIR)`);
  }
  const host = await Host.open({ path: dir });
  try {
    return await fn(host);
  } finally {
    await host.close();
  }
}

export async function loadBundleArg(file: string): Promise<SourceBundle> {
  if (!fs.existsSync(file)) throw new UsageError(`${file}: no such file`);
  if (file.endsWith('.json')) return readBundleFile(file);
  return bundleSource(file);
}

/** A JSON file given to an option, with "12n" for bigints. */
export function readJsonFile(option: string, file: string): unknown {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${option} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  try {
    return JSON.parse(text, (_k, v) => parseValue(v));
  } catch (err) {
    throw new UsageError(`${option} ${file}: not JSON (${(err as Error).message})`);
  }
}

/** --exits FILE: { "host:name": spec } (docs/cli.md). */
export function readExits(file: string | undefined): ExitPolicy {
  if (!file) return {};
  const policy = readJsonFile('--exits', file);
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) {
    throw new UsageError(`--exits ${file}: expected an object of "host:<name>": grant`);
  }
  return policy as ExitPolicy;
}

/** Uploads the pieces the host lacks (with progress on stderr), then installs the manifest. */
export function upload(host: Host, bundle: SourceBundle) {
  const missing = host.bundles.missing(bundle.manifest);
  const bar = progress('uploading pieces', missing.length);
  for (const hash of missing) {
    host.bundles.put(new Map([[hash, bundle.pieces.get(hash)!]]));
    bar.tick();
  }
  bar.done();
  const total = [...bundle.pieces.values()].reduce((n, p) => n + p.length, 0);
  const sent = missing.reduce((n, h) => n + bundle.pieces.get(h)!.length, 0);
  return { cap: host.bundles.install(bundle.manifest), sent, total, pieces: missing.length };
}

export function parseJsonOption(name: string, text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text, (_k, v) => parseValue(v));
  } catch {
    throw new UsageError(`${name} is not JSON: ${text}`);
  }
}
