// Instances for restores and clones, made ahead of time or on recycled
// memory (issue 16: fork in <= 5 ms, upgrade in <= 15 ms).
//
// A restore needs a fresh instance (instantiation and the C constructors,
// ~1 ms), must zero what instantiation wrote outside the image, and then
// writes the image's pages into the memory, where the first touch of every
// 4 KiB page is a page fault. The pool does that work in idle turns of the
// event loop (one piece per turn, so a request arriving meanwhile waits for
// at most ~1 ms), per kind of instance (binary, memory size, cap):
//
// - Filled spares: an instance whose memory already holds one of the two
//   images restored most often of that kind (a zygote, the base image;
//   among those restored at least twice), so the next restore of the same
//   image writes nothing: a fork or an upgrade's new incarnation starts at
//   once. Most often, not most recently: one-off restores (a vat loaded
//   once, a cold start) do not push out a zygote forked again and again.
// - Clean spares (two: an upgrade takes two at once, the new incarnation and
//   the clone pre-flight inspects): instantiated, on a recycled memory if
//   there is one (zeroed first; its pages are resident already), else on a
//   new memory whose pages the last take covered are touched (each byte
//   written back unchanged) and every other page read once, which maps the
//   shared zero page without using memory (the first snapshot's scan would
//   otherwise take a read fault per untouched page, ~4 ms for 16 MiB).
// - Recycling: a disposed sandbox's memory (already touched) is kept, a few
//   per kind; a take that finds no spare instantiates on it, zeroing every
//   page the new contents do not cover (its old contents are garbage) unless
//   an idle turn has zeroed it. Reusing memories also keeps V8 from counting
//   a new 16 MiB of external memory per restore, which forces garbage
//   collections when many vats are loaded.
//
// A take that finds none of these makes a fresh instance on the spot.
//
// Bounded (break16 #3): only the two most recently used kinds keep anything
// (at most 2 clean + 2 filled spares and 4 recycled memories each), and
// memories above 32 MiB (a vat that grew its heap) are never pooled.
import { nonZeroPages, zeroPagesExcept } from './snapshot.js';
import type { WasmBinary } from './wasm-binary.js';
import { WasmInstance } from './wasm-instance.js';

const PAGE = 4096;
const CLEAN_SPARES = 2;
const FILLED_KINDS = 2;
/** Images whose restores are counted per kind; the least restored is forgotten first. */
const COUNTED = 8;
const RECYCLED_PER_KIND = 4;
/** Kinds of instance (binary, memory size, cap) the pool keeps anything for: the most recently used. */
const POOLED_KINDS = 2;
/** Memories above this size are never pooled (a vat that grew its heap): 32 MiB. */
const POOLED_MAX_BYTES = 32 * 1024 * 1024;

/** What a memory is to hold. */
export interface Contents {
  /**
   * Identifies the contents (an image object, compared by identity): a spare
   * filled ahead of time with the same key serves a later take. Undefined
   * for one-off contents (a clone), never filled ahead.
   */
  readonly key?: object;
  /** The pages `write` writes, ascending; every other page must end up zero. */
  readonly pages: Uint32Array;
  /** Writes the contents into a memory that is zero outside `pages`. */
  write(mem: Uint8Array): void;
}

interface Slot {
  readonly binary: WasmBinary;
  readonly bytes: number;
  readonly maxBytes: number;
  /** Instantiated; zero memory except where instantiation wrote. */
  clean: WasmInstance[];
  /** Instances whose memory holds exactly some contents, by key. */
  filled: Map<object, WasmInstance>;
  /** Contents taken with a key: how often, and the last take's sequence number. */
  counted: Counted[];
  /** Takes so far (orders ties). */
  takes: number;
  /** Pages the last take wrote. */
  touch: Uint32Array;
  scheduled: boolean;
  recycled: Recycled[];
  /** Dropped from the pool: its idle work stops and what it holds is garbage. */
  retired?: boolean;
}

interface Counted {
  readonly contents: Contents;
  n: number;
  last: number;
}

// Counts halve every AGE_EVERY takes, so an image that stopped being
// restored gives way to one restored often now.
const AGE_EVERY = 64;

function count(slot: Slot, contents: Contents): void {
  const seq = ++slot.takes;
  if (seq % AGE_EVERY === 0) for (const c of slot.counted) c.n >>= 1;
  const hit = slot.counted.find((c) => c.contents.key === contents.key);
  if (hit) {
    hit.n++;
    hit.last = seq;
    return;
  }
  slot.counted.push({ contents, n: 1, last: seq });
  if (slot.counted.length > COUNTED) {
    const least = slot.counted.reduce((a, b) => (b.n < a.n || (b.n === a.n && b.last < a.last) ? b : a));
    slot.counted.splice(slot.counted.indexOf(least), 1);
  }
}

// The contents worth filling spares with: restored at least twice, most often first.
function favouritesOf(slot: Slot): Contents[] {
  return slot.counted
    .filter((c) => c.n >= 2)
    .sort((a, b) => b.n - a.n || b.last - a.last)
    .slice(0, FILLED_KINDS)
    .map((c) => c.contents);
}

interface Recycled {
  readonly memory: WebAssembly.Memory;
  /** All zero: instantiating on it gives a fresh instance's memory. */
  clean: boolean;
}

const slots = new Map<string, Slot>();
/** Takes so far, by where their instance came from (for tests and benchmarks). */
const served = { filled: 0, clean: 0, recycled: 0, fresh: 0 };

/**
 * How many takes a filled spare, a clean spare, a recycled memory or a fresh
 * instance served so far; how many filled and clean spares are ready now,
 * for how many kinds, and the bytes of all memories the pool holds.
 */
export function instancePoolStats(): Readonly<typeof served & { readyFilled: number; readyClean: number; kinds: number; heldBytes: number }> {
  let readyFilled = 0;
  let readyClean = 0;
  let heldBytes = 0;
  for (const slot of slots.values()) {
    readyFilled += slot.filled.size;
    readyClean += slot.clean.length;
    heldBytes += (slot.filled.size + slot.clean.length + slot.recycled.length) * slot.bytes;
  }
  return { ...served, readyFilled, readyClean, kinds: slots.size, heldBytes };
}
let enabled = true;
let sink = 0;

// The slot for a kind of instance, marked most recently used; only the
// POOLED_KINDS most recently used kinds keep anything (break16 #3: every
// memory size a vat grows to would otherwise pin spares and recycled
// memories for good). Undefined for memories above POOLED_MAX_BYTES, which
// are never pooled.
function slotFor(binary: WasmBinary, bytes: number, maxBytes: number): Slot | undefined {
  if (bytes > POOLED_MAX_BYTES) return undefined;
  const key = `${binary.sha256}/${bytes}/${maxBytes}`;
  let slot = slots.get(key);
  if (slot) slots.delete(key);
  else slot = { binary, bytes, maxBytes, clean: [], filled: new Map(), counted: [], takes: 0, touch: new Uint32Array(0), scheduled: false, recycled: [] };
  slots.set(key, slot);
  for (const [k, old] of slots) {
    if (slots.size <= POOLED_KINDS) break;
    slots.delete(k);
    old.retired = true;
  }
  return slot;
}

// Pages a fresh instance has written by the time its constructors ran: the
// same for every instance of a binary, so found once.
const freshDirtyPages = new WeakMap<WasmBinary, Uint32Array>();
function dirtyPagesOfFresh(binary: WasmBinary): Uint32Array {
  let pages = freshDirtyPages.get(binary);
  if (!pages) {
    const bytes = 16 * 1024 * 1024;
    pages = nonZeroPages(new WasmInstance(binary, { initialBytes: bytes, maxBytes: bytes }).bytes());
    freshDirtyPages.set(binary, pages);
  }
  return pages;
}

// Makes a memory hold exactly `contents`: zero elsewhere, whether it held a
// fresh instance's bytes or (dirty) anything.
function fill(inst: WasmInstance, contents: Contents, dirty: boolean): void {
  const mem = inst.bytes();
  const covered = new Uint8Array(mem.length / PAGE);
  for (const p of contents.pages) covered[p] = 1;
  if (dirty) zeroPagesExcept(mem, covered);
  else {
    for (const p of dirtyPagesOfFresh(inst.binary)) if (!covered[p]) mem.fill(0, p * PAGE, (p + 1) * PAGE);
  }
  contents.write(mem);
}

/**
 * An instance of `binary` with a memory of `initialBytes` (capped at
 * `maxBytes`) that holds exactly `contents`: filled ahead of time when a
 * spare holds the same contents, else written now into a clean spare, a
 * recycled memory or a fresh instance.
 */
export function instanceHolding(binary: WasmBinary, initialBytes: number, maxBytes: number, contents: Contents): WasmInstance {
  const slot = enabled ? slotFor(binary, initialBytes, maxBytes) : undefined;
  if (!slot) {
    served.fresh++;
    const inst = new WasmInstance(binary, { initialBytes, maxBytes });
    fill(inst, contents, false);
    return inst;
  }
  slot.touch = contents.pages;
  if (contents.key !== undefined) count(slot, contents);
  schedule(slot);
  const ready = contents.key === undefined ? undefined : slot.filled.get(contents.key);
  if (ready) {
    served.filled++;
    slot.filled.delete(contents.key!);
    return ready;
  }
  const spare = slot.clean.pop();
  if (spare) {
    served.clean++;
    fill(spare, contents, false);
    return spare;
  }
  const recycled = slot.recycled.pop();
  served[recycled ? 'recycled' : 'fresh']++;
  const inst = new WasmInstance(binary, { initialBytes, maxBytes, memory: recycled?.memory });
  fill(inst, contents, recycled !== undefined && !recycled.clean);
  return inst;
}

// Instances whose memory was already handed back: a memory enters the pool
// at most once per instance, whatever the callers do.
const handedBack = new WeakSet<WasmInstance>();

/** Keeps a discarded instance's memory for a later take of the same size (nothing may use the instance again). */
export function recycleInstance(inst: WasmInstance): void {
  if (!enabled || inst.alive || handedBack.has(inst)) return;
  handedBack.add(inst);
  const slot = slotFor(inst.binary, inst.memory.buffer.byteLength, inst.maxBytes);
  if (!slot || slot.recycled.length >= RECYCLED_PER_KIND || slot.recycled.some((r) => r.memory === inst.memory)) return;
  slot.recycled.push({ memory: inst.memory, clean: false });
  schedule(slot);
}

// Not unref'd: Node runs unref'd immediates only when something else wakes
// the event loop, one per wake-up, so an idle host would never finish. The
// work is bounded (a few pieces after each take), so a process ends at most
// a few milliseconds later for it.
function schedule(slot: Slot): void {
  if (slot.scheduled) return;
  slot.scheduled = true;
  setImmediate(() => {
    slot.scheduled = false;
    if (enabled && !slot.retired && idleStep(slot)) schedule(slot);
  });
}

// One piece of idle work; false when there is nothing left to do.
function idleStep(slot: Slot): boolean {
  const favourites = favouritesOf(slot);
  // Filled spares for contents no longer among the favourites give their memory back.
  for (const [key, inst] of slot.filled) {
    if (favourites.some((c) => c.key === key)) continue;
    slot.filled.delete(key);
    if (slot.recycled.length < RECYCLED_PER_KIND) slot.recycled.push({ memory: inst.memory, clean: false });
  }
  if (slot.clean.length < CLEAN_SPARES) {
    slot.clean.push(makeClean(slot));
    return true;
  }
  const wanted = favourites.find((c) => !slot.filled.has(c.key!));
  if (wanted) {
    const inst = makeClean(slot);
    fill(inst, wanted, false);
    slot.filled.set(wanted.key!, inst);
    return true;
  }
  const dirty = slot.recycled.find((r) => !r.clean);
  if (!dirty) return false;
  const mem = new Uint8Array(dirty.memory.buffer);
  zeroPagesExcept(mem, new Uint8Array(mem.length / PAGE));
  dirty.clean = true;
  return true;
}

function makeClean(slot: Slot): WasmInstance {
  const recycled = slot.recycled.pop();
  if (recycled) {
    // Its pages are resident already: zero them, then instantiate on it.
    if (!recycled.clean) {
      const mem = new Uint8Array(recycled.memory.buffer);
      zeroPagesExcept(mem, new Uint8Array(mem.length / PAGE));
    }
    return new WasmInstance(slot.binary, { initialBytes: slot.bytes, maxBytes: slot.maxBytes, memory: recycled.memory });
  }
  const inst = new WasmInstance(slot.binary, { initialBytes: slot.bytes, maxBytes: slot.maxBytes });
  const mem = inst.bytes();
  for (const p of slot.touch) {
    const at = p * PAGE;
    if (at < mem.length) mem[at] = mem[at];
  }
  for (let at = 0; at < mem.length; at += PAGE) sink ^= mem[at];
  return inst;
}

/** Drops spares and recycled memories and stops keeping them (tests; benchmarks measuring plain restores). */
export function setInstancePool(on: boolean): void {
  enabled = on;
  if (!on) {
    for (const slot of slots.values()) {
      slot.clean = [];
      slot.filled.clear();
      slot.counted = [];
      slot.recycled = [];
    }
  }
}
