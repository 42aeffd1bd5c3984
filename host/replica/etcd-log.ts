// The cluster's shared state in etcd, under /quickvat/<cluster>/ (issue #15):
//   in/<id>              an input waiting to be cut into a block; its etcd
//                        create revision fixes its order
//   head                 { height, to }: the last block cut and the last input
//                        revision it holds
//   block/<H>            block H: its inputs (copied, with their revisions) and
//                        the run policy; written once, never changed
//   hash/<H>/<replica>   the state hash a replica reached after block H
//   genesis              the cluster's id, created by its first replica; a
//                        store is bound to it (store-binding.ts)
//   member/<replica>     the cluster's members (majorities count these); a
//                        replica registers at its first start, and stays a
//                        member until `replica remove` (membership.ts)
//   removed/<replica>    a name removed from the cluster, never used again
//   live/<replica>       on the replica's lease: present while it runs, and
//                        claims the name (a second replica of that name is refused)
//   halted/<replica>     why and where a replica halted (authoritative)
//   status/<replica>     a replica's height, hash, and a dispute if any
//   pruned               { height }: blocks up to here were deleted
//   cutter               the election (lease-based) of the one block cutter
//   out/<id>             an input's outcome for a client outside the cluster
// Why etcd3 (gRPC) and not the v3 JSON gateway: the cutter needs leases with
// keep-alives, an election and watches, which etcd3 implements against etcd's
// own protocol; over the gateway we would re-implement them on HTTP streams.
import { noop } from 'cockatiel';
import { Etcd3, type Campaign, type Lease, type Namespace } from 'etcd3';
import { probedBreaker, readDeadlineMs } from './etcd-endpoints.js';
import { codec } from '../store/codec.js';
import { inputDigest, InputIdConflict, type BlockRecord, type LoggedInput, type Outcome } from './inputs.js';
import { errorData } from '../kernel/syscalls.js';
import { confirmedHash } from './divergence.js';
import { readPendingInput, MAX_LOGGED_INPUT_BYTES, type PendingInput } from './pending-input.js';

export { MAX_LOGGED_INPUT_BYTES, type PendingInput } from './pending-input.js';

/** Keys the cutter reads per request while filling a block. */
const PENDING_PAGE = 32;

export const heightKey = (h: number) => String(h).padStart(12, '0');

/** The deadline of one etcd call (a healthy etcd answers in milliseconds; a big catch-up read of 20 blocks in well under a second). */
export const DEFAULT_CALL_TIMEOUT_MS = 5000;

export interface Head {
  readonly height: number;
  /** The last input revision block `height` holds ("0" before any block). */
  readonly to: string;
}

export interface ReplicaStatus {
  readonly name: string;
  readonly height: number;
  readonly hash: string | null;
  readonly halted?: { readonly height: number; readonly reason: string };
  /** Another member's hash disputes this replica's at `height`, and no majority has decided yet. */
  readonly disputed?: { readonly height: number; readonly detail: string };
}


/** One cluster's keys in one etcd cluster. */
export class EtcdLog {
  readonly client: Etcd3;
  readonly ns: Namespace;

  constructor(
    endpoints: readonly string[],
    readonly cluster: string,
    /** How long one etcd call may take before it is retried on another endpoint, in ms. */
    callTimeoutMs = DEFAULT_CALL_TIMEOUT_MS,
  ) {
    if (!Array.isArray(endpoints) || endpoints.length === 0 || !endpoints.every((e) => typeof e === 'string' && /^https?:\/\/./.test(e))) {
      throw new TypeError(`replicate.endpoints must be a non-empty list of etcd client URLs (http://host:port), got ${JSON.stringify(endpoints)}`);
    }
    if (typeof cluster !== 'string' || !/^[A-Za-z0-9_.-]{1,100}$/.test(cluster)) {
      throw new TypeError(`a cluster name is 1-100 letters, digits, "_", "." or "-", got ${JSON.stringify(cluster)}`);
    }
    // gRPC's default 4 MiB receive limit is below what a batch of blocks or of
    // waiting inputs (each up to MAX_INPUT_BYTES) can take: with it, a replica
    // that fell behind could never catch up (found by a hostile review).
    // Every call has a deadline, and idle connections are pinged: a frozen
    // etcd member (SIGSTOP, a partition that keeps TCP open) otherwise holds
    // calls forever although the others have quorum (hostile review of #15).
    // A call that misses its deadline is retried on another endpoint (etcd3's
    // fault handling: 3 attempts), and an endpoint that failed is left out
    // until a short probe of it answers (etcd-endpoints.ts); reads have a
    // shorter deadline than writes. With one endpoint there is nothing to
    // leave out for, so its calls are simply retried. Every write here is
    // safe to repeat (an input id is applied once, a block is cut by
    // compare-and-put).
    this.client = new Etcd3({
      hosts: [...endpoints],
      dialTimeout: Math.min(5000, callTimeoutMs),
      grpcOptions: {
        'grpc.max_receive_message_length': 512 * 1024 * 1024,
        // etcd refuses pings more often than every 5 s (--grpc-keepalive-min-time).
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 3000,
      },
      defaultCallOptions: (context) =>
        context.isStream ? {} : { deadline: Date.now() + (context.service === 'KV' && context.method === 'range' ? readDeadlineMs(callTimeoutMs) : callTimeoutMs) },
      faultHandling: {
        host: (endpoint) => (endpoints.length > 1 ? probedBreaker(endpoint, () => this.closed, () => this.moveWatches()) : noop),
      },
    });
    this.ns = this.client.namespace(`/quickvat/${cluster}/`);
  }

  /** True once close() was called: loops that retry etcd calls end. */
  closed = false;

  /** The namespaces whose watch streams this log uses (its own, the cutter's elections'). */
  private readonly watching: Namespace[] = [];

  // A member was left out (etcd-endpoints.ts). Watches share one gRPC stream
  // per namespace, which may sit on that member: with it frozen, no block,
  // hash or election event would arrive until gRPC keepalive gives up on it
  // (~13 s: the cutter's successor never learns it was elected). Each stream
  // is ended and opened again through the members still in (etcd3 re-creates
  // its watchers from their last revision, so no event is lost). Uses etcd3's
  // WatchManager internals (etcd3 is pinned by package-lock.json).
  private moveWatches(): void {
    for (const space of [this.ns, ...this.watching]) {
      const manager = (space as unknown as { watchManager?: { state: number; handleError(err: Error): void } }).watchManager;
      if (manager?.state === 2 /* connected */) manager.handleError(new Error('an etcd member was left out: watching through another'));
    }
  }

  /** Leases this log's users took (a name claim's, the cutter's campaigns'). */
  private readonly leases = new Set<Lease>();

  /** A lease with keep-alives, closed with this log (membership.ts). */
  lease(ttlSeconds: number): Lease {
    return this.track(this.ns.lease(ttlSeconds, { autoKeepAlive: true }));
  }

  private track(lease: Lease): Lease {
    for (const l of this.leases) if (l.revoked()) this.leases.delete(l);
    this.leases.add(lease);
    return lease;
  }

  close(): void {
    this.closed = true;
    // A lease whose revoke did not get through (a resign that timed out, a
    // claim that completed after its release) keeps its keep-alive stream
    // and interval timer going after the client closes, which kept test runs
    // alive after all tests passed: tear them all down here (the lease
    // itself expires in etcd after its TTL).
    for (const lease of this.leases) (lease as unknown as { close(): void }).close();
    this.leases.clear();
    // A watcher still attached when the client closes (its cancel timed out,
    // or the election's own) makes etcd3's watch manager try to reconnect for
    // ever, one timer after another, which keeps the process alive: cancel
    // them all first (a cancel that cannot reach etcd ends with the stream).
    for (const space of [this.ns, ...this.watching]) {
      const manager = (space as unknown as { watchManager?: { watchers?: { cancel(): Promise<void> }[] } }).watchManager;
      for (const watcher of [...(manager?.watchers ?? [])]) watcher.cancel().catch(() => {});
    }
    this.client.close();
  }

  // ---------------------------------------------------------------- inputs

  /**
   * Appends an input unless its id is waiting already; resolves with the
   * revision of the write. An id waiting with the same content (a retry of a
   * write that timed out but committed) is not written again; one waiting with
   * different content throws InputIdConflict (hostile review of #15: a second
   * put would replace the first client's input, and both be told it ran).
   */
  async submit(input: LoggedInput): Promise<string> {
    const key = `in/${input.id}`;
    const bytes = Buffer.from(codec.encode(input));
    // The cutter would skip it (a block must fit in one etcd request): refused here with the reason.
    if (bytes.length > MAX_LOGGED_INPUT_BYTES) {
      throw new RangeError(`input ${input.id} takes ${bytes.length} bytes in the log, over its limit of ${MAX_LOGGED_INPUT_BYTES} bytes; split it (e.g. upload pieces one at a time)`);
    }
    for (let attempt = 0; ; attempt++) {
      const res = await this.ns.if(key, 'Create', '==', 0).then(this.ns.put(key).value(bytes)).else(this.ns.get(key)).commit();
      if (res.succeeded) return res.header.revision;
      const kv = res.responses[0]?.response_range?.kvs[0];
      if (!kv) continue;
      // Already cut into a block, and not yet deleted by its cutter (it
      // deletes cut inputs after the cut, best effort; one killed between
      // the two leaves them, break-15c #3): it is not waiting. Deleted here
      // (as the cutter would), so that this input is written and the block
      // applying it decides (DuplicateInput, or a reuse refused); otherwise a
      // retry would wait for ever for an outcome already delivered.
      const { head } = await this.head();
      if (BigInt(kv.create_revision) <= BigInt(head.to) && attempt < 3) {
        await this.ns.if(key, 'Mod', '==', Number(kv.mod_revision)).then(this.ns.delete().key(key)).commit();
        continue;
      }
      const waiting = readPendingInput(key, kv.value, kv.create_revision);
      if (waiting.poison || inputDigest(waiting.input) !== inputDigest(input.input)) throw new InputIdConflict(input.id);
      return kv.create_revision;
    }
  }

  /**
   * Inputs not yet in a block (revision after `after`), in revision order:
   * enough to fill one block (`maxBytes`, `maxInputs`) and the rest of the
   * last revision read, not every input waiting. Reading them all before
   * each block made a backlog of N big inputs cost N² reads, and past a few
   * hundred MiB every read failed and the cutter stopped (break-15d #1).
   * Pages of PENDING_PAGE keys; a revision one transaction wrote is read
   * whole (one etcd request holds it, so it is bounded by etcd's own limit).
   */
  async pendingInputs(after: string, maxBytes: number, maxInputs: number): Promise<PendingInput[]> {
    const read = (range: ReturnType<Namespace['getAll']>) =>
      range.prefix('in/').sort('Create', 'Ascend').exec().then((res) => res.kvs.map((kv) => readPendingInput(kv.key.toString('utf8'), kv.value, kv.create_revision)));
    const out: PendingInput[] = [];
    let bytes = 0;
    let from = BigInt(after) + 1n;
    for (;;) {
      const page = await read(this.ns.getAll().minCreateRevision(String(from)).limit(PENDING_PAGE));
      if (page.length === 0) return out;
      let taken = page;
      if (page.length === PENDING_PAGE) {
        // The page may end in the middle of a revision: that revision is read whole.
        const last = page[page.length - 1].rev;
        const first = page.findIndex((p) => p.rev === last);
        taken = [...page.slice(0, first), ...(await read(this.ns.getAll().minCreateRevision(last).maxCreateRevision(last)))];
      }
      for (const p of taken) bytes += p.poison ? 0 : p.bytes;
      out.push(...taken);
      if (page.length < PENDING_PAGE) return out;
      if (bytes >= maxBytes || out.length >= maxInputs) return out;
      from = BigInt(taken[taken.length - 1].rev) + 1n;
    }
  }

  /** Deletes keys under in/ that hold no applicable input (PendingInput.poison). */
  async forgetKeys(keys: readonly string[]): Promise<void> {
    for (const key of keys) await this.ns.delete().key(key);
  }

  /** Deletes inputs a block now holds (they were copied into it). */
  async forgetInputs(ids: readonly string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 100) {
      await this.ns.if('head', 'Version', '>', 0).then(...ids.slice(i, i + 100).map((id) => this.ns.delete().key(`in/${id}`))).commit();
    }
  }

  /** A watch on new inputs (the cutter wakes up on them). */
  watchInputs(onInput: () => void) {
    return this.ns.watch().prefix('in/').only('put').create().then((w) => w.on('put', onInput));
  }

  /** Publishes an input's outcome for a client outside the cluster; the first replica to get there writes it. */
  async reply(id: string, outcome: Outcome, digest: string): Promise<void> {
    const key = `out/${id}`;
    let value = Buffer.from(codec.encode({ ...outcome, digest }));
    // An answer too big for one etcd request would never reach the client, which would wait its whole timeout.
    if (value.length > MAX_LOGGED_INPUT_BYTES) {
      const told = errorData(`the outcome of input ${id} takes ${value.length} bytes, over the log's limit of ${MAX_LOGGED_INPUT_BYTES} for a reply; it ran (${outcome.rejected ? 'rejected' : 'fulfilled'}): read its effects through a replica`);
      value = Buffer.from(codec.encode({ rejected: true, data: told, digest }));
    }
    await this.ns.if(key, 'Create', '==', 0).then(this.ns.put(key).value(value)).commit();
  }

  /** Waits for the outcome of input `id` whose content has `digest` (published by reply), then deletes it. */
  async awaitReply(id: string, ms: number, digest: string): Promise<Outcome> {
    const until = Date.now() + ms;
    for (;;) {
      const value = await this.ns.get(`out/${id}`).buffer();
      if (value) {
        const { digest: theirs, ...outcome } = codec.decode(value) as Outcome & { digest?: string };
        // Every reply names its content (break-15c #6): one that does not is not a replica's.
        if (theirs !== digest) throw new InputIdConflict(id);
        await this.ns.delete().key(`out/${id}`);
        return outcome;
      }
      if (Date.now() > until) throw new Error(`no replica reported the outcome of input ${id} within ${ms} ms (is a replica of cluster ${this.cluster} running?)`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  // ---------------------------------------------------------------- blocks

  async head(): Promise<{ head: Head; modRevision: string }> {
    const res = await this.ns.get('head').exec();
    const kv = res.kvs[0];
    if (!kv) return { head: { height: 0, to: '0' }, modRevision: '0' };
    return { head: JSON.parse(kv.value.toString()) as Head, modRevision: kv.mod_revision };
  }

  /**
   * Writes block H and the new head in one etcd transaction, only if the head
   * is still the one the cutter read and block H does not exist: a block is
   * never cut twice, whoever else thinks it is the cutter. False when it lost.
   */
  async cutBlock(block: BlockRecord, headModRevision: string): Promise<boolean> {
    const key = `block/${heightKey(block.height)}`;
    const head: Head = { height: block.height, to: block.to };
    const res = await this.ns
      .if('head', 'Mod', '==', Number(headModRevision))
      .and(key, 'Create', '==', 0)
      .then(this.ns.put(key).value(Buffer.from(codec.encode(block))), this.ns.put('head').value(JSON.stringify(head)))
      .commit();
    return res.succeeded;
  }

  /** Blocks from `from` on, in order, at most `limit`; stops at the first missing height. */
  async blocks(from: number, limit: number): Promise<{ block: BlockRecord; version: string }[]> {
    const res = await this.ns
      .getAll()
      .inRange({ start: `block/${heightKey(from)}`, end: `block0` })
      .limit(limit)
      .exec();
    const out: { block: BlockRecord; version: string }[] = [];
    for (const kv of res.kvs) {
      const block = codec.decode(kv.value) as BlockRecord;
      if (block.height !== from + out.length) break;
      out.push({ block, version: kv.version });
    }
    return out;
  }

  /** Every stored block's height and etcd version (a block written once has version 1). */
  async blockVersions(): Promise<{ height: number; version: number }[]> {
    const res = await this.ns.getAll().prefix('block/').exec();
    return res.kvs.map((kv) => ({ height: Number(kv.key.toString().slice('block/'.length)), version: Number(kv.version) }));
  }

  /** A watch on new blocks (replicas wake up on them). */
  watchBlocks(onBlock: () => void) {
    return this.ns.watch().prefix('block/').only('put').create().then((w) => w.on('put', onBlock));
  }

  // ---------------------------------------------------------------- hashes, members, status

  // Every write under a replica's name is fenced on the lease its live key is
  // on (membership.ts NameClaim): a process that lost its name (frozen past
  // its lease, replaced) writes nothing there (break15b #3). These resolve
  // false when live/<name> is not on `lease` (null: not held): the caller
  // must stop publishing and see to its name.

  /** Publishes a replica's hash at `height` and its status, unless it halted (a halt is final: nothing after it is published). */
  publish(name: string, lease: string | null, height: number, hash: string, status: ReplicaStatus): Promise<boolean> {
    return this.underName(name, lease, true, this.ns.put(`hash/${heightKey(height)}/${name}`).value(hash), this.ns.put(`status/${name}`).value(JSON.stringify(status)));
  }

  publishStatus(status: ReplicaStatus, lease: string | null): Promise<boolean> {
    return this.underName(status.name, lease, true, this.ns.put(`status/${status.name}`).value(JSON.stringify(status)));
  }

  /** Records a replica's halt; `replica status` takes it over anything the replica published. */
  publishHalt(status: ReplicaStatus & { halted: { height: number; reason: string } }, lease: string | null): Promise<boolean> {
    return this.underName(status.name, lease, false, this.ns.put(`halted/${status.name}`).value(JSON.stringify(status.halted)), this.ns.put(`status/${status.name}`).value(JSON.stringify(status)));
  }

  /** Clears a recorded halt: a store that is not halted (a replacement under the name) runs under it now. */
  clearHalt(name: string, lease: string | null): Promise<boolean> {
    return this.underName(name, lease, false, this.ns.delete().key(`halted/${name}`));
  }

  private async underName(name: string, lease: string | null, unlessHalted: boolean, ...ops: Parameters<ReturnType<Namespace['if']>['then']>): Promise<boolean> {
    if (lease === null) return false;
    const live = `live/${name}`;
    let txn = this.ns.if(live, 'Lease', '==', lease);
    if (unlessHalted) txn = txn.and(`halted/${name}`, 'Create', '==', 0);
    const res = await txn.then(...ops).else(this.ns.get(live)).commit();
    if (res.succeeded) return true;
    // Still ours: only a recorded halt stopped the write.
    return res.responses[0]?.response_range?.kvs[0]?.lease === lease;
  }

  /** Every replica's recorded halt. */
  async halts(): Promise<Map<string, { height: number; reason: string }>> {
    const values = await this.ns.getAll().prefix('halted/').strings();
    return new Map(Object.entries(values).map(([k, v]) => [k.slice('halted/'.length), JSON.parse(v)]));
  }

  /** Every replica's hash at `height`. */
  async hashesAt(height: number): Promise<Map<string, string>> {
    const res = await this.ns.getAll().prefix(`hash/${heightKey(height)}/`).exec();
    const cut = `hash/${heightKey(height)}/`.length;
    return new Map(res.kvs.map((kv) => [kv.key.toString().slice(cut), kv.value.toString()]));
  }

  /** All published hashes (from `from` through `to` if given): height -> replica -> hash. */
  async allHashes(from?: number, to?: number): Promise<Map<number, Map<string, string>>> {
    const res = await (from === undefined ? this.ns.getAll().prefix('hash/') : this.ns.getAll().inRange({ start: `hash/${heightKey(from)}`, end: `hash/${heightKey(to! + 1)}` })).exec();
    const out = new Map<number, Map<string, string>>();
    for (const kv of res.kvs) {
      const [h, name] = kv.key.toString().slice('hash/'.length).split('/');
      const height = Number(h);
      if (!out.has(height)) out.set(height, new Map());
      out.get(height)!.set(name, kv.value.toString());
    }
    return out;
  }

  watchHashes(onHash: (height: number) => void) {
    return this.ns
      .watch()
      .prefix('hash/')
      .only('put')
      .create()
      .then((w) => w.on('put', (kv) => onHash(Number(kv.key.toString().slice('hash/'.length).split('/')[0]))));
  }

  /** The cluster's current members (membership.ts registers and removes them). */
  async members(): Promise<string[]> {
    const keys = await this.ns.getAll().prefix('member/').keys();
    return keys.map((k) => k.slice('member/'.length));
  }

  async statuses(): Promise<ReplicaStatus[]> {
    const values = await this.ns.getAll().prefix('status/').strings();
    return Object.values(values).map((v) => JSON.parse(v) as ReplicaStatus);
  }

  async pruned(): Promise<number> {
    const v = await this.ns.get('pruned').string();
    return v === null ? 0 : (JSON.parse(v) as { height: number }).height;
  }

  /**
   * Deletes blocks up to `height`, the hashes of those heights that a
   * majority of the current members confirmed, and inputs already cut; then
   * compacts etcd's history: a replica behind `height` must join from an
   * export. Unconfirmed hashes stay: deleting them would leave the heights
   * they belong to undecided for good, and their replicas unchecked (hostile
   * review of #15). Resolves with the heights whose hashes were kept.
   */
  async prune(height: number): Promise<number[]> {
    await this.ns.put('pruned').value(JSON.stringify({ height })).exec();
    await this.ns.delete().inRange({ start: 'block/', end: `block/${heightKey(height + 1)}` }).exec();
    const members = await this.members();
    const kept: number[] = [];
    let prefixEnd = 0; // heights 1..prefixEnd are all confirmed (or have no hashes left)
    for (const [h, hashes] of [...(await this.allHashes(1, height))].sort((a, b) => a[0] - b[0])) {
      // A height no current member published (only removed members' hashes
      // are left) has nothing to confirm (break15b #6c).
      if (confirmedHash(hashes, members) !== undefined || !members.some((m) => hashes.has(m))) {
        if (kept.length === 0) prefixEnd = h;
        else await this.ns.delete().prefix(`hash/${heightKey(h)}/`).exec();
      } else kept.push(h);
    }
    if (kept.length === 0) prefixEnd = height;
    if (prefixEnd > 0) await this.ns.delete().inRange({ start: 'hash/', end: `hash/${heightKey(prefixEnd + 1)}` }).exec();
    // Inputs a block holds that its cutter died before deleting (cutter.ts).
    const { head } = await this.head();
    if (head.to !== '0') {
      const stale = await this.ns.getAll().prefix('in/').maxCreateRevision(head.to).keys();
      await this.forgetInputs(stale.map((k) => k.slice('in/'.length)));
    }
    const { header } = await this.ns.get('head').exec();
    await this.client.kv.compact({ revision: header.revision, physical: true }, { deadline: Date.now() + 60_000 });
    return kept;
  }

  /** The cutter's election: a lease-backed campaign in etcd. */
  /** A campaign for block cutter (cutter.ts); its lease is closed with this log. */
  campaign(ttlSeconds: number, name: string): Campaign {
    const campaign = this.election(ttlSeconds).campaign(name);
    this.track((campaign as unknown as { lease: Lease }).lease);
    return campaign;
  }

  election(ttlSeconds: number) {
    const election = this.ns.election('cutter', ttlSeconds);
    // Its campaign waits for its predecessor's key to go through a watch of its own namespace.
    this.watching.push((election as unknown as { namespace: Namespace }).namespace);
    if (this.watching.length > 8) this.watching.shift();
    return election;
  }
}
