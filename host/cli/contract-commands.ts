// Commands for code and instances: bundle, review, install, start, call, list.
import fs from 'node:fs';
import path from 'node:path';
import { bundleSource, formatReviewText, loadPetnames, renderReviewHtml, reviewBundle, writeBundleFile, type ReviewContext, type SourceBundle } from '../index.js';
import { loadBundleArg, out, parseJsonOption, program, readExits, upload, UsageError, withHost } from './context.js';
import { assertPetname, describeRefs, instances, loadNames, resolveInstance, resolveTarget, reviveRefs, saveName } from './names.js';
import { parseValue, showValue, toJson } from './values.js';

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
  .option('--against <bundleOrInstance>', 'bundle file, entry file, or instance (id or label)')
  .option('--petnames <file>', 'JSON: piece hash -> your name for it (docs/cli.md)')
  .option('--html <out>', 'also write a self-contained HTML page')
  .action(async (file: string, opts: { against?: string; petnames?: string; html?: string }) => {
    const proposed = await loadBundleArg(file);
    const petnames = opts.petnames ? loadPetnames(opts.petnames) : undefined;
    type Against = SourceBundle | { manifest: SourceBundle['manifest']; pieces: (h: string) => Uint8Array | undefined } | undefined;
    const render = (against: Against, upgrade?: ReviewContext) => {
      const review = reviewBundle(proposed, { against, petnames, upgrade });
      if (opts.html) fs.writeFileSync(opts.html, renderReviewHtml(review));
      out(formatReviewText(review) + (opts.html ? `\nwrote ${opts.html}` : ''), review);
    };
    if (opts.against && !fs.existsSync(opts.against)) {
      await withHost(async (host) => {
        let instance;
        try {
          instance = resolveInstance(host, opts.against!);
        } catch {
          throw new UsageError(`--against ${opts.against}: neither a file nor an instance of this host`);
        }
        const id = host.runningBundleOf(instance);
        const manifest = id ? host.bundles.manifest(id) : undefined;
        if (!manifest) throw new UsageError(`--against ${opts.against}: the instance's running bundle is not in the module store`);
        // Against a running instance: which one, what the upgrade changes, and pre-flight (issue 13).
        render({ manifest, pieces: (h: string) => host.bundles.getPiece(h) }, await host.reviewContext(instance, proposed));
      });
      return;
    }
    render(opts.against ? await loadBundleArg(opts.against) : undefined);
  });

program
  .command('install <bundle>')
  .description('upload the pieces the host lacks, then install: runs installation init once and keeps the zygote')
  .option('--label <label>', 'installation label (default: the file name)')
  .option('--exits <file>', 'named-exit policy (JSON; docs/cli.md)')
  .action(async (file: string, opts: { label?: string; exits?: string }) => {
    if (opts.label !== undefined) checkLabel(opts.label);
    const bundle = await loadBundleArg(file);
    const exits = readExits(opts.exits);
    await withHost(
      (host) => {
        const label = opts.label ?? defaultLabel(file);
        const taken = host.installations().find((i) => i.label === label);
        if (taken) throw new UsageError(`installation label ${JSON.stringify(label)} is already used by ${taken.installationId}; pass another --label`);
        const { cap, sent, total, pieces } = upload(host, bundle);
        const installation = host.install(cap, { label, exits });
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
  .description('start an instance by forking the installation zygote (installation: id or label)')
  .option('--label <label>', 'instance label, usable wherever an instance id is (default: the installation label)')
  .option('--parameters <json>', 'instance parameters (JSON; "12n" for bigints)')
  .option('--private-args <json>', 'private arguments (JSON)')
  .action(async (installationId: string, opts: { label?: string; parameters?: string; privateArgs?: string }) => {
    const parameters = parseJsonOption('--parameters', opts.parameters);
    const privateArgs = parseJsonOption('--private-args', opts.privateArgs);
    if (opts.label !== undefined) checkLabel(opts.label);
    await withHost((host) => {
      const installation = host.installations().find((i) => i.installationId === installationId || i.label === installationId);
      if (!installation) throw new UsageError(`unknown installation ${JSON.stringify(installationId)}`);
      const holder = opts.label === undefined ? undefined : instances(host).find((i) => i.label === opts.label);
      if (holder) throw new UsageError(`label ${JSON.stringify(opts.label)} already names instance ${holder.instanceId}; pass another --label`);
      const kit = host.startInstance(installation, { parameters, privateArgs, name: opts.label });
      const label = opts.label ?? installation.label;
      const facets = Object.keys(kit).filter((k) => k !== 'instanceId' && k !== 'adminFacet');
      const shared = instances(host).filter((i) => i.label === label).length > 1;
      out(
        `started ${kit.instanceId} (label ${label}) from ${installation.label}: facets ${facets.map((f) => `${shared ? kit.instanceId : label}.${f}`).join(', ')}` +
          (shared ? `\n(label ${label} now names several instances: address this one as ${kit.instanceId})` : ''),
        { instanceId: kit.instanceId, label, facets },
      );
    });
  });

program
  .command('call <target> <method> [args...]')
  .description('send a message; target: a reference (ko12), a name saved with --as, or <instance>.<facet>; args: JSON ("5n" for bigints, {"$ref":"ko12"} for objects)')
  .option('--as <name>', 'save the returned object under this name (in the state directory) for later commands')
  .action(async (target: string, method: string, args: string[], opts: { as?: string }) => {
    if (opts.as !== undefined) assertPetname(opts.as);
    await withHost(async (host) => {
      const revive = reviveRefs(host);
      const values = args.map((a, i) => parseJsonArg(`argument ${i + 1}`, a, revive));
      const presence = resolveTarget(host, target);
      const owner = host.kernel.state.objectOwner(host.refOf(presence));
      const suspension = owner && host.kernel.state.hasVat(owner) ? host.vatStats(owner) : undefined;
      if (suspension?.suspended) {
        throw new UsageError(`${target}: its vat ${owner} is suspended (${suspension.suspendedBecause ?? 'no reason given'}); nothing was sent`);
      }
      const result = await untilSettled(`${target}.${method}`, host.E(presence)[method](...values)).catch((err: Error) => {
        if (err instanceof UsageError) throw err;
        throw new UsageError(`${target}.${method}: ${err?.message ?? String(err)}`);
      });
      const describe = describeRefs(host);
      let saved = '';
      if (opts.as !== undefined) {
        const ref = typeof result === 'object' && result !== null ? describe(result) : undefined;
        if (!ref) throw new UsageError(`--as ${opts.as}: ${target}.${method} returned ${showValue(result, describe)}, not an object to name`);
        saveName(opts.as, ref);
        saved = `\nsaved as ${opts.as}`;
      }
      out(showValue(result, describe) + saved, { result: toJson(result, describe), ...(opts.as ? { savedAs: opts.as } : {}) });
    });
  });

program
  .command('list')
  .description('installations, instances (label, incarnation, running bundle, suspended) and saved names')
  .action(async () => {
    await withHost((host) => {
      const installations = host.installations();
      const rows = instances(host).map(({ instanceId, label }) => {
        const { suspended, suspendedBecause } = host.vatStats(instanceId);
        const { incarnation } = host.kernel.vatRecord(instanceId);
        return { instanceId, label, incarnation, bundleId: host.runningBundleOf(instanceId)!, suspended, ...(suspendedBecause ? { suspendedBecause } : {}) };
      });
      const names = loadNames();
      const lines = [
        'installations:',
        ...(installations.length ? installations.map((i) => `  ${i.installationId.padEnd(6)} ${i.label}`) : ['  (none)']),
        'instances:',
        ...(rows.length
          ? rows.map((r) => `  ${r.instanceId.padEnd(6)} ${r.label.padEnd(20)} inc ${r.incarnation}  bundle ${r.bundleId.slice(0, 12)}…${r.suspended ? `  SUSPENDED (${r.suspendedBecause ?? 'suspended'})` : ''}`)
          : ['  (none)']),
        'names:',
        ...(Object.keys(names).length ? Object.entries(names).map(([n, e]) => `  ${n.padEnd(20)} ${e.ref}${e.iface ? ` (${e.iface})` : ''}`) : ['  (none)']),
      ];
      out(lines.join('\n'), { installations, instances: rows, names });
    });
  });

function parseJsonArg(what: string, text: string, revive: (key: string, value: unknown) => unknown): unknown {
  try {
    return JSON.parse(text, (k, v) => revive(k, parseValue(v)));
  } catch (err) {
    if (err instanceof UsageError) throw err;
    // A bare word is a string (`openAccount alice`), or a bigint (`mint alice 5n`).
    if (/^[\w:@.-]+$/.test(text)) return parseValue(text);
    throw new UsageError(`${what} is not JSON: ${text}`);
  }
}

// An answer that can never come (the vat returned a promise nobody will
// settle): when the event loop has nothing left to do, say so and fail
// instead of exiting with Node's bare "unsettled top-level await" code.
function untilSettled<T>(what: string, answer: Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const stuck = () => reject(new UsageError(`${what}: the answer never settled (the vats have nothing left to run)`));
    process.once('beforeExit', stuck);
    answer.then(resolve, reject).finally(() => process.off('beforeExit', stuck));
  });
}

// A label must never be mistaken for an id (v3) or a reference (ko12), and
// must be one word a shell and a facet path (label.publicFacet) keep intact.
function checkLabel(label: string): void {
  if (!/^[A-Za-z_][\w-]{0,63}$/.test(label) || /^v\d+$/.test(label) || /^k[op]\d+$/.test(label)) {
    throw new UsageError(`--label ${JSON.stringify(label)}: a label is a letter then letters, digits, _ or - (at most 64), and not an id like v3 or a reference like ko12`);
  }
}

/** The file's name as a label, made valid: `v1.json` gives `contract-v1`, never something that reads as an id. */
function defaultLabel(file: string): string {
  const base = path.basename(file).replace(/\..*$/, '').replace(/[^\w-]/g, '_').slice(0, 48) || 'contract';
  return /^[A-Za-z_]/.test(base) && !/^v\d+$/.test(base) && !/^k[op]\d+$/.test(base) ? base : `contract-${base}`;
}
