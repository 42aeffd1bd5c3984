// Instances for restores and clones, made ahead of time or on recycled
// memory (issue 16: fork in <= 5 ms, upgrade in <= 15 ms).
//
// A restore needs a fresh instance (instantiation and the C constructors,
// ~1.5 ms) and then writes the image's pages into its memory, where the
// first touch of every 4 KiB page is a page fault. Two ways around that:
//
// - Spares: up to SPARES_PER_KIND instances per (binary, memory size, cap)
//   are made in idle turns of the event loop (one per turn), after each
//   take: on a recycled memory if there is one (zeroed first; its pages are
//   already resident), else on a new memory, whose pages the last take of
//   that kind covered are touched (each byte written back unchanged, so the
//   memory is exactly a fresh instance's) and every other page is read once,
//   which maps the shared zero page without using memory (the first
//   snapshot's scan would otherwise take a read fault per untouched page,
//   ~4 ms for 16 MiB). Two, because an upgrade takes two at once (the new
//   incarnation and the clone pre-flight inspects).
// - Recycling: a disposed sandbox's memory (already touched) is kept, a few
//   per kind; a take that finds no spare instantiates on it. Its old
//   contents are garbage: the caller must zero every page it does not
//   overwrite, unless an idle turn has zeroed the whole memory first.
//   Reusing memories also keeps V8 from counting a new 16 MiB of external
//   memory per restore, which forces garbage collections when many vats are
//   loaded.
//
// A take that finds neither makes a fresh instance on the spot.
import { zeroPagesExcept } from './snapshot.js';
import type { WasmBinary } from './wasm-binary.js';
import { WasmInstance } from './wasm-instance.js';

const PAGE = 4096;
const SPARES_PER_KIND = 2;
const RECYCLED_PER_KIND = 4;

interface Slot {
  readonly binary: WasmBinary;
  readonly bytes: number;
  readonly maxBytes: number;
  /** Ready instances: zero memory except where instantiation wrote. */
  spares: WasmInstance[];
  /** Pages the last take of this kind wrote. */
  touch: Uint32Array;
  scheduled: boolean;
  recycled: Recycled[];
}

interface Recycled {
  readonly memory: WebAssembly.Memory;
  /** All zero: a take treats it as a fresh memory. */
  clean: boolean;
}

const slots = new Map<string, Slot>();
let enabled = true;
let sink = 0;

function slotFor(binary: WasmBinary, bytes: number, maxBytes: number): Slot {
  const key = `${binary.sha256}/${bytes}/${maxBytes}`;
  let slot = slots.get(key);
  if (!slot) {
    slot = { binary, bytes, maxBytes, spares: [], touch: new Uint32Array(0), scheduled: false, recycled: [] };
    slots.set(key, slot);
  }
  return slot;
}

/**
 * An instance of `binary` with a memory of `initialBytes` capped at
 * `maxBytes`. `dirty` is true when its memory holds garbage beyond what a
 * fresh instance has (a recycled memory): the caller must then zero every
 * page it does not overwrite. `pages` (the page indices about to be
 * written) guides the pre-touching of the next spares.
 */
export function takeInstance(
  binary: WasmBinary,
  initialBytes: number,
  maxBytes: number,
  pages: Uint32Array,
): { inst: WasmInstance; dirty: boolean } {
  const slot = slotFor(binary, initialBytes, maxBytes);
  slot.touch = pages;
  const spare = enabled ? slot.spares.pop() : undefined;
  const recycled = spare || !enabled ? undefined : slot.recycled.pop();
  if (enabled) schedule(slot);
  if (spare) return { inst: spare, dirty: false };
  const inst = new WasmInstance(binary, { initialBytes, maxBytes, memory: recycled?.memory });
  return { inst, dirty: recycled !== undefined && !recycled.clean };
}

/** Keeps a discarded instance's memory for a later take of the same size (nothing may use the instance again). */
export function recycleInstance(inst: WasmInstance): void {
  if (!enabled || inst.alive) return;
  const slot = slotFor(inst.binary, inst.memory.buffer.byteLength, inst.maxBytes);
  if (slot.recycled.length >= RECYCLED_PER_KIND) return;
  slot.recycled.push({ memory: inst.memory, clean: false });
  schedule(slot);
}

// One piece of idle work per turn, so a request arriving meanwhile waits
// for at most one instantiation or one memory's zeroing (~1 ms).
function schedule(slot: Slot): void {
  if (slot.scheduled) return;
  slot.scheduled = true;
  setImmediate(() => {
    slot.scheduled = false;
    if (!enabled) return;
    if (slot.spares.length < SPARES_PER_KIND) slot.spares.push(makeSpare(slot));
    else {
      const dirty = slot.recycled.find((r) => !r.clean);
      if (!dirty) return;
      const mem = new Uint8Array(dirty.memory.buffer);
      zeroPagesExcept(mem, new Uint8Array(mem.length / PAGE));
      dirty.clean = true;
    }
    schedule(slot);
  }).unref();
}

function makeSpare(slot: Slot): WasmInstance {
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
      slot.spares = [];
      slot.recycled = [];
    }
  }
}
