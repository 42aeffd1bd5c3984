// Commands that change or check an instance's code: upgrade (pre-flight
// first, --force, --restart), shadow (--dry-run: two forks, nothing live
// changes), preflight (issue 13).
// Exit codes (context.ts EXIT, docs/cli.md): 0 ok, 1 error, 3 a check found problems.
import { PreflightRefused } from '../index.js';
import { EXIT, jsonMode, loadBundleArg, out, parseJsonOption, program, readExits, readJsonFile, upload, UsageError, withHost } from './context.js';
import { describeRefs, resolveInstance, resolveTarget } from './names.js';
import { showValue } from './values.js';

program
  .command('upgrade <instance> <bundle>')
  .description('upgrade an instance (id or label) to a new bundle, atomically; pre-flight runs first and any problem refuses the upgrade (exit 3)')
  .option('--private-args <json>', 'private arguments for the new incarnation (JSON)')
  .option('--exits <file>', 'named exits the new bundle needs (JSON policy; docs/cli.md)')
  .option('--force', 'enact the upgrade even if pre-flight finds problems (they are printed first)')
  .option('--restart', 'allow "upgrading" to the bundle already running: a new incarnation of the same code')
  .action(async (instanceText: string, file: string, opts: { privateArgs?: string; exits?: string; force?: boolean; restart?: boolean }) => {
    const privateArgs = parseJsonOption('--private-args', opts.privateArgs);
    const bundle = await loadBundleArg(file);
    const exits = readExits(opts.exits);
    await withHost(async (host) => {
      const instanceId = resolveInstance(host, instanceText);
      const admin = host.adminFacet(instanceId);
      const { cap } = upload(host, bundle);
      // Forced, the problems are still shown: the operator overrides them knowingly.
      const overridden = opts.force ? (await host.preflight(admin, cap, { privateArgs, exits })).problems : [];
      if (!jsonMode()) for (const p of overridden) process.stderr.write(`warning: pre-flight: ${p.code}: ${p.message}\n`);
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
        process.exitCode = EXIT.problems;
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
  .description('compare a proposed upgrade with the running version over a list of calls (exit 3 if answers differ and nothing was promoted)')
  .requiredOption('--calls <file>', 'JSON list of [facet, method, ...args] (docs/cli.md)')
  .option('--dry-run', 'send the calls to two forks of the live instance (current and proposed version); nothing live changes')
  .option('--private-args <json>', 'private arguments for the shadow incarnation (JSON)')
  .option('--promote', 'enact the upgrade afterwards (pre-flight first) if no answer differed')
  .action(async (instanceText: string, file: string, opts: { calls: string; dryRun?: boolean; privateArgs?: string; promote?: boolean }) => {
    const privateArgs = parseJsonOption('--private-args', opts.privateArgs);
    const calls = readJsonFile('--calls', opts.calls);
    if (!Array.isArray(calls) || !calls.every((c) => Array.isArray(c) && typeof c[0] === 'string' && typeof c[1] === 'string')) {
      throw new UsageError(`--calls ${opts.calls}: expected a list of [facet, method, ...args]`);
    }
    const list = calls as [string, string, ...unknown[]][];
    const bundle = await loadBundleArg(file);
    // --json prints one JSON document on stdout and nothing else.
    const say = (line: string) => {
      if (!jsonMode()) process.stdout.write(`${line}\n`);
    };
    await withHost(async (host) => {
      const instanceId = resolveInstance(host, instanceText);
      const admin = host.adminFacet(instanceId);
      const { cap } = upload(host, bundle);
      const show = (v: unknown) => showValue(v, describeRefs(host));
      const targets = list.map(([facet]) => resolveTarget(host, `${instanceId}.${facet}`));
      let deliveries: number;
      let differed: number;
      let detail: object;
      if (opts.dryRun) {
        say(`dry run: ${list.length} calls go to two forks of ${instanceId} (current and proposed version); nothing live changes`);
        const report = await host.shadowDryRun(admin, cap, list.map(([, method, ...args], i) => ({ target: targets[i], method, args })), { privateArgs });
        report.answers.forEach((a, i) => {
          const args = show(a.args).slice(1, -1);
          say(`${String(i + 1).padStart(4)} ${list[i][0]}.${a.method}(${args}) -> ${show(a.current)}`);
          if (!a.same) say(`  DIFFERS ${a.method}(${args}): current ${show(a.current)}, proposed ${show(a.proposed)}`);
        });
        ({ deliveries, differed } = report);
        detail = { dryRun: true, ...report };
      } else {
        // Said first, so nobody mistakes this for a dry run.
        const warning = `live: ${list.length} calls go to the live instance ${instanceId} and change its state (the shadow sees them too); use --dry-run to leave it untouched`;
        if (jsonMode()) process.stderr.write(`${warning}\n`);
        else say(warning);
        const shadow = await host.shadow(admin, cap, {
          privateArgs,
          onDifference: (d) => say(`  DIFFERS ${d.method}(${show(d.args).slice(1, -1)}): live ${show(d.live)}, shadow ${show(d.shadow)}`),
        });
        try {
          for (const [i, [facet, method, ...args]] of list.entries()) {
            const live = await host.E(targets[i])[method](...args).then(show, (e: Error) => `rejected: ${e.message}`);
            say(`${String(i + 1).padStart(4)} ${facet}.${method}(${show(args).slice(1, -1)}) -> ${live}`);
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
        { ...detail, promoted: promoted ?? null },
      );
      if (differed > 0 && promoted === undefined) process.exitCode = EXIT.problems;
    });
  });

program
  .command('preflight <instance> <bundle>')
  .description('dry-run an upgrade in a throwaway copy and list the problems it would hit (exit 3 if any)')
  .option('--private-args <json>', 'private arguments for the new incarnation (JSON)')
  .action(async (instanceText: string, file: string, opts: { privateArgs?: string }) => {
    const privateArgs = parseJsonOption('--private-args', opts.privateArgs);
    const bundle = await loadBundleArg(file);
    await withHost(async (host) => {
      const instanceId = resolveInstance(host, instanceText);
      const { cap } = upload(host, bundle);
      const result = await host.preflight(host.adminFacet(instanceId), cap, { privateArgs });
      const warned = (result.warnings ?? []).map((p) => `warning ${p.code}: ${p.message}`);
      out([result.ok ? 'pre-flight: no problems' : result.problems.map((p) => `${p.code}: ${p.message}`).join('\n'), ...warned].join('\n'), result);
      if (!result.ok) process.exitCode = EXIT.problems;
    });
  });
