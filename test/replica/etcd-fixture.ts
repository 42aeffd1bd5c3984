// Real etcd processes for the replica tests (Debian's etcd-server, as .ci/run
// installs it), and replica child processes run through the CLI. Ports are
// free ports the kernel hands out at run time (listen on port 0, close, use),
// so suite runs side by side on one machine do not cross-talk; an etcd that
// loses its port to someone else in between is started again on new ones.
// QUICKVAT_ETCD_PORT_BASE=N uses N, N+1, ... instead.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ETCD = '/usr/bin/etcd';
export const etcdInstalled = fs.existsSync(ETCD) && spawnSync(ETCD, ['--version']).status === 0;

const handedOut = new Set<number>();
let nextBase = Number(process.env.QUICKVAT_ETCD_PORT_BASE ?? 0);

async function port(): Promise<number> {
  if (nextBase > 0) return nextBase++;
  for (;;) {
    const p = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    if (!handedOut.has(p)) {
      handedOut.add(p);
      return p;
    }
  }
}

export interface EtcdNode {
  readonly name: string;
  readonly clientUrl: string;
  readonly dir: string;
  proc: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface EtcdCluster {
  readonly nodes: EtcdNode[];
  readonly endpoints: string[];
  stop(): Promise<void>;
}

// Under the test run's own directory when mocha runs (test/tmpdir-hook.ts), removed when the run ends.
export function tmpdir(prefix = 'quickvat-replica-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * The etcd of the enclosing describe: `size` members started before its
 * tests (which skip when etcd is not installed: .ci/run installs etcd-server)
 * and stopped after them. Read its fields inside tests, once it has started.
 */
export function etcdForSuite(size = 1): EtcdCluster {
  let started: EtcdCluster | undefined;
  before(async function () {
    if (!etcdInstalled) this.skip();
    started = await startEtcd(size);
  });
  after(async () => started?.stop());
  const cluster = () => {
    if (!started) throw new Error('the suite etcd is not running');
    return started;
  };
  return {
    get nodes() {
      return cluster().nodes;
    },
    get endpoints() {
      return cluster().endpoints;
    },
    stop: () => cluster().stop(),
  };
}

/** Starts `size` etcd members on 127.0.0.1 with fast elections, and waits until they serve. */
export async function startEtcd(size = 1): Promise<EtcdCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startEtcdOnce(size);
    } catch (err) {
      if (attempt >= 3 || !/exited before it served/.test((err as Error).message)) throw err;
    }
  }
}

async function startEtcdOnce(size: number): Promise<EtcdCluster> {
  const members: { name: string; client: number; peer: number; dir: string }[] = [];
  for (let i = 0; i < size; i++) members.push({ name: `e${i}`, client: await port(), peer: await port(), dir: tmpdir('quickvat-etcd-') });
  const initial = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
  const nodes: EtcdNode[] = members.map((m) => {
    const clientUrl = `http://127.0.0.1:${m.client}`;
    const args = [
      '--name', m.name, '--data-dir', m.dir,
      '--listen-client-urls', clientUrl, '--advertise-client-urls', clientUrl,
      '--listen-peer-urls', `http://127.0.0.1:${m.peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
      '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', `qv-${members[0].peer}`,
      '--heartbeat-interval', '50', '--election-timeout', '500', '--logger', 'zap', '--log-outputs', path.join(m.dir, 'etcd.log'),
    ];
    const proc = spawn(ETCD, args, { stdio: 'ignore' });
    const node: EtcdNode = {
      name: m.name,
      clientUrl,
      dir: m.dir,
      proc,
      kill: (signal = 'SIGKILL') => stopProcess(node.proc, signal),
    };
    return node;
  });
  const stopAll = async () => {
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    for (const m of members) fs.rmSync(m.dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map((n) => waitHealthy(n, 20_000)));
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    nodes,
    endpoints: nodes.map((n) => n.clientUrl),
    stop: stopAll,
  };
}

async function waitHealthy(node: EtcdNode, ms: number): Promise<void> {
  const url = node.clientUrl;
  const until = Date.now() + ms;
  let last = '';
  while (Date.now() < until) {
    // e.g. its port was taken between finding it free and etcd binding it
    if (node.proc.exitCode !== null) throw new Error(`etcd ${node.name} at ${url} exited before it served (exit code ${node.proc.exitCode})`);
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      last = await res.text();
      if (res.ok && /"health":\s*"true"/.test(last)) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`etcd at ${url} not healthy after ${ms} ms: ${last}`);
}

export function stopProcess(proc: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill(signal);
  });
}

const CLI = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'host', 'cli', 'main.js');

/** Runs `quickvat replica` in a child process; its output is kept for failure messages. */
export function spawnReplica(options: { state: string; endpoints: string[]; cluster: string; name: string; lease?: number; maxCranks?: number; cutter?: boolean }): ChildProcess & { output: () => string } {
  const args = [CLI, '--state', options.state, 'replica', '--etcd', options.endpoints.join(','), '--cluster', options.cluster, '--name', options.name];
  if (options.lease) args.push('--lease', String(options.lease));
  if (options.maxCranks) args.push('--max-cranks', String(options.maxCranks));
  if (options.cutter === false) args.push('--no-cutter');
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }) as ChildProcess & { output: () => string };
  let text = '';
  child.stdout!.on('data', (d) => (text += d));
  child.stderr!.on('data', (d) => (text += d));
  child.output = () => text;
  return child;
}

/** Runs the CLI to completion. */
export function runCli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI to completion without blocking this process's event loop (its replicas keep running). */
export function runCliAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `ms`. */
export async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The member that is etcd's Raft leader, asked through the v3 JSON gateway. */
export async function etcdLeader(cluster: Pick<EtcdCluster, 'nodes'>) {
  for (const node of cluster.nodes) {
    try {
      const res = await fetch(`${node.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
      const status = (await res.json()) as { header: { member_id: string }; leader: string };
      for (const candidate of cluster.nodes) {
        const r = await fetch(`${candidate.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
        if (((await r.json()) as { header: { member_id: string } }).header.member_id === status.leader) return candidate;
      }
    } catch {
      // that node is down; ask another
    }
  }
  throw new Error('no etcd leader found');
}
