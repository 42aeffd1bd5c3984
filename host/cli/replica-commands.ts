// Replicas on etcd (issue #15): `replica` runs one (until SIGINT/SIGTERM),
// `replica status` shows the cluster, `replica export FILE` writes the state a
// new replica joins from, `replica call` sends as a client outside the cluster. docs/operators-guide.md ("Replicas on etcd").
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Host } from '../index.js';
import { EtcdLog } from '../replica/etcd-log.js';
import { Far, harden, makeMarshal } from '../marshal/endo.js';
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
  .action(async (opts: ReplicaOptions) => {
    const { endpoints, cluster } = target(opts);
    const dir = stateDir();
    fs.mkdirSync(dir, { recursive: true });
    const name = opts.name ?? path.basename(dir).replace(/[^A-Za-z0-9_.-]/g, '-');
    const lease = Number(opts.lease);
    if (!(lease > 0)) throw new UsageError(`--lease must be a positive number of seconds, got ${opts.lease}`);
    const maxCranks = Number(opts.maxCranks);
    if (!(Number.isSafeInteger(maxCranks) && maxCranks > 0)) throw new UsageError(`--max-cranks must be a positive integer, got ${opts.maxCranks}`);
    if (opts.import && !fs.existsSync(opts.import)) throw new UsageError(`--import ${opts.import}: no such file`);
    const host = await Host.open({
      path: dir,
      replicate: { endpoints, cluster, name, cutter: opts.cutter, leaseSeconds: lease, runPolicy: { maxCranks }, ...(opts.import ? { importFrom: opts.import } : {}) },
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
    process.on('SIGINT', () => void stop(EXIT.ok));
    process.on('SIGTERM', () => void stop(EXIT.ok));
    await new Promise(() => {}); // runs until a signal or a halt
  });

replica
  .command('status')
  .description('heights, state hashes and the block cutter of a cluster (needs --etcd and --cluster)')
  .action(async () => {
    const { endpoints, cluster } = target(replica.opts() as ReplicaOptions);
    const log = new EtcdLog(endpoints, cluster);
    try {
      const [{ head }, cutter, pruned, members, statuses] = await Promise.all([
        log.head(),
        log.election(5).leader(),
        log.pruned(),
        log.members(),
        log.statuses(),
      ]);
      const byName = new Map(statuses.map((s) => [s.name, s]));
      const rows = members.map((m) => ({ name: m, height: byName.get(m)?.height ?? null, hash: byName.get(m)?.hash ?? null, halted: byName.get(m)?.halted ?? null, cutter: m === cutter }));
      const lines = [
        `cluster ${cluster}: head ${head.height}, cutter ${cutter ?? '(none)'}${pruned ? `, blocks through ${pruned} pruned` : ''}`,
        ...rows.map(
          (r) =>
            `  ${r.name.padEnd(16)} height ${String(r.height ?? '-').padStart(6)}  hash ${r.hash ? `${r.hash.slice(0, 16)}…` : '-'}` +
            `${r.cutter ? '  (cutter)' : ''}${r.halted ? `  HALTED at ${r.halted.height}: ${r.halted.reason}` : ''}`,
        ),
      ];
      out(lines.join('\n'), { cluster, head: head.height, cutter: cutter ?? null, pruned, replicas: rows });
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
  .action(async (targetRef: string, method: string, args: string[]) => {
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
      const id = crypto.randomUUID();
      const argsData = marshal.toCapData(harden(values)) as { body: string; slots: string[] };
      await log.submit({ id, origin: 'cli', reply: true, input: { type: 'send', target: targetRef, method, args: argsData } });
      const outcome = await log.awaitReply(id, 60_000);
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
