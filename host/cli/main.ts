#!/usr/bin/env node
// `quickvat`: the command line over a host whose state lives in a directory
// (./.quickvat by default). Every failure is one line naming the input at
// fault, on stderr, with a non-zero exit; bad input leaves the state as it was.
import { Command, CommanderError } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import {
  bundleSource,
  formatReviewText,
  Host,
  PreflightRefused,
  type ReviewContext,
  loadPetnames,
  readBundleFile,
  renderReviewHtml,
  reviewBundle,
  writeBundleFile,
  type ExitPolicy,
  type SourceBundle,
} from '../index.js';
import { decompressImage, imageHash } from '../engine/index.js';
import { parseValue, showValue } from './values.js';
import { progress } from './progress.js';

const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** A failure the user caused; printed as its message alone. */
class UsageError extends Error {}

interface Global {
  state: string;
  json?: boolean;
}

const program = new Command();
program
  .name('quickvat')
  .description('deterministic sandbox runtime for upgradable JavaScript contracts')
  .option('--state <dir>', 'state directory (LMDB)', './.quickvat')
  .option('--json', 'machine-readable output')
  .showHelpAfterError(false)
  .exitOverride();

const globals = (): Global => program.opts() as Global;

function out(human: string, data: unknown): void {
  if (globals().json) process.stdout.write(`${JSON.stringify(data, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}\n`);
  else process.stdout.write(`${human}\n`);
}

async function withHost<T>(fn: (host: Host) => Promise<T> | T, options: { create?: boolean } = {}): Promise<T> {
  const dir = path.resolve(globals().state);
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

async function loadBundleArg(file: string): Promise<SourceBundle> {
  if (!fs.existsSync(file)) throw new UsageError(`${file}: no such file`);
  if (file.endsWith('.json')) return readBundleFile(file);
  return bundleSource(file);
}

function readExits(file: string | undefined): ExitPolicy {
  if (!file) return {};
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'), (_k, v) => parseValue(v)) as ExitPolicy;
  } catch (err) {
    throw new UsageError(`--exits ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function upload(host: Host, bundle: SourceBundle) {
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

function adminOf(host: Host, instanceId: string): object {
  try {
    return host.instanceKit(instanceId).adminFacet;
  } catch {
    throw new UsageError(`unknown instance ${JSON.stringify(instanceId)}`);
  }
}

/** "v3.publicFacet" -> that facet of instance v3; "v3" -> its root or publicFacet. */
function resolveTarget(host: Host, target: string): object {
  const [instanceId, facet] = target.split('.', 2);
  let kit;
  try {
    kit = host.instanceKit(instanceId);
  } catch {
    throw new UsageError(`unknown instance ${JSON.stringify(instanceId)} (see \`quickvat start\` output for instance ids)`);
  }
  const name = facet ?? (kit.root ? 'root' : 'publicFacet');
  const value = (kit as Record<string, unknown>)[name];
  if (typeof value !== 'object' || value === null || name === 'adminFacet') {
    throw new UsageError(`instance ${instanceId} has no facet ${JSON.stringify(name)} (it has ${Object.keys(kit).filter((k) => k !== 'instanceId' && k !== 'adminFacet').join(', ')})`);
  }
  return value;
}

program
  .command('bundle <entry>')
  .description('bundle an ES module graph into content-addressed pieces and a manifest')
  .option('-o, --out <file>', 'bundle file to write (default: <entry name>.bundle.json)')
  .action(async (entry: string, opts: { out?: string }) => {
    if (!fs.existsSync(entry)) throw new UsageError(`${entry}: no such file`);
    const bundle = await bundleSource(entry);
    const file = opts.out ?? `${path.basename(entry).replace(/\.[^.]+$/, '')}.bundle.json`;
    writeBundleFile(file, bundle);
    const size = [...bundle.pieces.values()].reduce((n, p) => n + p.length, 0);
    out(`bundled ${entry}: ${Object.keys(bundle.manifest.modules).length} modules, ${size} bytes, exits [${bundle.manifest.exits.join(', ')}]\nbundle id ${bundle.bundleId}\nwrote ${file}`, {
      bundleId: bundle.bundleId,
      file,
      modules: Object.keys(bundle.manifest.modules).length,
      bytes: size,
      exits: bundle.manifest.exits,
    });
  });

program
  .command('review <bundle>')
  .description('list each module as known, novel or changed against another bundle or a running instance')
  .option('--against <bundleOrInstance>', 'bundle file, entry file, or instance id')
  .option('--petnames <file>', 'JSON: piece hash -> your name for it')
  .option('--html <out>', 'also write a self-contained HTML page')
  .action(async (file: string, opts: { against?: string; petnames?: string; html?: string }) => {
    const proposed = await loadBundleArg(file);
    const petnames = opts.petnames ? loadPetnames(opts.petnames) : undefined;
    let against: SourceBundle | { manifest: SourceBundle['manifest']; pieces: (h: string) => Uint8Array | undefined } | undefined;
    const render = (againstBundle: typeof against, upgrade?: ReviewContext) => {
      const review = reviewBundle(proposed, { against: againstBundle, petnames, upgrade });
      if (opts.html) fs.writeFileSync(opts.html, renderReviewHtml(review));
      out(formatReviewText(review) + (opts.html ? `\nwrote ${opts.html}` : ''), review);
    };
    if (opts.against && !fs.existsSync(opts.against)) {
      await withHost(async (host) => {
        const instance = opts.against!;
        const id = host.runningBundleOf(instance);
        const manifest = id ? host.bundles.manifest(id) : undefined;
        if (!manifest) throw new UsageError(`--against ${instance}: neither a file nor an instance of this host`);
        // Against a running instance: which one, what the upgrade changes, and pre-flight (issue 13).
        render({ manifest, pieces: (h: string) => host.bundles.getPiece(h) }, await host.reviewContext(instance, proposed));
      });
      return;
    }
    against = opts.against ? await loadBundleArg(opts.against) : undefined;
    render(against);
  });

program
  .command('install <bundle>')
  .description('upload the pieces the host lacks, then install: runs installation init once and keeps the zygote')
  .option('--label <label>', 'installation label')
  .option('--exits <file>', 'named-exit policy (JSON)')
  .action(async (file: string, opts: { label?: string; exits?: string }) => {
    const bundle = await loadBundleArg(file);
    const exits = readExits(opts.exits);
    await withHost(
      (host) => {
        const { cap, sent, total, pieces } = upload(host, bundle);
        const installation = host.install(cap, { label: opts.label ?? path.basename(file).replace(/\..*$/, ''), exits });
        out(`installed ${installation.label} as ${installation.installationId} (uploaded ${pieces} pieces, ${sent} of ${total} bytes)`, {
          ...installation,
          uploadedBytes: sent,
          totalBytes: total,
        });
      },
      { create: true },
    );
  });

program
  .command('start <installation>')
  .description('start an instance by forking the installation zygote')
  .option('--parameters <json>', 'instance parameters (JSON; "12n" for bigints)')
  .option('--private-args <json>', 'private arguments (JSON)')
  .action(async (installationId: string, opts: { parameters?: string; privateArgs?: string }) => {
    const parameters = parseJsonOption('--parameters', opts.parameters);
    const privateArgs = parseJsonOption('--private-args', opts.privateArgs);
    await withHost((host) => {
      const installation = host.installations().find((i) => i.installationId === installationId || i.label === installationId);
      if (!installation) throw new UsageError(`unknown installation ${JSON.stringify(installationId)}`);
      const kit = host.startInstance(installation, { parameters, privateArgs });
      const facets = Object.keys(kit).filter((k) => k !== 'instanceId' && k !== 'adminFacet');
      out(`started ${kit.instanceId} from ${installation.label}: facets ${facets.map((f) => `${kit.instanceId}.${f}`).join(', ')}`, {
        instanceId: kit.instanceId,
        facets,
      });
    });
  });

program
  .command('call <target> <method> [args...]')
  .description('send a message: target is <instance>.<facet>; args are JSON ("5n" for bigints)')
  .action(async (target: string, method: string, args: string[]) => {
    const values = args.map((a, i) => parseJsonArg(`argument ${i + 1}`, a));
    await withHost(async (host) => {
      const result = await host.E(resolveTarget(host, target))[method](...values).catch((err: Error) => {
        throw new UsageError(`${target}.${method}: ${err.message}`);
      });
      out(showValue(result), { result: JSON.parse(JSON.stringify(result ?? null, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))) });
    });
  });

program
  .command('upgrade <instance> <bundle>')
  .description('upgrade an instance to a new bundle, atomically; pre-flight runs first and any problem refuses the upgrade (exit 3)')
  .option('--private-args <json>', 'private arguments for the new incarnation (JSON)')
  .option('--exits <file>', 'named exits the new bundle needs (JSON policy)')
  .option('--force', 'enact the upgrade even if pre-flight finds problems (they are printed first)')
  .option('--restart', 'allow "upgrading" to the bundle already running: a new incarnation of the same code')
  .action(async (instanceId: string, file: string, opts: { privateArgs?: string; exits?: string; force?: boolean; restart?: boolean }) => {
    const privateArgs = parseJsonOption('--private-args', opts.privateArgs);
    const bundle = await loadBundleArg(file);
    const exits = readExits(opts.exits);
    await withHost(async (host) => {
      const admin = adminOf(host, instanceId);
      const { cap } = upload(host, bundle);
      // Forced, the problems are still shown: the operator overrides them knowingly.
      const overridden = opts.force ? (await host.preflight(admin, cap, { privateArgs, exits })).problems : [];
      if (!globals().json) for (const p of overridden) process.stderr.write(`warning: pre-flight: ${p.code}: ${p.message}\n`);
      let incarnation: number;
      try {
        ({ incarnation } = await host.upgrade(admin, cap, { privateArgs, exits, force: opts.force, restart: opts.restart }));
      } catch (err) {
        if (!(err instanceof PreflightRefused)) throw err;
        out(`upgrade of ${instanceId} refused: pre-flight found problems (nothing changed; --force to enact it anyway)\n${err.problems.map((p) => `${p.code}: ${p.message}`).join('\n')}`, {
          instanceId,
          upgraded: false,
          problems: err.problems,
        });
        process.exitCode = 3;
        return;
      }
      out(`upgraded ${instanceId} to incarnation ${incarnation} (bundle ${bundle.bundleId.slice(0, 12)}…)`, {
        instanceId,
        upgraded: true,
        incarnation,
        bundleId: bundle.bundleId,
        ...(opts.force ? { overriddenProblems: overridden } : {}),
      });
    });
  });

program
  .command('shadow <instance> <bundle>')
  .description('compare a proposed upgrade with the running version over a list of calls; exit 3 if answers differ and nothing was promoted')
  .requiredOption('--calls <file>', 'JSON list of [facet, method, ...args]')
  .option('--dry-run', 'send the calls to two forks of the live instance (current and proposed version); nothing live changes')
  .option('--private-args <json>', 'private arguments for the shadow incarnation (JSON)')
  .option('--promote', 'enact the upgrade afterwards if no answer differed')
  .action(async (instanceId: string, file: string, opts: { calls: string; dryRun?: boolean; privateArgs?: string; promote?: boolean }) => {
    const privateArgs = parseJsonOption('--private-args', opts.privateArgs);
    const calls = readCalls(opts.calls);
    const bundle = await loadBundleArg(file);
    const json = globals().json;
    const say = (line: string) => {
      if (!json) process.stdout.write(`${line}\n`);
    };
    await withHost(async (host) => {
      const admin = adminOf(host, instanceId);
      const { cap } = upload(host, bundle);
      const targets = calls.map(([facet]) => resolveTarget(host, `${instanceId}.${facet}`));
      let deliveries: number;
      let differed: number;
      let detail: unknown;
      if (opts.dryRun) {
        say(`dry run: ${calls.length} calls go to two forks of ${instanceId} (current and proposed version); nothing live changes`);
        const report = await host.shadowDryRun(admin, cap, calls.map(([, method, ...args], i) => ({ target: targets[i], method, args })), { privateArgs });
        report.answers.forEach((a, i) => {
          const args = showValue(a.args).slice(1, -1);
          say(`${String(i + 1).padStart(4)} ${calls[i][0]}.${a.method}(${args}) -> ${showValue(a.current)}`);
          if (!a.same) say(`  DIFFERS ${a.method}(${args}): current ${showValue(a.current)}, proposed ${showValue(a.proposed)}`);
        });
        ({ deliveries, differed } = report);
        detail = { dryRun: true, ...report };
      } else {
        // Said first, so nobody mistakes this for a dry run.
        const warning = `live: ${calls.length} calls go to the live instance ${instanceId} and change its state (the shadow sees them too); use --dry-run to leave it untouched`;
        if (json) process.stderr.write(`${warning}\n`);
        else say(warning);
        const shadow = await host.shadow(admin, cap, {
          privateArgs,
          onDifference: (d) => say(`  DIFFERS ${d.method}(${showValue(d.args).slice(1, -1)}): live ${showValue(d.live)}, shadow ${showValue(d.shadow)}`),
        });
        try {
          for (const [i, [facet, method, ...args]] of calls.entries()) {
            const live = await host.E(targets[i])[method](...args).then(showValue, (e: Error) => `rejected: ${e.message}`);
            say(`${String(i + 1).padStart(4)} ${facet}.${method}(${showValue(args).slice(1, -1)}) -> ${live}`);
          }
        } finally {
          await shadow.drop();
        }
        const report = shadow.report();
        deliveries = report.deliveries;
        differed = report.differences.length + (report.differencesNotKept ?? 0);
        detail = { dryRun: false, ...report };
      }
      let promoted: number | undefined;
      if (opts.promote && differed === 0) promoted = (await host.upgrade(admin, cap, { privateArgs })).incarnation;
      out(
        `${deliveries} deliveries, ${differed} differed` +
          (promoted ? `; promoted: ${instanceId} is at incarnation ${promoted}` : opts.promote ? '; not promoted' : opts.dryRun ? '' : '; shadow dropped'),
        { ...(detail as object), promoted: promoted ?? null },
      );
      if (differed > 0 && promoted === undefined) process.exitCode = 3;
    });
  });

function readCalls(file: string): [string, string, ...unknown[]][] {
  let calls: unknown;
  try {
    calls = JSON.parse(fs.readFileSync(file, 'utf8'), (_k, v) => parseValue(v));
  } catch (err) {
    throw new UsageError(`--calls ${file}: ${(err as NodeJS.ErrnoException).code ?? 'not JSON'}`);
  }
  if (!Array.isArray(calls) || !calls.every((c) => Array.isArray(c) && typeof c[0] === 'string' && typeof c[1] === 'string')) {
    throw new UsageError(`--calls ${file}: expected a list of [facet, method, ...args]`);
  }
  return calls as [string, string, ...unknown[]][];
}

program
  .command('preflight <instance> <bundle>')
  .description('dry-run an upgrade in a throwaway copy and list the problems it would hit')
  .option('--private-args <json>', 'private arguments for the new incarnation (JSON)')
  .action(async (instanceId: string, file: string, opts: { privateArgs?: string }) => {
    const privateArgs = parseJsonOption('--private-args', opts.privateArgs);
    const bundle = await loadBundleArg(file);
    await withHost(async (host) => {
      const admin = adminOf(host, instanceId);
      const { cap } = upload(host, bundle);
      const result = await host.preflight(admin, cap, { privateArgs });
      out(result.ok ? 'pre-flight: no problems' : result.problems.map((p) => `${p.code}: ${p.message}`).join('\n'), result);
      if (!result.ok) process.exitCode = 3;
    });
  });

const snapshot = program.command('snapshot').description('memory images: list, size, verify');
snapshot
  .command('list')
  .description('each vat and the image it restores from')
  .action(async () => {
    await withHost((host) => {
      const rows = host.vats().map((v) => {
        const r = host.kernel.vatRecord(v.vatId);
        return { vatId: v.vatId, name: v.name, incarnation: r.incarnation, image: r.imageId, snapshotPos: r.snapshotPos, transcriptLength: r.transcriptLength };
      });
      out(rows.map((r) => `${r.vatId.padEnd(5)} ${r.name.padEnd(28)} inc ${r.incarnation}  image ${r.image.slice(0, 12)}…  replay ${r.transcriptLength - r.snapshotPos} deliveries`).join('\n'), rows);
    });
  });
snapshot
  .command('size')
  .description('stored image sizes')
  .action(async () => {
    await withHost((host) => {
      const rows = [...host.store.entries('img.')].map(([k, v]) => ({ image: k.slice(4), compressedBytes: (v as Uint8Array).length }));
      out(rows.map((r) => `${r.image.slice(0, 12)}…  ${(r.compressedBytes / 1024).toFixed(0)} KiB compressed`).join('\n') || 'no images', rows);
    });
  });
snapshot
  .command('verify')
  .description('decompress every stored image and check its content hash')
  .action(async () => {
    await withHost((host) => {
      const entries = [...host.store.entries('img.')];
      const bar = progress('verifying images', entries.length);
      const bad: string[] = [];
      for (const [k, v] of entries) {
        const id = k.slice(4);
        try {
          if (imageHash(decompressImage(v as Uint8Array)) !== id) bad.push(`${id}: content does not match its id`);
        } catch (err) {
          bad.push(`${id}: ${(err as Error).message}`);
        }
        bar.tick();
      }
      bar.done();
      if (bad.length) throw new UsageError(`${bad.length} damaged image(s): ${bad.join('; ')}`);
      out(`${entries.length} images verified`, { verified: entries.length });
    });
  });

program
  .command('bench [suites...]')
  .description('run the benchmark suites (engine, kernel, zygote, vat-data, upgrade)')
  .action((suites: string[]) => runScript(path.join(ROOT, 'dist', 'bench', 'run.js'), suites));

program
  .command('demo')
  .description('the guided demo: install, fork, business, review, upgrade')
  .action(() => runScript(path.join(ROOT, 'dist', 'host', 'demo.js'), []));

function runScript(file: string, args: string[]): void {
  const r = spawnSync(process.execPath, [file, ...args], { stdio: 'inherit' });
  if (r.status !== 0) throw new UsageError(`${path.basename(file)} exited with ${r.status}`);
}

function parseJsonArg(what: string, text: string): unknown {
  try {
    return JSON.parse(text, (_k, v) => parseValue(v));
  } catch {
    // A bare word is a string: `quickvat call v3.publicFacet openAccount alice`.
    if (/^[\w:@.-]+$/.test(text)) return text;
    throw new UsageError(`${what} is not JSON: ${text}`);
  }
}

function parseJsonOption(name: string, text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text, (_k, v) => parseValue(v));
  } catch {
    throw new UsageError(`${name} is not JSON: ${text}`);
  }
}

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return;
      process.exitCode = err.exitCode || 2;
      return; // commander already printed its one line
    }
    const message = (err as Error)?.message ?? String(err);
    process.stderr.write(`quickvat: ${message.split('\n')[0]}\n`);
    process.exitCode = 1;
  }
}

await main();
