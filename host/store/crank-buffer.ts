// The writes not yet committed to lmdb: for each key, its new value (held
// as held-values.ts says), or null when it was deleted. A block of cranks shares one buffer (one lmdb
// transaction per block); each crank opens a savepoint, so a failed crank
// rolls back only its own writes.
//
// Ordered queries must cost O(log n) per call whatever the mix of writes and
// reads (issue #10: re-sorting per query let 32k interleaved set/getNextKey
// calls block the host for minutes at 16% of the delivery budget), so the keys
// that are set live in a B+ tree ordered as lmdb orders them.
import BTreeModule from 'sorted-btree';
import type { Held } from './held-values.js';
import { compareKeys } from './keys.js';

// sorted-btree is CommonJS with `exports.default`: under Node's ESM loader the
// default import is the whole exports object.
type BTreeClass = typeof BTreeModule.default;
const BTree: BTreeClass = (BTreeModule as unknown as { default: BTreeClass }).default;

/** A key's pending write: what held-values.ts holds, null for a delete. */
export type BufferedWrite = Held;

/** Journal entries whose room is kept for the next crank. */
const JOURNAL_KEPT = 4096;

export class CrankBuffer {
  readonly #writes = new Map<string, BufferedWrite>();
  /**
   * Keys whose buffered write is a value (not a delete), in store order. Most
   * blocks make no ordered query, so the tree is built at a block's first
   * (O(n log n), once); from then on, keys whose membership changed wait in
   * #unsorted and join it at the next query (each key once per query: O(log
   * n) amortised per write, whatever the mix).
   */
  readonly #set = new BTree<string, true>(undefined, compareKeys);
  readonly #unsorted = new Set<string>();
  #ordered = false;
  /**
   * Keys set in this block that the committed store lacks (the caller said
   * so, or the store knew): deleting one again leaves nothing to commit, so
   * the rows a block creates and drops (its queue items, result promises,
   * their c-list entries) never reach lmdb (issue #10).
   */
  readonly #fresh = new Set<string>();
  /**
   * The open crank's journal: each write's key, the key's write before it
   * (undefined: none) and whether it was fresh, in order. Rollback replays
   * it backwards, so a key written twice ends at its first entry's state.
   * Arrays reused from crank to crank: a crank allocates no journal.
   */
  readonly #journalKeys: string[] = [];
  readonly #journalWrites: (BufferedWrite | undefined)[] = [];
  readonly #journalFresh: boolean[] = [];
  #journalLength = 0;
  #inSavepoint = false;

  get size(): number {
    return this.#writes.size;
  }

  /** The buffered write for `key`, or undefined when nothing buffered touches it. */
  lookup(key: string): BufferedWrite | undefined {
    return this.#writes.get(key);
  }

  /**
   * Buffers `write` for `key`. `fresh` says the committed store lacks the key
   * (it counts only for the block's first write of it: later ones keep what
   * the first said).
   */
  record(key: string, write: BufferedWrite, fresh = false): void {
    const before = this.#writes.get(key);
    const wasFresh = this.#fresh.has(key);
    if (this.#inSavepoint) {
      const n = this.#journalLength++;
      this.#journalKeys[n] = key;
      this.#journalWrites[n] = before;
      this.#journalFresh[n] = wasFresh;
    }
    if (wasFresh) {
      if (write === null) {
        this.#fresh.delete(key);
        this.#put(key, undefined, before);
        return;
      }
    } else if (fresh && before === undefined && write !== null) {
      this.#fresh.add(key);
    }
    this.#put(key, write, before);
  }

  #put(key: string, write: BufferedWrite | undefined, before: BufferedWrite | undefined): void {
    if (write === undefined) this.#writes.delete(key);
    else this.#writes.set(key, write);
    // The tree holds the keys set to a value; a rewrite of a value (the
    // kernel's counters, every crank) leaves its membership as it was.
    if (this.#ordered && isSet(before) !== isSet(write)) this.#unsorted.add(key);
  }

  // Brings the tree up to date with the writes made since the last query.
  #sort(): void {
    if (!this.#ordered) {
      for (const [key, write] of this.#writes) if (write !== null) this.#set.set(key, true);
      this.#ordered = true;
      return;
    }
    for (const key of this.#unsorted) {
      const write = this.#writes.get(key);
      if (write === undefined || write === null) this.#set.delete(key);
      else this.#set.set(key, true);
    }
    this.#unsorted.clear();
  }

  writes(): IterableIterator<[string, BufferedWrite]> {
    return this.#writes.entries();
  }

  clear(): void {
    this.#writes.clear();
    this.#set.clear();
    this.#unsorted.clear();
    this.#ordered = false;
    this.#fresh.clear();
    this.#endJournal();
  }

  /** Starts a crank: later writes can be undone by rollback() without touching earlier ones. */
  savepoint(): void {
    this.#endJournal();
    this.#inSavepoint = true;
  }

  /** Undoes every write since savepoint(); O(writes the crank made). */
  rollback(): void {
    if (!this.#inSavepoint) return;
    for (let i = this.#journalLength - 1; i >= 0; i--) {
      const key = this.#journalKeys[i];
      this.#put(key, this.#journalWrites[i], this.#writes.get(key));
      if (this.#journalFresh[i]) this.#fresh.add(key);
      else this.#fresh.delete(key);
    }
    this.#endJournal();
  }

  /** Keeps the crank's writes (they commit with the block). */
  release(): void {
    this.#endJournal();
  }

  get inSavepoint(): boolean {
    return this.#inSavepoint;
  }

  // The journal keeps no value past its crank (a big crank's would stay
  // alive), nor the room a big crank needed.
  #endJournal(): void {
    if (this.#journalLength > JOURNAL_KEPT) {
      this.#journalKeys.length = this.#journalWrites.length = this.#journalFresh.length = 0;
    } else {
      this.#journalWrites.fill(undefined, 0, this.#journalLength);
    }
    this.#journalLength = 0;
    this.#inSavepoint = false;
  }

  /**
   * The smallest buffered key that is set (not deleted), starts with `prefix`
   * and is at or after `from` (strictly after when `exclusive`). O(log n).
   */
  firstSetKey(prefix: string, from: string, exclusive: boolean): string | undefined {
    if (!this.#ordered || this.#unsorted.size > 0) this.#sort();
    const key = exclusive ? this.#set.nextHigherKey(from) : this.#set.has(from) ? from : this.#set.nextHigherKey(from);
    return key !== undefined && key.startsWith(prefix) ? key : undefined;
  }
}

function isSet(write: BufferedWrite | undefined): boolean {
  return write !== undefined && write !== null;
}
