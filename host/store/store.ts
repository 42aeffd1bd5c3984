// A block-transactional key/value store on lmdb. Writes are buffered in
// memory, visible to later reads, and reach lmdb only in commit(), as one lmdb
// write transaction (a block of cranks). Inside a block, beginCrank() opens a
// savepoint: abortCrank() undoes that crank's writes alone, endCrank() keeps
// them for the block's commit.
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import nodePath from 'node:path';
import { asBinary, open, type RootDatabase } from 'lmdb';
import { codec, decodeValue } from './codec.js';
import { CrankBuffer } from './crank-buffer.js';
import { checkKey, compareKeys, decodeKey, describe, encodeKey } from './keys.js';
import { CommittedCache } from './cached-values.js';
import { Encoded, encodedWrite, heldBytes, heldValue, holdValue, type Held } from './held-values.js';
import { lockStateDir } from './dir-lock.js';

export interface StoreOptions {
  /** Directory of the lmdb environment, created if missing. Without it the store lives in a fresh temporary directory that close() deletes. */
  readonly path?: string;
}

// lmdb-js shares one environment between opens of the same path in a process,
// so a second Store there would see the first one's commits mid-crank and could
// close the environment under it.
const openPaths = new Set<string>();

/**
 * Keys under this prefix are node-local bookkeeping (a replica's cluster
 * binding, its halt): left out of stateHash() and of state exports, so that
 * replicas of one cluster hash alike whatever each keeps about itself (issue #15).
 */
export const LOCAL_PREFIX = 'local.';
const RAW_LOCAL = Buffer.from(LOCAL_PREFIX, 'utf8');

export class Store {
  readonly path: string;
  readonly temporary: boolean;
  #db: RootDatabase<unknown, Buffer> | undefined;
  readonly #buffer = new CrankBuffer();
  /** Committed values and absent keys known without asking lmdb (cached-values.ts). */
  readonly #committed = new CommittedCache();
  #closed: Promise<void> | undefined;
  #unlock: () => void = () => {};
  #held = 0;
  #writeGuard: ((key: string) => void) | null = null;

  private constructor(path: string, temporary: boolean, db: RootDatabase<unknown, Buffer>) {
    this.path = path;
    this.temporary = temporary;
    this.#db = db;
  }

  static open(options: StoreOptions = {}): Store {
    const { path } = options;
    if (path !== undefined && (typeof path !== 'string' || path === '')) {
      throw new TypeError(`store path must be a non-empty string, got ${describe(path)}`);
    }
    const temporary = path === undefined;
    const dir = temporary ? fs.mkdtempSync(nodePath.join(os.tmpdir(), 'quickvat-store-')) : nodePath.resolve(path);
    if (openPaths.has(dir)) throw new Error(`store at ${dir} is already open in this process`);
    const unlock = temporary ? () => {} : lockStateDir(dir);
    let db: RootDatabase<unknown, Buffer>;
    try {
      db = open<unknown, Buffer>({
        path: dir,
        // Without this lmdb-js would take a path with a file extension as a file.
        noSubdir: false,
        encoding: 'msgpack',
        encoder: codec,
        keyEncoding: 'binary',
        useVersions: false,
        // The cache would hand out the same decoded object to every reader, so
        // mutating a value read from the store would change what others read.
        cache: false,
        // noSync and noMetaSync stay off. Surviving SIGKILL needs only lmdb's
        // copy-on-write commit, whose last step is one meta page write: a
        // killed process leaves its writes in the OS page cache, and reopening
        // finds either the old or the new meta page. Syncing additionally makes
        // each commit survive power loss, at the price of an fsync per crank;
        // a temporary store is deleted on close, so it has no use for that.
        noSync: temporary,
      });
    } catch (error) {
      unlock();
      if (temporary) fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`cannot open the store in ${dir}: ${(error as Error).message}`, { cause: error });
    }
    openPaths.add(dir);
    const store = new Store(dir, temporary, db);
    store.#unlock = unlock;
    return store;
  }

  /**
   * How many committed keys the last getNextKey() stepped over (buffered
   * deletes): the host work it did beyond O(log n), for the caller to charge.
   */
  lastScanSteps = 0;

  /** Bumped whenever committed contents or the buffer's deletes may have changed under an open keys()/entries() iterator (commit, import, abort): it reads committed keys again from its position. */
  #generation = 0;

  /** True while there are uncommitted writes. */
  get dirty(): boolean {
    this.#open();
    return this.#buffer.size > 0;
  }

  get(key: string): unknown {
    const db = this.#open();
    const buffered = this.#buffer.lookup(key);
    if (buffered === null) return undefined;
    if (buffered !== undefined) return heldValue(buffered);
    const cached = this.#committed.value(key);
    if (cached !== undefined || this.#committed.absent(key)) return cached;
    checkKey(key);
    // lmdb's scratch buffer, valid until the next read: decoded at once.
    const bytes = db.getBinaryFast(Buffer.from(key, 'utf8'));
    const value = bytes === undefined ? undefined : decodeValue(bytes);
    this.#committed.read(key, value, bytes?.length ?? 0);
    return value;
  }

  has(key: string): boolean {
    const db = this.#open();
    const buffered = this.#buffer.lookup(key);
    if (buffered !== undefined) return buffered !== null;
    if (this.#committed.has(key)) return true;
    if (this.#committed.absent(key)) return false;
    checkKey(key);
    if (db.doesExist(Buffer.from(key, 'utf8'))) return true;
    this.#committed.read(key, undefined, 0);
    return false;
  }

  /**
   * Buffers a write until commit(). The value is checked now (a TypeError
   * names the key and the part that cannot be stored) and held as a frozen
   * copy (or its encoding), so later changes to it by the caller are not
   * stored; it is encoded at commit, once however often the block rewrote it.
   * `{ once: true }` says the key is written once and not read back in this
   * block (a transcript entry): it is encoded now, which holds it in a third
   * of the heap a copy takes (break-10d #2). `{ fresh: true }` says the key
   * is absent as this crank sees the store (named by an ID never used
   * before): if the block deletes it again, commit has nothing to do for it.
   * A wrong `fresh` would leave a committed row undeleted.
   */
  set(key: string, value: unknown, options?: { readonly once?: boolean; readonly fresh?: boolean }): void {
    this.#open();
    checkKey(key);
    this.#writeGuard?.(key);
    const held = options?.once ? encodedWrite(key, value) : holdValue(key, value);
    this.#buffer.record(key, held, options?.fresh === true || this.#committed.absent(key));
  }

  delete(key: string): void {
    this.#open();
    checkKey(key);
    this.#writeGuard?.(key);
    // Nothing buffered and nothing committed: nothing to delete.
    if (this.#buffer.lookup(key) === undefined && this.#committed.absent(key)) return;
    this.#buffer.record(key, null);
  }

  /**
   * The smallest key that starts with `prefix` and is greater than `after` (if
   * given), as this crank sees the store. Keys order by their UTF-8 bytes.
   */
  getNextKey(prefix: string, after?: string): string | undefined {
    const db = this.#open();
    checkKey(prefix, 'prefix');
    if (after !== undefined) checkKey(after, 'after key');
    const exclusive = after !== undefined && compareKeys(after, prefix) >= 0;
    const from = exclusive ? after : prefix;
    const buffered = this.#buffer.firstSetKey(prefix, from, exclusive);
    // Only deleted keys are skipped; the first committed key that survives, or
    // reaches the buffered candidate, ends the walk.
    const start = from === '' ? undefined : Buffer.from(from, 'utf8');
    let steps = 0;
    try {
      for (const raw of db.getKeys({ start, exclusiveStart: exclusive })) {
        const key = decodeKey(raw);
        if (!key.startsWith(prefix)) break;
        if (buffered !== undefined && compareKeys(key, buffered) >= 0) break;
        if (this.#buffer.lookup(key) !== null) return key;
        steps++;
      }
      return buffered;
    } finally {
      this.lastScanSteps = steps;
    }
  }

  /**
   * Entries under `prefix` after `after`, in key order, as this crank sees
   * the store. Writes made while iterating are seen by later steps: the
   * buffer is asked afresh at each step, and each committed key is checked
   * against it when reached. Committed keys are read ENTRIES_BATCH at a time
   * (a GC sweep reads every kernel row this way: one lmdb cursor per batch,
   * not per key); no cursor stays open between steps, so an iterator left
   * unfinished pins no lmdb pages, and a commit() between steps makes the
   * next step read committed keys again after the position.
   */
  *entries(prefix: string, after?: string): Generator<[string, unknown]> {
    for (const key of this.keys(prefix, after)) yield [key, this.get(key)];
  }

  /** The keys entries() would visit, without reading their values (a walk that decides by key first). */
  *keys(prefix: string, after?: string): Generator<string> {
    const db = this.#open();
    checkKey(prefix, 'prefix');
    if (after !== undefined) checkKey(after, 'after key');
    let last = after !== undefined && compareKeys(after, prefix) >= 0 ? after : undefined;
    let batch: string[] = [];
    let at = 0;
    let more = true;
    let generation = this.#generation;
    // The next committed keys under the prefix after `from` (from the prefix itself when undefined).
    const fill = (from: string | undefined) => {
      batch = [];
      at = 0;
      const start = from ?? prefix;
      for (const raw of db.getKeys({ start: start === '' ? undefined : Buffer.from(start, 'utf8'), exclusiveStart: from !== undefined, limit: ENTRIES_BATCH })) {
        const key = decodeKey(raw);
        if (!key.startsWith(prefix)) break;
        batch.push(key);
      }
      more = batch.length === ENTRIES_BATCH;
    };
    const nextCommitted = (): string | undefined => {
      if (generation !== this.#generation) {
        generation = this.#generation;
        fill(last);
      }
      for (;;) {
        for (; at < batch.length; at++) {
          const key = batch[at];
          // Committed keys this crank deleted (or that the caller has passed) are skipped.
          if ((last === undefined || compareKeys(key, last) > 0) && this.#buffer.lookup(key) !== null) return key;
        }
        if (!more) return undefined;
        fill(batch[batch.length - 1]);
      }
    };
    fill(last);
    for (;;) {
      const next = nextCommitted();
      const buffered = this.#buffer.firstSetKey(prefix, last ?? prefix, last !== undefined);
      const key = next === undefined ? buffered : buffered === undefined || compareKeys(next, buffered) < 0 ? next : buffered;
      if (key === undefined) return;
      last = key;
      yield key;
    }
  }

  /**
   * Writes the crank's buffered sets and deletes in one synchronous lmdb
   * transaction, then starts an empty crank. If the transaction fails nothing is
   * written and the buffer is kept, so the caller can retry or abort().
   */
  commit(): void {
    const db = this.#open();
    if (this.#held > 0 || this.#buffer.size === 0) return;
    if (this.#buffer.inSavepoint) throw new Error('cannot commit with a crank open: endCrank() or abortCrank() first');
    // Encoded before the transaction: if a value cannot be, nothing is written.
    const writes: [string, Exclude<Held, null>, Uint8Array][] = [];
    const deletes: string[] = [];
    for (const [key, write] of this.#buffer.writes()) {
      if (write === null) deletes.push(key);
      else writes.push([key, write, heldBytes(write)]);
    }
    db.transactionSync(() => {
      for (const key of deletes) db.removeSync(Buffer.from(key, 'utf8'));
      for (const [key, , bytes] of writes) db.putSync(Buffer.from(key, 'utf8'), asBinary(bytes));
    });
    this.#generation++;
    this.#buffer.clear();
    // What was just written reads back as the held value: later blocks' reads need no decode.
    for (const key of deletes) this.#committed.deleted(key);
    for (const [key, write, bytes] of writes) this.#committed.written(key, write instanceof Encoded ? undefined : write, bytes.length);
  }

  /**
   * Holds commits: until release(), commit() keeps writes buffered, so that a
   * replicated block (its inputs, its cranks and its height) reaches lmdb as
   * ONE transaction at the next commit() after release (issue #15).
   */
  hold(): void {
    this.#open();
    this.#held++;
  }

  release(): void {
    if (this.#held === 0) throw new Error('release() without hold()');
    this.#held--;
  }

  /** True between hold() and release(). */
  get holding(): boolean {
    return this.#held > 0;
  }

  /**
   * Called with the key before every set or delete; a replica's guard throws
   * for writes outside the blocks it applies (state changes go through the log).
   */
  setWriteGuard(guard: ((key: string) => void) | null): void {
    this.#writeGuard = guard;
  }

  /** Every committed entry as raw bytes, in key order (a state export). */
  *rawEntries(): Generator<[Buffer, Buffer]> {
    const db = this.#open();
    if (this.#buffer.size > 0) throw new Error('store has uncommitted writes; an export covers committed state only');
    for (const raw of db.getKeys({})) {
      if (startsWithBytes(raw, RAW_LOCAL)) continue;
      const value = db.getBinary(raw);
      if (value !== undefined) yield [Buffer.from(raw), Buffer.from(value)];
    }
  }

  /** True when the store holds a committed key outside the node-local ones (LOCAL_PREFIX). */
  hasState(): boolean {
    const db = this.#open();
    for (const raw of db.getKeys({})) if (!startsWithBytes(raw, RAW_LOCAL)) return true;
    return false;
  }

  /** Writes raw entries (from rawEntries) in one transaction; the store must have no state (node-local keys may be there). */
  importRawEntries(entries: Iterable<readonly [Uint8Array, Uint8Array]>): void {
    const db = this.#open();
    if (this.#buffer.size > 0 || this.hasState()) throw new Error(`cannot import into ${this.path}: the store is not empty`);
    this.#committed.clear();
    db.transactionSync(() => {
      for (const [key, value] of entries) db.putSync(Buffer.from(key), asBinary(Buffer.from(value)));
    });
    this.#generation++;
  }

  /**
   * Replaces the whole committed state (every key outside LOCAL_PREFIX) by
   * `entries` in ONE transaction: a crash leaves the old state or the new
   * one. Node-local keys stay (a replica's binding to its cluster).
   */
  replaceRawEntries(entries: Iterable<readonly [Uint8Array, Uint8Array]>): void {
    const db = this.#open();
    if (this.#buffer.size > 0) throw new Error(`cannot replace the state of ${this.path}: it has uncommitted writes`);
    this.#committed.clear();
    db.transactionSync(() => {
      for (const raw of [...db.getKeys({})]) if (!startsWithBytes(raw, RAW_LOCAL)) db.removeSync(raw);
      for (const [key, value] of entries) db.putSync(Buffer.from(key), asBinary(Buffer.from(value)));
    });
    // An open keys()/entries() iterator reads again from its position (break-perf L2).
    this.#generation++;
  }

  /** Drops every uncommitted write (the whole block). */
  abort(): void {
    this.#open();
    this.#buffer.clear();
    // An open entries() iterator may have stepped over committed keys that
    // were deleted in the buffer: it reads them again (break-10d).
    this.#generation++;
  }

  /**
   * Runs `fn` as one atomic unit: inside an open crank it simply joins that
   * crank (whose owner commits or rolls back); otherwise it gets a crank of
   * its own, committed when `fn` returns and undone if it throws.
   */
  atomically<T>(fn: () => T): T {
    this.#open();
    if (this.#buffer.inSavepoint) return fn();
    this.beginCrank();
    let out: T;
    try {
      out = fn();
    } catch (err) {
      this.abortCrank();
      throw err;
    }
    this.endCrank();
    this.commit();
    return out;
  }

  /** Opens a crank inside the current block: its writes can be undone alone. */
  beginCrank(): void {
    this.#open();
    if (this.#buffer.inSavepoint) throw new Error('a crank is already open in this store');
    this.#buffer.savepoint();
  }

  /** Keeps the open crank's writes; they commit with the block. */
  endCrank(): void {
    this.#open();
    this.#buffer.release();
  }

  /** Undoes the open crank's writes, leaving earlier cranks of the block intact. */
  abortCrank(): void {
    this.#open();
    this.#buffer.rollback();
    this.#generation++;
  }

  /**
   * SHA-256 (hex) of the committed entries under `prefix`, in key order. Each
   * key and each encoded value is hashed as a 4-byte big-endian length followed
   * by its bytes, so equal committed contents give equal hashes regardless of
   * the history that produced them. Node-local keys (LOCAL_PREFIX) are left out.
   */
  stateHash(prefix = ''): string {
    const db = this.#open();
    const rawPrefix = encodeKey(prefix, 'prefix');
    if (this.#buffer.size > 0) {
      throw new Error('store has uncommitted writes; stateHash() covers committed state only, commit() or abort() first');
    }
    const hash = createHash('sha256');
    const start = prefix === '' ? undefined : rawPrefix;
    for (const raw of db.getKeys({ start })) {
      if (!startsWithBytes(raw, rawPrefix)) break;
      if (startsWithBytes(raw, RAW_LOCAL)) continue;
      // Not getBinaryFast: its result is lmdb's whole scratch buffer with a
      // patched `length`, and hash.update() would read all of it.
      const value = db.getBinary(raw);
      if (value === undefined) throw new Error(`store key ${describe(decodeKey(raw))} vanished while hashing`);
      updateFramed(hash, raw);
      updateFramed(hash, value);
    }
    return hash.digest('hex');
  }

  /**
   * Closes lmdb, dropping any uncommitted writes, and deletes the directory of
   * a temporary store. Closing again returns the same promise.
   */
  close(): Promise<void> {
    if (this.#closed === undefined) {
      const db = this.#open();
      this.#db = undefined;
      this.#buffer.clear();
      this.#committed.clear();
      this.#closed = (async () => {
        try {
          await db.close();
        } finally {
          openPaths.delete(this.path);
          this.#unlock();
          if (this.temporary) fs.rmSync(this.path, { recursive: true, force: true });
        }
      })();
    }
    return this.#closed;
  }

  #open(): RootDatabase<unknown, Buffer> {
    if (this.#db === undefined) throw new Error('store is closed');
    return this.#db;
  }
}

/** Committed keys entries() reads with one lmdb cursor. */
const ENTRIES_BATCH = 64;

function startsWithBytes(bytes: Buffer, prefix: Buffer): boolean {
  return bytes.length >= prefix.length && bytes.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

function updateFramed(hash: Hash, bytes: Uint8Array): void {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  hash.update(length);
  hash.update(bytes);
}
