// Replicas on etcd (issue #15): `replica` runs one (until SIGINT/SIGTERM),
// `replica status` shows the cluster, `replica export FILE` writes the state a
// new replica joins from, `replica call` sends as a client outside the
// cluster, `replica remove NAME` takes a member out. docs/operators-guide.md ("Replicas on etcd").
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Host } from '../index.js';
import { EtcdLog } from '../replica/etcd-log.js';
import { clusterStatus, showClusterStatus } from '../replica/cluster-status.js';
import { removeMember } from '../replica/membership.js';
import { Far, harden, makeMarshal } from '../marshal/endo.js';
import { checkInputId, inputDigest, InputIdConflict } from '../replica/inputs.js';
import { parseValue, showValue, toJson } from './values.js';
import { EXIT, out, program, stateDir, UsageError } from './context.js';

interface ReplicaOptions {
  etcd?: string;
  cluster?: string;
  name?: string;
  import?: string;
  cutter: boolean;
  lease: string;
  maxCranks?: string;
  retryWindow: string;
  id?: string;
}

const replica = program
  .command('replica')
  .description('run a replica of a cluster whose inputs etcd orders (status, export: see below)')
  .option('--etcd <urls>', 'etcd client URLs, comma-separated (e.g. http://127.0.0.1:2379)')
  .option('--cluster <name>', 'the cluster: replicas of one cluster share one log')
  .option('--name <name>', "this replica's name in the cluster (default: the state directory's name)")
  .option('--import <file>', 'start an empty --state directory from a state export (replica export)')
  .option('--no-cutter', 'never cut blocks (apply only)')
  .option('--lease <seconds>', "the block cutter's election lease", '5')
  .option('--max-cranks <n>', 'the run policy of the blocks this replica cuts: cranks per block', '1000')
  .option('--retry-window <blocks>', 'how many blocks an applied input id is remembered in the blocks this replica cuts (a retry must come within it)', '100000')
  .action(async (opts: ReplicaOptions) => {
    const { endpoints, cluster } = target(opts);
    const dir = stateDir();
    fs.mkdirSync(dir, { recursive: true });
    const name = opts.name ?? path.basename(dir).replace(/[^A-Za-z0-9_.-]/g, '-');
    const lease = Number(opts.lease);
    if (!(lease > 0)) throw new UsageError(`--lease must be a positive number of seconds, got ${opts.lease}`);
    const maxCranks = Number(opts.maxCranks);
    if (!(Number.isSafeInteger(maxCranks) && maxCranks > 0)) throw new UsageError(`--max-cranks must be a positive integer, got ${opts.maxCranks}`);
    const retryWindow = Number(opts.retryWindow);
    if (!(Number.isSafeInteger(retryWindow) && retryWindow > 0)) throw new UsageError(`--retry-window must be a positive integer (blocks), got ${opts.retryWindow}`);
    if (opts.import && !fs.existsSync(opts.import)) throw new UsageError(`--import ${opts.import}: no such file`);
    const host = await Host.open({
      path: dir,
      replicate: { endpoints, cluster, name, cutter: opts.cutter, leaseSeconds: lease, runPolicy: { maxCranks }, retryWindow, ...(opts.import ? { importFrom: opts.import } : {}) },
    });
    const r = host.replica!;
    out(`replica ${name} of cluster ${cluster}: state ${dir}, at height ${r.height()}`, { event: 'started', name, cluster, height: r.height() });
    const stop = async (code: number) => {
      await host.close();
      process.exit(code);
    };
    r.on('halt', (h: { height: number; reason: string }) => {
      process.stderr.write(`quickvat: replica ${name} halted at height ${h.height}: ${h.reason}\n`);
      void stop(EXIT.problems);
    });
    r.on('disputed', (d: { height: number; detail: string } | null) => {
      if (d) process.stderr.write(`quickvat: replica ${name} PAUSED: its state hash at height ${d.height} is disputed: ${d.detail}\n`);
      else process.stderr.write(`quickvat: replica ${name} resumed: the dispute was decided\n`);
    });
    process.on('SIGINT', () => void stop(EXIT.ok));
    process.on('SIGTERM', () => void stop(EXIT.ok));
    await new Promise(() => {}); // runs until a signal or a halt
  });

replica
  .command('status')
  .description('members, liveness, heights, state hashes, halts and disputes, and the block cutter of a cluster (needs --etcd and --cluster); exits 3 when a member is halted or disputed')
  .action(async () => {
    const { endpoints, cluster } = target(replica.opts() as ReplicaOptions);
    const log = new EtcdLog(endpoints, cluster);
    try {
      const status = await clusterStatus(log);
      if (!status) throw new UsageError(`cluster ${cluster} does not exist in the etcd at ${endpoints.join(',')}: no replica ever joined it (check --cluster and --etcd)`);
      out(showClusterStatus(status), status);
      if (status.replicas.some((r) => r.halted || r.disputed)) process.exitCode = EXIT.problems;
    } finally {
      log.close();
    }
  });

replica
  .command('remove <name>')
  .description(
    'take a stopped replica out of the cluster for good: its hashes stop counting, the majority is of the members left, and the name is not used again (needs --etcd, --cluster);' +
      ' refused when it would halt the members left (a dispute only it could decide) unless --force',
  )
  .option('--force', 'remove it even if the members left would halt')
  .action(async (name: string, removeOpts: { force?: boolean }) => {
    const { endpoints, cluster } = target(replica.opts() as ReplicaOptions);
    const log = new EtcdLog(endpoints, cluster);
    try {
      try {
        await removeMember(log, name, { force: removeOpts.force === true });
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const members = await log.members();
      out(`removed ${name} from cluster ${cluster}; members now: ${members.join(', ') || '(none)'} (a majority is ${Math.floor(members.length / 2) + 1})`, { removed: name, members });
    } finally {
      log.close();
    }
  });

replica
  .command('export <file>')
  .description("write the state directory's committed state (a stopped replica's) for a new replica to --import")
  .action(async (file: string) => {
    const dir = stateDir();
    if (!fs.existsSync(path.join(dir, 'data.mdb'))) throw new UsageError(`no quickvat state in ${dir}`);
    // autoRun off: a replica's queued work runs only in the log's blocks.
    const host = await Host.open({ path: dir, autoRun: false });
    try {
      const meta = host.exportState(file);
      out(`exported height ${meta.height} (${meta.entries} entries, ${meta.bytes} bytes, state hash ${meta.stateHash.slice(0, 16)}…) to ${file}`, meta);
    } finally {
      await host.close();
    }
  });

replica
  .command('call <target> <method> [args...]')
  .description('send a message through the log, as a client outside the cluster, and print the answer once a replica has committed it (needs --etcd, --cluster)')
  .option('--id <id>', 'the input id (default random): a retry of a call that failed with "may still commit" reuses it, and is applied at most once')
  .action(async (targetRef: string, method: string, args: string[], callOpts: { id?: string }) => {
    const { endpoints, cluster } = target(replica.opts() as ReplicaOptions);
    if (!/^ko\d+$/.test(targetRef)) throw new UsageError(`${targetRef}: a target is an object reference like ko12 (from refOf, or a replica's call --json output)`);
    const refs = new Map<object, string>();
    const ifaces = new Map<object, string>();
    const byRef = new Map<string, object>();
    const standIn = (ref: string, iface?: string): object => {
      let o = byRef.get(ref);
      if (!o) {
        o = Far('reference', {});
        refs.set(o, ref);
        byRef.set(ref, o);
      }
      if (iface) ifaces.set(o, iface);
      return o;
    };
    const marshal = makeMarshal((v: unknown) => refs.get(v as object) as string, (slot: string, iface?: string) => standIn(slot, iface), {
      serializeBodyFormat: 'smallcaps',
      errorTagging: 'off',
      marshalSaveError: () => {},
    });
    const values = args.map((a, i) => {
      try {
        return JSON.parse(a, (_k, v) => (v && typeof v === 'object' && typeof v.$ref === 'string' ? standIn(v.$ref) : parseValue(v)));
      } catch {
        throw new UsageError(`argument ${i + 1} is not JSON: ${a}`);
      }
    });
    const log = new EtcdLog(endpoints, cluster);
    try {
      let id: string;
      try {
        id = callOpts.id === undefined ? crypto.randomUUID() : checkInputId(callOpts.id);
      } catch (err) {
        throw new UsageError(`--id: ${(err as Error).message}`);
      }
      const argsData = marshal.toCapData(harden(values)) as { body: string; slots: string[] };
      const retry = `the call may still commit: retry with --id ${id} to have it applied at most once`;
      let outcome;
      try {
        const input = { type: 'send', target: targetRef, method, args: argsData } as const;
        await log.submit({ id, origin: 'cli', reply: true, input });
        outcome = await log.awaitReply(id, 60_000, inputDigest(input));
      } catch (err) {
        if (err instanceof InputIdConflict) throw new UsageError(err.message);
        throw new Error(`${(err as Error).message}; ${retry}`, { cause: err });
      }
      const value = marshal.fromCapData(outcome.data as never);
      const describe = (v: object) => (refs.has(v) ? { ref: refs.get(v)!, iface: ifaces.get(v) } : undefined);
      if (outcome.rejected) throw new UsageError(`${targetRef}.${method}: ${(value as Error)?.message ?? showValue(value, describe)}`);
      out(showValue(value, describe), { result: toJson(value, describe) });
    } finally {
      log.close();
    }
  });

function target(opts: ReplicaOptions): { endpoints: string[]; cluster: string } {
  if (!opts.etcd) throw new UsageError('--etcd URL is required (etcd client URLs, comma-separated)');
  if (!opts.cluster) throw new UsageError('--cluster NAME is required');
  return { endpoints: opts.etcd.split(',').map((s) => s.trim()).filter(Boolean), cluster: opts.cluster };
}
