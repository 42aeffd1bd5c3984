// A replica: a host whose every state change comes from the cluster's log in
// etcd (issue #15). It applies blocks in height order (apply-block.ts),
// publishes its state hash for each, halts when its hash at some height
// differs from the one a majority of the cluster's members confirmed, pauses
// while its hash is disputed (divergence.ts, hash-check.ts), runs for block
// cutter (cutter.ts), and lets clients submit inputs: a submission's promise
// settles when the block holding it has committed here. Its store is bound to
// its cluster (store-binding.ts) and its name is claimed on a lease while it
// runs (membership.ts).
import crypto from 'node:crypto';
import type { Host } from '../host.js';
import { resolveRunPolicy } from '../kernel/run-policy.js';
import type { HaltReport, ReplicateOptions } from './replicate-options.js';
import { codec } from '../store/codec.js';
import { applyBlock, appliedHeight, wasApplied } from './apply-block.js';
import { Cutter, withTimeout } from './cutter.js';
import { EtcdLog, type ReplicaStatus } from './etcd-log.js';
import { HashCheck, type Dispute } from './hash-check.js';
import { Rerun } from './rerun.js';
import { checkBlock, checkInput, checkInputId, DEFAULT_RETRY_WINDOW, inputDigest, InputIdConflict, MAX_INPUT_BYTES, type BlockRecord, type Input, type Outcome } from './inputs.js';
import { createGenesis, NameClaim, readGenesis, register } from './membership.js';
import { bindStore, HALT_KEY, UNPUBLISHED_KEY } from './store-binding.js';
import type { ExportMeta } from '../store/state-export.js';
import { mayCommit, SubmitError, type SubmitOptions } from './submission.js';
import { ReplicaClient } from './replica-client.js';

export { SubmitError, type SubmitOptions } from './submission.js';

export type { HaltReport, ReplicateOptions } from './replicate-options.js';

const SUBMIT_ATTEMPTS = 8;

/** A submission waiting for its block; `digest`: its content's (an outcome of other content under its id is not its own). */
type Pending = { digest: string; resolve: (o: Outcome) => void; reject: (e: Error) => void; rev?: string };

export class Replica extends ReplicaClient {
  /** True while a block is being applied: the only time the host's store may change. */
  applying = false;
  stopped = false;
  halted: HaltReport | null = null;
  readonly name: string;
  private readonly log: EtcdLog;
  private cutter: Cutter | null = null;
  private readonly pending = new Map<string, Pending>();
  /** Heights whose hash publish failed in etcd: height -> hash, published again from the poll. */
  private readonly unpublished = new Map<number, string>();
  /** Inputs whose outcome a client outside the cluster waits for in etcd: id -> content digest. */
  private readonly replyTo = new Map<string, string>();
  private readonly checker: HashCheck;
  private claim: NameClaim | null = null;
  private lastHash: string | null = null;
  private readonly pumper = new Rerun(
    () => this.catchUp(),
    () => !this.paused,
  );
  private readonly watchers: Promise<{ cancel(): Promise<void> }>[] = [];
  private poll: NodeJS.Timeout | null = null;

  private constructor(
    host: Host,
    private readonly options: ReplicateOptions,
  ) {
    super(host);
    if (typeof options?.name !== 'string' || !/^[A-Za-z0-9_.-]{1,100}$/.test(options.name)) {
      throw new TypeError(`replicate.name must be 1-100 letters, digits, "_", "." or "-", got ${JSON.stringify(options?.name)}`);
    }
    this.name = options.name;
    const window = options.retryWindow;
    if (window !== undefined && !(Number.isSafeInteger(window) && window > 0)) throw new TypeError(`replicate.retryWindow must be a positive integer (blocks), got ${window}`);
    this.log = new EtcdLog(options.endpoints, options.cluster, options.callTimeoutMs);
    this.checker = new HashCheck(this.log, this.name, {
      diverged: (height, reason) => this.halt(height, reason),
      disputed: (dispute) => this.onDispute(dispute),
      removed: () => this.halt(this.height(), `replica ${this.name} was removed from cluster ${options.cluster} (replica remove)`),
    });
  }

  /**
   * Connects, checks the store against the cluster (binding it at the first
   * join), claims the name, registers as a member, catches up in the
   * background and runs for cutter. `imported`: what the export this store
   * was just loaded from says it is.
   */
  static async start(host: Host, options: ReplicateOptions, imported?: ExportMeta): Promise<Replica> {
    const replica = new Replica(host, options);
    host.store.setWriteGuard((key) => {
      if (!replica.applying) {
        throw new Error(
          `this host is replica ${replica.name} of cluster ${options.cluster}: its state changes only through the log` +
            ` (use await host.replica.install/startInstance/upgrade/suspend/resume/addBundle, or host.E); refused a write of ${key}`,
        );
      }
    });
    const kept = host.store.get(HALT_KEY) as HaltReport | undefined;
    if (kept) replica.halted = kept;
    try {
      const log = replica.log;
      const binding = await bindStore(
        host.store,
        { cluster: options.cluster, name: replica.name, height: replica.height(), hasState: host.store.hasState(), ...(imported ? { imported } : {}) },
        { read: () => readGenesis(log), create: () => createGenesis(log, crypto.randomUUID()) },
        (key, value) => replica.writeLocal(key, value),
      );
      replica.claim = new NameClaim(log, replica.name, binding.storeId, options.leaseSeconds ?? 5, {
        lost: (reason) => replica.halt(replica.height(), `lost its name: ${reason}`, false),
        lapsed: () => replica.emit('lapsed'),
        held: () => void replica.republish(),
      });
      await replica.claim.claim(true);
      await register(log, replica.name);
      await replica.begin();
    } catch (err) {
      await replica.stop();
      throw err;
    }
    return replica;
  }

  private async begin(): Promise<void> {
    // The hash of the height it stopped at (killed before publishing it, or
    // restarted): published and checked again. Taken before anything can
    // apply a block, so that hash and height go together.
    const height = this.height();
    const hash = height > 0 && !this.halted ? this.host.stateHash() : null;
    // A halt kept in the store is recorded under the name again (it may not
    // have reached etcd); a store that is not halted clears an older halt.
    if (this.halted) await this.publishHalt();
    else await this.claim!.write((lease) => this.log.clearHalt(this.name, lease));
    if (hash !== null) this.lastHash = hash;
    if (hash !== null && (await this.checkable(height))) {
      await this.claim!.write((lease) => this.log.publish(this.name, lease, height, hash, this.status()));
      this.checker.add(height, hash);
      this.checker.check();
    } else await this.claim!.write((lease) => this.log.publishStatus(this.status(), lease));
    this.watchers.push(this.log.watchBlocks(() => this.pump()));
    this.watchers.push(this.log.watchHashes(() => this.checker.check()));
    for (const w of this.watchers) w.catch(() => {});
    // Watches reconnect by themselves; the poll covers what a reconnect
    // misses, and membership changes (a removal can decide a height).
    for (const [height, hash] of (this.host.store.get(UNPUBLISHED_KEY) as [number, string][] | undefined) ?? []) this.unpublished.set(height, hash);
    this.poll = setInterval(() => {
      this.pump();
      if (this.checker.pending > 0) this.checker.check();
      if (this.unpublished.size > 0) void this.publishMissed();
    }, 1000);
    this.poll.unref();
    this.pump();
    if (this.options.cutter ?? true) {
      this.cutter = new Cutter(this.log, this, {
        policy: resolveRunPolicy({ maxCranks: 1000, ...this.options.runPolicy }),
        maxInputs: this.options.maxBlockInputs ?? 500,
        maxBytes: MAX_INPUT_BYTES,
        batchMs: this.options.batchMs ?? 5,
        leaseSeconds: this.options.leaseSeconds ?? 5,
        retryWindow: this.options.retryWindow ?? DEFAULT_RETRY_WINDOW,
      });
      this.cutter.start();
    }
  }

  /** The height of the last block applied (committed) here. */
  height(): number {
    return appliedHeight(this.host);
  }

  // A height at or below the prune height whose other hashes are gone (a
  // joiner from an export taken at the prune height) can never be decided:
  // its hash is not published (break15b #6b); the next block's is checked.
  private async checkable(height: number): Promise<boolean> {
    if (height > (await this.log.pruned())) return true;
    return [...(await this.log.hashesAt(height)).keys()].some((name) => name !== this.name);
  }

  /** Told by its own cutter (cutter.ts). */
  blockCut(): void {
    this.pump();
  }

  hasRunnableWork(): boolean {
    return this.host.kernel.hasRunnableWork();
  }

  /** True while this replica is the block cutter. */
  get isCutter(): boolean {
    return this.cutter?.isLeader ?? false;
  }

  /** Set while another member's hash disputes this replica's at some height and no majority has decided: no applying, cutting or submitting. */
  get disputed(): Dispute | null {
    return this.checker.dispute;
  }

  /**
   * True while the replica neither applies blocks nor takes submissions:
   * halted, disputed, stopped, or not holding its name (its lease lapsed: it
   * takes it back, or halts if another replica took it).
   */
  get paused(): boolean {
    return this.stopped || this.halted !== null || this.checker.dispute !== null || this.claim?.lease === null;
  }

  status(): ReplicaStatus & { cutter: boolean } {
    return {
      name: this.name,
      height: this.height(),
      hash: this.lastHash,
      ...(this.halted ? { halted: this.halted } : {}),
      ...(this.disputed ? { disputed: this.disputed } : {}),
      cutter: this.isCutter,
    };
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
    this.pumper.run();
  }

  private async catchUp(): Promise<void> {
    for (;;) {
      if (this.paused) return;
      const from = this.height() + 1;
      const blocks = await this.log.blocks(from, 20);
      if (blocks.length === 0) {
        const pruned = await this.log.pruned();
        if (pruned >= from) {
          // Not kept in the store: nothing is wrong with its state, and it may
          // be given an export (--import into this directory) next.
          this.halt(from - 1, `blocks through ${pruned} were pruned from the log; this replica is at ${from - 1}: join from an export at height ${pruned} or later`, false);
        }
        return;
      }
      for (const { block } of blocks) {
        if (this.paused) return;
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
    for (const i of block.inputs) if (i.reply === true) this.replyTo.set(i.id, inputDigest(i.input));
    let applied;
    this.applying = true;
    try {
      applied = applyBlock(this.host, block, (id, digest, outcome, rev) => this.deliver(id, digest, outcome, rev));
    } catch (err) {
      this.applying = false;
      this.halt(block.height, `applying block ${block.height} failed: ${(err as Error).message}`);
      return;
    } finally {
      this.applying = false;
    }
    const hash = this.host.stateHash();
    this.lastHash = hash;
    this.skippedInputs(block.to);
    for (const [id, digest, outcome, rev] of applied.outcomes) void outcome.then((o) => this.deliver(id, digest, o, rev));
    this.emit('applied', { height: block.height, hash, cranks: applied.cranks, inputs: block.inputs.length });
    this.cutter?.poke();
    this.checker.add(block.height, hash);
    await this.publishHash(block.height, hash);
    this.checker.check();
  }

  /**
   * Publishes this replica's hash at `height`. One whose etcd write failed
   * (after the client's own retries) is kept and published again from the
   * poll: a hole would leave the height unconfirmable for good in a small
   * cluster (break-15c #5). A write refused by the fence lapses the name
   * instead, and republish() covers it.
   */
  private async publishHash(height: number, hash: string): Promise<void> {
    const had = this.unpublished.size;
    try {
      await this.claim!.write((lease) => this.log.publish(this.name, lease, height, hash, this.status()));
      this.unpublished.delete(height);
    } catch {
      this.unpublished.set(height, hash);
    }
    // Kept node-local too, so a restart publishes them (break-15d #3).
    if (this.unpublished.size !== had && !this.stopped) this.writeLocal(UNPUBLISHED_KEY, [...this.unpublished]);
  }

  private async publishMissed(): Promise<void> {
    for (const [height, hash] of [...this.unpublished].sort((a, b) => a[0] - b[0])) {
      if (this.stopped || this.halted) return;
      await this.publishHash(height, hash);
      if (this.unpublished.has(height)) return;
    }
  }

  // A submission whose key is now below the log's head but was never
  // applied was skipped as poison: another etcd client overwrote it with
  // something that is not an input. No outcome will come (break-15d #2).
  private skippedInputs(to: string): void {
    for (const [id, p] of this.pending) {
      if (p.rev === undefined || BigInt(p.rev) > BigInt(to) || wasApplied(this.host, id)) continue;
      this.pending.delete(id);
      p.reject(new SubmitError(`input ${id} was not applied: its key in the log was overwritten with something that is not an input, and skipped; submit it again`, id, false));
    }
  }

  private deliver(id: string, digest: string, outcome: Outcome, rev: string): void {
    this.emit('outcome', { id, ...outcome });
    if (this.replyTo.get(id) === digest) {
      this.replyTo.delete(id);
      void this.log.reply(id, outcome, digest).catch(() => {});
    }
    const p = this.pending.get(id);
    if (!p) return;
    if (p.digest !== digest) {
      // Other content under this id written elsewhere (its own comes later,
      // and is refused as a reuse) -- unless it is the very key this
      // submission wrote, overwritten by another etcd client: then this
      // input was not applied and never will be (break-15c #4).
      if (p.rev !== rev) return;
      this.pending.delete(id);
      p.reject(new SubmitError(`id ${id} was taken in the log by a different input, which was applied instead; this input was not applied: submit it under a new id`, id, false));
      return;
    }
    this.pending.delete(id);
    p.resolve(outcome);
  }

  // ---------------------------------------------------------------- divergence

  private onDispute(dispute: Dispute | null): void {
    this.emit('disputed', dispute);
    void this.claim?.write((lease) => this.log.publishStatus(this.status(), lease)).catch(() => {});
    if (dispute) {
      this.failPending((id) => `replica ${this.name} paused: its state hash at height ${dispute.height} is disputed (${dispute.detail}); ${mayCommit(id)}`);
    } else {
      this.pump();
      this.cutter?.poke();
    }
  }

  private async publishHalt(): Promise<void> {
    await this.claim?.write((lease) => this.log.publishHalt({ ...this.status(), halted: this.halted! }, lease));
  }

  /** The name is held again after a lapse: the hash a fenced write may have missed is published, and applying goes on. */
  private async republish(): Promise<void> {
    const hash = this.lastHash;
    if (this.halted) await this.publishHalt().catch(() => {});
    else if (hash !== null) await this.claim!.write((lease) => this.log.publish(this.name, lease, this.height(), hash, this.status())).catch(() => {});
    this.emit('held');
    this.pump();
    this.cutter?.poke();
  }

  /** Writes a node-local store key (outside the state hash: store-binding.ts). */
  private writeLocal(key: string, value: unknown): void {
    const was = this.applying;
    this.applying = true;
    try {
      this.host.store.atomically(() => this.host.store.set(key, value));
    } finally {
      this.applying = was;
    }
  }

  private failPending(message: (id: string) => string): void {
    for (const [id, p] of this.pending) p.reject(new SubmitError(message(id), id, true));
    this.pending.clear();
  }

  /** `persist`: kept in the store and in etcd (a divergence); otherwise a restart tries again. */
  private halt(height: number, reason: string, persist = true): void {
    if (this.halted) return;
    this.halted = { height, reason };
    this.checker.stopped = true;
    if (persist) {
      // Kept in the store: a restart must not clear a halt and serve clients
      // from a diverged state (found by a hostile review). A halted replica is
      // replaced by a fresh one joining from another replica's export.
      try {
        this.writeLocal(HALT_KEY, { height, reason });
      } catch {
        // the store itself failed: the halt still stands in this process
      }
      void this.publishHalt().catch(() => {});
    } else void this.claim?.write((lease) => this.log.publishStatus(this.status(), lease)).catch(() => {});
    void this.cutter?.stop();
    this.failPending((id) => `replica ${this.name} halted at height ${height}: ${reason}; ${mayCommit(id)}`);
    this.emit('halt', this.halted);
  }

  // ---------------------------------------------------------------- clients

  /**
   * Writes `input` to the log; resolves with its outcome once the block
   * holding it commits here. Throws a SubmitError: with `mayCommit` false when
   * nothing was written; with `mayCommit` true when the input may be in the
   * log (a write that timed out, or this replica halted, paused or closed
   * before its block committed): the client then retries under the same id
   * (`options.id`), which every replica applies at most once.
   */
  async submit(given: Input, options: SubmitOptions = {}): Promise<Outcome> {
    const input = checkInput(given);
    const id = options.id === undefined ? crypto.randomUUID() : checkInputId(options.id);
    const refuse = (why: string) => new SubmitError(`${why}; input ${id} was not written to the log`, id, false);
    if (this.halted) throw refuse(`replica ${this.name} halted at height ${this.halted.height}: ${this.halted.reason}`);
    if (this.stopped) throw refuse(`replica ${this.name} is closed`);
    const dispute = this.disputed;
    if (dispute) throw refuse(`replica ${this.name} paused: its state hash at height ${dispute.height} is disputed (${dispute.detail}); submit through another replica`);
    if (this.claim?.lease === null) throw refuse(`replica ${this.name} does not hold its name in etcd right now (its lease lapsed; it is taking it back); submit through another replica`);
    if (this.pending.has(id)) throw refuse(`input ${id} is already waiting for its block on this replica`);
    const logged = { id, origin: this.name, input };
    const bytes = codec.encode(logged).length;
    if (bytes > MAX_INPUT_BYTES) throw new RangeError(`a ${input.type} input of ${bytes} bytes is over the log's limit of ${MAX_INPUT_BYTES} bytes; split it (e.g. upload pieces one at a time)`);
    const digest = inputDigest(input);
    const outcome = new Promise<Outcome>((resolve, reject) => this.pending.set(id, { digest, resolve, reject }));
    outcome.catch(() => {}); // failPending may reject it while the write is still under way; the caller gets it below
    // A write that timed out (e.g. while etcd elects a new leader) may still
    // have committed: write it again under the same id, which replicas apply
    // at most once (apply-block.ts).
    for (let attempt = 1; ; attempt++) {
      try {
        const rev = await this.log.submit(logged);
        const p = this.pending.get(id);
        if (p) p.rev = rev;
        break;
      } catch (err) {
        if (err instanceof InputIdConflict) {
          this.pending.delete(id);
          throw new SubmitError(`${err.message}; input ${id} was not written to the log`, id, false, { cause: err });
        }
        if (attempt >= SUBMIT_ATTEMPTS || this.stopped) {
          this.pending.delete(id);
          throw new SubmitError(`the input could not be written to etcd (${attempt} attempts: ${(err as Error).message}); ${mayCommit(id)}`, id, true, { cause: err });
        }
        await new Promise((r) => setTimeout(r, 250 * attempt));
      }
    }
    this.cutter?.poke();
    return outcome;
  }

  /** Deletes blocks up to `height` from etcd and compacts its history (replicas behind it must join from an export). */
  /** Resolves with the heights up to `height` whose hashes were kept: no majority has confirmed them yet. */
  async pruneLog(height: number): Promise<number[]> {
    if (!(Number.isSafeInteger(height) && height >= 0 && height <= this.height())) {
      throw new RangeError(`prune height must be an integer from 0 to this replica's height ${this.height()}, got ${height}`);
    }
    return this.log.prune(height);
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
    this.checker.stopped = true;
    for (let i = 0; i < 100 && (this.pumper.busy || this.checker.busy); i++) await new Promise((r) => setTimeout(r, 10));
    this.failPending((id) => `replica ${this.name} was closed before the block holding input ${id} committed here; ${mayCommit(id)}`);
    await withTimeout(this.claim?.release(), 1000);
    this.host.store.setWriteGuard(null);
    this.log.close();
  }
}
