// Commands that change or check an instance's code: upgrade, shadow, preflight.
// Exit codes (context.ts EXIT, docs/cli.md): 0 ok, 1 error, 3 a check found problems.
import { EXIT, globals, loadBundleArg, out, parseJsonOption, program, readExits, readJsonFile, upload, UsageError, withHost } from './context.js';
import { describeRefs, resolveInstance, resolveTarget } from './names.js';
import { showValue } from './values.js';

program
  .command('upgrade <instance> <bundle>')
  .description('upgrade an instance (id or label) to a new bundle, atomically')
  .option('--private-args <json>', 'private arguments for the new incarnation (JSON)')
  .option('--exits <file>', 'named exits the new bundle needs (JSON policy; docs/cli.md)')
  .action(async (instanceText: string, file: string, opts: { privateArgs?: string; exits?: string }) => {
    const privateArgs = parseJsonOption('--private-args', opts.privateArgs);
    const bundle = await loadBundleArg(file);
    const exits = readExits(opts.exits);
    await withHost(async (host) => {
      const instanceId = resolveInstance(host, instanceText);
      const { cap } = upload(host, bundle);
      const { incarnation } = await host.upgrade(host.adminFacet(instanceId), cap, { privateArgs, exits });
      out(`upgraded ${instanceId} to incarnation ${incarnation} (bundle ${bundle.bundleId.slice(0, 12)}…)`, { instanceId, incarnation, bundleId: bundle.bundleId });
    });
  });

program
  .command('shadow <instance> <bundle>')
  .description('run a proposed upgrade as a shadow while replaying a list of calls, showing each difference as it happens')
  .requiredOption('--calls <file>', 'JSON list of [facet, method, ...args] sent to the live instance (and so to the shadow; docs/cli.md)')
  .option('--private-args <json>', 'private arguments for the shadow incarnation (JSON)')
  .option('--promote', 'enact the upgrade afterwards if no answer differed')
  .action(async (instanceText: string, file: string, opts: { calls: string; privateArgs?: string; promote?: boolean }) => {
    const privateArgs = parseJsonOption('--private-args', opts.privateArgs);
    const calls = readJsonFile('--calls', opts.calls);
    if (!Array.isArray(calls) || !calls.every((c) => Array.isArray(c) && typeof c[0] === 'string' && typeof c[1] === 'string')) {
      throw new UsageError(`--calls ${opts.calls}: expected a list of [facet, method, ...args]`);
    }
    const bundle = await loadBundleArg(file);
    await withHost(async (host) => {
      const instanceId = resolveInstance(host, instanceText);
      const { cap } = upload(host, bundle);
      const show = (v: unknown) => showValue(v, describeRefs(host));
      const shadow = await host.shadow(host.adminFacet(instanceId), cap, {
        privateArgs,
        onDifference: (d) => process.stdout.write(`  DIFFERS ${d.method}(${show(d.args).slice(1, -1)}): live ${show(d.live)}, shadow ${show(d.shadow)}\n`),
      });
      for (const [i, [facet, method, ...args]] of (calls as [string, string, ...unknown[]][]).entries()) {
        const target = resolveTarget(host, `${instanceId}.${facet}`);
        const live = await host.E(target)[method](...args).then(show, (e: Error) => `rejected: ${e.message}`);
        if (!globals().json) process.stdout.write(`${String(i + 1).padStart(4)} ${facet}.${method}(${show(args).slice(1, -1)}) -> ${live}\n`);
      }
      const report = shadow.report();
      let promoted: number | undefined;
      if (opts.promote && report.differences.length === 0) promoted = (await shadow.promote()).incarnation;
      else await shadow.drop();
      out(
        `${report.deliveries} deliveries, ${report.differences.length} differed` +
          (promoted ? `; promoted: ${instanceId} is at incarnation ${promoted}` : opts.promote ? '; not promoted' : '; shadow dropped'),
        { ...report, promoted: promoted ?? null },
      );
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
      out(result.ok ? 'pre-flight: no problems' : result.problems.map((p) => `${p.code}: ${p.message}`).join('\n'), result);
      if (!result.ok) process.exitCode = EXIT.problems;
    });
  });
