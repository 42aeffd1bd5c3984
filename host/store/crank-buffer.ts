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

export class CrankBuffer {
  readonly #writes = new Map<string, BufferedWrite>();
  /**
   * Keys whose buffered write is a value (not a delete), in store order, as of
   * the last ordered query: most blocks make none, so keys written since wait
   * in #unsorted and join the tree at the next query (each key once per
   * query: O(log n) amortised per write, whatever the mix).
   */
  readonly #set = new BTree<string, true>(undefined, compareKeys);
  readonly #unsorted = new Set<string>();
  /**
   * Keys set in this block that the committed store lacks (the caller said
   * so, or the store knew): deleting one again leaves nothing to commit, so
   * the rows a block creates and drops (its queue items, result promises,
   * their c-list entries) never reach lmdb (issue #10).
   */
  readonly #fresh = new Set<string>();
  /** Since the savepoint: each touched key's write before it (undefined: none). */
  #journal: Map<string, BufferedWrite | undefined> | null = null;
  /** Of the journal's keys, those that were fresh before the savepoint. */
  #journalFresh: Set<string> | null = null;

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
    if (this.#journal && !this.#journal.has(key)) {
      this.#journal.set(key, before);
      if (this.#fresh.has(key)) this.#journalFresh!.add(key);
    }
    if (this.#fresh.has(key)) {
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
    if (isSet(before) !== isSet(write)) this.#unsorted.add(key);
  }

  // Brings the tree up to date with the writes made since the last query.
  #sort(): void {
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
    this.#fresh.clear();
    this.#journal = null;
    this.#journalFresh = null;
  }

  /** Starts a crank: later writes can be undone by rollback() without touching earlier ones. */
  savepoint(): void {
    this.#journal = new Map();
    this.#journalFresh = new Set();
  }

  /** Undoes every write since savepoint(); O(keys the crank touched). */
  rollback(): void {
    const journal = this.#journal;
    const wasFresh = this.#journalFresh;
    this.#journal = null;
    this.#journalFresh = null;
    if (!journal) return;
    for (const [key, previous] of journal) {
      this.#put(key, previous, this.#writes.get(key));
      if (wasFresh!.has(key)) this.#fresh.add(key);
      else this.#fresh.delete(key);
    }
  }

  /** Keeps the crank's writes (they commit with the block). */
  release(): void {
    this.#journal = null;
    this.#journalFresh = null;
  }

  get inSavepoint(): boolean {
    return this.#journal !== null;
  }

  /**
   * The smallest buffered key that is set (not deleted), starts with `prefix`
   * and is at or after `from` (strictly after when `exclusive`). O(log n).
   */
  firstSetKey(prefix: string, from: string, exclusive: boolean): string | undefined {
    if (this.#unsorted.size > 0) this.#sort();
    const key = exclusive ? this.#set.nextHigherKey(from) : this.#set.has(from) ? from : this.#set.nextHigherKey(from);
    return key !== undefined && key.startsWith(prefix) ? key : undefined;
  }
}

function isSet(write: BufferedWrite | undefined): boolean {
  return write !== undefined && write !== null;
}
