// A replica: a host whose every state change comes from the cluster's log in
// etcd (issue #15). It applies blocks in height order (apply-block.ts),
// publishes its state hash for each, halts when its hash at some height
// differs from the one a majority of the cluster's replicas reached, runs for
// block cutter (cutter.ts), and lets clients submit inputs: a submission's
// promise settles when the block holding it has committed here.
import crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Host, Installation, InstanceKit } from '../host.js';
import { bundlecapInfo, isBundlecap, type Bundlecap } from '../bundles/module-store.js';
import type { SourceBundle } from '../bundles/manifest.js';
import type { ExitPolicy } from '../bundles/exit-policy.js';
import type { Capdata, Kref } from '../kernel/refs.js';
import { resolveRunPolicy, type RunPolicy } from '../kernel/run-policy.js';
import { harden } from '../marshal/endo.js';
import { codec } from '../store/codec.js';
import { applyBlock, appliedHeight } from './apply-block.js';
import { Cutter, withTimeout } from './cutter.js';
import { EtcdLog, type ReplicaStatus } from './etcd-log.js';
import { judgeHashes } from './divergence.js';
import { checkBlock, checkInput, MAX_INPUT_BYTES, type BlockRecord, type CodeRef, type Input, type Outcome } from './inputs.js';

export interface ReplicateOptions {
  /** etcd client URLs, e.g. ["http://127.0.0.1:2379"]. */
  readonly endpoints: readonly string[];
  /** The cluster: replicas of one cluster share one log. */
  readonly cluster: string;
  /** This replica's name, unique in the cluster (letters, digits, "_", ".", "-"). */
  readonly name: string;
  /** Run for block cutter (default true). */
  readonly cutter?: boolean;
  /** The run policy of the blocks this replica cuts (defaults: maxCranks 1000, run-policy.ts otherwise). */
  readonly runPolicy?: RunPolicy;
  /** The cutter's election lease in seconds (default 5; etcd's minimum is about 2). */
  readonly leaseSeconds?: number;
  /** Most inputs per block (default 500). */
  readonly maxBlockInputs?: number;
  /** How long the cutter waits for more inputs once one is waiting, in ms (default 5). */
  readonly batchMs?: number;
  /** Start from this state export (host.exportState) when the store is empty. */
  readonly importFrom?: string;
}

export interface HaltReport {
  readonly height: number;
  readonly reason: string;
}

const SUBMIT_ATTEMPTS = 8;

type Pending = { resolve: (o: Outcome) => void; reject: (e: Error) => void };

export class Replica extends EventEmitter {
  /** True while a block is being applied: the only time the host's store may change. */
  applying = false;
  stopped = false;
  halted: HaltReport | null = null;
  readonly name: string;
  private readonly log: EtcdLog;
  private cutter: Cutter | null = null;
  private readonly pending = new Map<string, Pending>();
  /** Inputs whose outcome a client outside the cluster waits for in etcd. */
  private readonly replyTo = new Set<string>();
  /** Own hashes of heights not yet agreed by a majority. */
  private readonly unconfirmed = new Map<number, string>();
  private lastHash: string | null = null;
  private pumping = false;
  private again = false;
  private checking = false;
  private recheck = false;
  private readonly watchers: Promise<{ cancel(): Promise<void> }>[] = [];
  private poll: NodeJS.Timeout | null = null;

  private constructor(
    private readonly host: Host,
    private readonly options: ReplicateOptions,
  ) {
    super();
    if (typeof options?.name !== 'string' || !/^[A-Za-z0-9_.-]{1,100}$/.test(options.name)) {
      throw new TypeError(`replicate.name must be 1-100 letters, digits, "_", "." or "-", got ${JSON.stringify(options?.name)}`);
    }
    this.name = options.name;
    this.log = new EtcdLog(options.endpoints, options.cluster);
  }

  /** Connects, joins the cluster, catches up in the background and runs for cutter. */
  static async start(host: Host, options: ReplicateOptions): Promise<Replica> {
    const replica = new Replica(host, options);
    host.store.setWriteGuard((key) => {
      if (!replica.applying) {
        throw new Error(
          `this host is replica ${replica.name} of cluster ${options.cluster}: its state changes only through the log` +
            ` (use await host.replica.install/startInstance/upgrade/suspend/resume/addBundle, or host.E); refused a write of ${key}`,
        );
      }
    });
    try {
      await replica.log.join(replica.name);
      await replica.begin();
    } catch (err) {
      await replica.stop();
      throw err;
    }
    return replica;
  }

  private async begin(): Promise<void> {
    this.watchers.push(this.log.watchBlocks(() => this.pump()));
    this.watchers.push(this.log.watchHashes(() => this.checkHashes()));
    for (const w of this.watchers) w.catch(() => {});
    // Watches reconnect by themselves; the poll covers what a reconnect misses.
    this.poll = setInterval(() => this.pump(), 1000);
    this.poll.unref();
    await this.log.publishStatus(this.status());
    this.pump();
    if (this.options.cutter ?? true) {
      this.cutter = new Cutter(this.log, this, {
        policy: resolveRunPolicy({ maxCranks: 1000, ...this.options.runPolicy }),
        maxInputs: this.options.maxBlockInputs ?? 500,
        maxBytes: MAX_INPUT_BYTES,
        batchMs: this.options.batchMs ?? 5,
        leaseSeconds: this.options.leaseSeconds ?? 5,
      });
      this.cutter.start();
    }
  }

  /** The height of the last block applied (committed) here. */
  height(): number {
    return appliedHeight(this.host);
  }

  hasRunnableWork(): boolean {
    return this.host.kernel.hasRunnableWork();
  }

  /** True while this replica is the block cutter. */
  get isCutter(): boolean {
    return this.cutter?.isLeader ?? false;
  }

  status(): ReplicaStatus & { cutter: boolean } {
    return { name: this.name, height: this.height(), hash: this.lastHash, ...(this.halted ? { halted: this.halted } : {}), cutter: this.isCutter };
  }

  waitForHeight(height: number, ms = Infinity): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.height() >= height) return resolve();
      const timer = Number.isFinite(ms) ? setTimeout(done, ms) : null;
      const self = this;
      function done() {
        if (timer) clearTimeout(timer);
        self.off('applied', onApplied);
        self.off('halt', onHalt);
        resolve();
      }
      function onApplied() {
        if (self.height() >= height) done();
      }
      function onHalt(h: HaltReport) {
        done();
        if (!Number.isFinite(ms)) reject(new Error(`replica ${self.name} halted at height ${h.height}: ${h.reason}`));
      }
      this.on('applied', onApplied);
      this.on('halt', onHalt);
    });
  }

  // ---------------------------------------------------------------- applying

  private pump(): void {
    if (this.stopped || this.halted) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    void (async () => {
      try {
        do {
          this.again = false;
          await this.catchUp();
        } while (this.again && !this.stopped && !this.halted);
      } catch {
        // etcd unreachable: the next watch event or poll retries
      } finally {
        this.pumping = false;
      }
    })();
  }

  private async catchUp(): Promise<void> {
    for (;;) {
      if (this.stopped || this.halted) return;
      const from = this.height() + 1;
      const blocks = await this.log.blocks(from, 20);
      if (blocks.length === 0) {
        const pruned = await this.log.pruned();
        if (pruned >= from) {
          this.halt(from - 1, `blocks through ${pruned} were pruned from the log; this replica is at ${from - 1}: join from an export at height ${pruned} or later`);
        }
        return;
      }
      for (const { block } of blocks) {
        if (this.stopped || this.halted) return;
        let checked: BlockRecord;
        try {
          checked = checkBlock(block, this.height() + 1);
        } catch (err) {
          // Not an etcd hiccup: retrying would wait forever. Stop and say why.
          this.halt(this.height(), (err as Error).message);
          return;
        }
        await this.apply(checked);
      }
    }
  }

  private async apply(block: BlockRecord): Promise<void> {
    for (const i of block.inputs) if (i.reply === true) this.replyTo.add(i.id);
    let applied;
    this.applying = true;
    try {
      applied = applyBlock(this.host, block, (id, outcome) => this.deliver(id, outcome));
    } catch (err) {
      this.applying = false;
      this.halt(block.height, `applying block ${block.height} failed: ${(err as Error).message}`);
      return;
    } finally {
      this.applying = false;
    }
    const hash = this.host.stateHash();
    this.lastHash = hash;
    this.unconfirmed.set(block.height, hash);
    for (const [id, outcome] of applied.outcomes) void outcome.then((o) => this.deliver(id, o));
    this.emit('applied', { height: block.height, hash, cranks: applied.cranks, inputs: block.inputs.length });
    this.cutter?.poke();
    await this.log.publish(this.name, block.height, hash, this.status());
    this.checkHashes();
  }

  private deliver(id: string, outcome: Outcome): void {
    this.emit('outcome', { id, ...outcome });
    if (this.replyTo.delete(id)) void this.log.reply(id, outcome).catch(() => {});
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    p.resolve(outcome);
  }

  // ---------------------------------------------------------------- divergence

  private checkHashes(): void {
    if (this.checking) {
      this.recheck = true;
      return;
    }
    this.checking = true;
    void (async () => {
      try {
        do {
          this.recheck = false;
          await this.checkOnce();
        } while (this.recheck && !this.halted && !this.stopped);
      } catch {
        // etcd unreachable: the next hash event retries
      } finally {
        this.checking = false;
      }
    })();
  }

  // Heights in order, so the first divergent block is the one named.
  private async checkOnce(): Promise<void> {
    if (this.unconfirmed.size === 0 || this.halted) return;
    const members = await this.log.members();
    for (const height of [...this.unconfirmed.keys()].sort((a, b) => a - b)) {
      const verdict = judgeHashes(await this.log.hashesAt(height), this.name, members.length);
      if (verdict.kind === 'undecided') return;
      if (verdict.kind === 'diverged') {
        this.halt(height, `state hash ${this.unconfirmed.get(height)} after block ${height} differs from ${verdict.detail}; first divergent block: ${height}`);
        return;
      }
      this.unconfirmed.delete(height);
    }
  }

  private halt(height: number, reason: string): void {
    if (this.halted) return;
    this.halted = { height, reason };
    void this.cutter?.stop();
    for (const p of this.pending.values()) p.reject(new Error(`replica ${this.name} halted at height ${height}: ${reason}`));
    this.pending.clear();
    this.emit('halt', this.halted);
    void this.log.publishStatus(this.status()).catch(() => {});
  }

  // ---------------------------------------------------------------- clients

  /** Writes `input` to the log; resolves with its outcome once the block holding it commits here. */
  async submit(input: Input): Promise<Outcome> {
    checkInput(input);
    if (this.halted) throw new Error(`replica ${this.name} halted at height ${this.halted.height}: ${this.halted.reason}`);
    if (this.stopped) throw new Error(`replica ${this.name} is closed`);
    const logged = { id: crypto.randomUUID(), origin: this.name, input };
    const bytes = codec.encode(logged).length;
    if (bytes > MAX_INPUT_BYTES) throw new RangeError(`a ${input.type} input of ${bytes} bytes is over the log's limit of ${MAX_INPUT_BYTES} bytes; split it (e.g. upload pieces one at a time)`);
    const outcome = new Promise<Outcome>((resolve, reject) => this.pending.set(logged.id, { resolve, reject }));
    // A write that timed out (e.g. while etcd elects a new leader) may still
    // have committed: write it again under the same id, which replicas apply
    // at most once (apply-block.ts).
    for (let attempt = 1; ; attempt++) {
      try {
        await this.log.submit(logged);
        break;
      } catch (err) {
        if (attempt >= SUBMIT_ATTEMPTS || this.stopped) {
          this.pending.delete(logged.id);
          throw new Error(`the input could not be written to etcd (${attempt} attempts): ${(err as Error).message}`, { cause: err });
        }
        await new Promise((r) => setTimeout(r, 250 * attempt));
      }
    }
    this.cutter?.poke();
    return outcome;
  }

  private async value(input: Input): Promise<unknown> {
    const { rejected, data } = await this.submit(input);
    const value = this.host.fromCapdata(data);
    if (rejected) throw value;
    return value;
  }

  /** A send (host.E on a replica comes here); resolves with the result's capdata outcome. */
  send(target: Kref, method: string, args: Capdata): Promise<Outcome> {
    return this.submit({ type: 'send', target, method, args });
  }

  async install(code: Bundlecap | string, options: { label?: string; budget?: bigint; exits?: ExitPolicy } = {}): Promise<Installation> {
    return harden((await this.value({ type: 'install', code: codeRef(code), options: this.host.toCapdata(harden({ ...options })) })) as Installation);
  }

  async startInstance(
    installation: Installation,
    options: { privateArgs?: unknown; parameters?: unknown; vatParameters?: unknown; name?: string; budget?: bigint } = {},
  ): Promise<InstanceKit> {
    const id = await this.value({ type: 'start', installationId: installation.installationId, options: this.host.toCapdata(harden({ ...options })) });
    return this.host.instanceKit(id as string);
  }

  async upgrade(instanceId: string, code: Bundlecap | string, options: { privateArgs?: unknown; vatParameters?: unknown; exits?: ExitPolicy } = {}): Promise<{ incarnation: number }> {
    return (await this.value({ type: 'upgrade', instanceId, code: codeRef(code), options: this.host.toCapdata(harden({ ...options })) })) as { incarnation: number };
  }

  async suspend(instanceId: string, reason?: string): Promise<void> {
    await this.value({ type: 'suspend', instanceId, ...(reason === undefined ? {} : { reason }) });
  }

  async resume(instanceId: string): Promise<void> {
    await this.value({ type: 'resume', instanceId });
  }

  /** Uploads the pieces the replica lacks (one input each), then installs the manifest; resolves with the bundlecap. */
  async addBundle(bundle: Pick<SourceBundle, 'manifest' | 'pieces'>): Promise<Bundlecap> {
    for (const hash of this.host.bundles.missing(bundle.manifest)) await this.value({ type: 'put', pieces: [[hash, bundle.pieces.get(hash)!]] });
    const id = (await this.value({ type: 'installBundle', manifest: bundle.manifest })) as string;
    return this.host.bundles.bundlecap(id)!;
  }

  /** Deletes blocks up to `height` from etcd and compacts its history (replicas behind it must join from an export). */
  async pruneLog(height: number): Promise<void> {
    if (!(Number.isSafeInteger(height) && height >= 0 && height <= this.height())) {
      throw new RangeError(`prune height must be an integer from 0 to this replica's height ${this.height()}, got ${height}`);
    }
    await this.log.prune(height);
  }

  /** The underlying log (status tools and tests read the cluster through it). */
  get etcd(): EtcdLog {
    return this.log;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.poll) clearInterval(this.poll);
    await this.cutter?.stop();
    for (const w of this.watchers) await withTimeout((async () => (await w)?.cancel())(), 1000);
    // A block is applied synchronously, so none is half-applied here; what is
    // left is etcd calls in flight, which must not hold up closing the store.
    for (let i = 0; i < 100 && (this.pumping || this.checking); i++) await new Promise((r) => setTimeout(r, 10));
    for (const p of this.pending.values()) p.reject(new Error(`replica ${this.name} was closed before the input's block committed`));
    this.pending.clear();
    this.host.store.setWriteGuard(null);
    this.log.close();
  }
}

function codeRef(code: Bundlecap | string): CodeRef {
  if (typeof code === 'string') return { source: code };
  if (isBundlecap(code)) return { bundleId: bundlecapInfo(code).bundleId };
  throw new TypeError('expected a bundlecap (from host.replica.addBundle) or contract source text');
}
