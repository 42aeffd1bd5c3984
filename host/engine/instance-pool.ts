// Instances for restores, made ahead of time or on recycled memory (issue 16:
// fork in <= 5 ms).
//
// A restore needs a fresh instance (instantiation and the C constructors,
// ~1.5 ms) and then writes the image's pages into its memory, where the
// first touch of every 4 KiB page is a page fault. Two ways around that:
//
// - Spares: after each restore, one spare instance per (binary, memory size,
//   cap) is made in the next idle turn of the event loop, the pages the last
//   image of that kind covered are touched (each byte written back
//   unchanged, so the memory is exactly a fresh instance's), and every other
//   page is read once, which maps the shared zero page without using memory
//   (the first snapshot's scan would otherwise take a read fault per
//   untouched page, ~4 ms for 16 MiB).
// - Recycling: a disposed sandbox's memory (already touched) is kept, a few
//   per kind, and a later restore instantiates on it. Its old contents are
//   garbage: the restore must zero every page the image does not cover,
//   unless an idle turn has zeroed the whole memory first.
//   Reusing memories also keeps V8 from counting a new 16 MiB of external
//   memory per restore, which forces garbage collections when many vats are
//   loaded.
//
// A restore that finds neither makes a fresh instance on the spot.
import { zeroPagesExcept } from './snapshot.js';
import type { WasmBinary } from './wasm-binary.js';
import { WasmInstance } from './wasm-instance.js';

const PAGE = 4096;
const RECYCLED_PER_KIND = 4;

interface Slot {
  spare: WasmInstance | null;
  /** Pages the last restore of this kind wrote. */
  touch: Uint32Array;
  scheduled: boolean;
  recycled: Recycled[];
}

interface Recycled {
  readonly memory: WebAssembly.Memory;
  /** All zero: a restore treats it as a fresh memory. */
  clean: boolean;
}

const slots = new Map<string, Slot>();
let enabled = true;
let sink = 0;

function slotFor(binary: WasmBinary, bytes: number, maxBytes: number): Slot {
  const key = `${binary.sha256}/${bytes}/${maxBytes}`;
  let slot = slots.get(key);
  if (!slot) {
    slot = { spare: null, touch: new Uint32Array(0), scheduled: false, recycled: [] };
    slots.set(key, slot);
  }
  return slot;
}

/**
 * An instance of `binary` with a memory of `initialBytes` capped at
 * `maxBytes`. `dirty` is true when its memory holds garbage beyond what a
 * fresh instance has (a recycled memory): the caller must then zero every
 * page it does not overwrite. `pages` (the page indices about to be
 * written) guides the pre-touching of the next spare.
 */
export function takeInstance(
  binary: WasmBinary,
  initialBytes: number,
  maxBytes: number,
  pages: Uint32Array,
): { inst: WasmInstance; dirty: boolean } {
  const slot = slotFor(binary, initialBytes, maxBytes);
  slot.touch = pages;
  const spare = slot.spare;
  slot.spare = null;
  const recycled = spare || !enabled ? undefined : slot.recycled.pop();
  if (enabled && !recycled) schedule(slot, binary, initialBytes, maxBytes);
  if (spare) return { inst: spare, dirty: false };
  const inst = new WasmInstance(binary, { initialBytes, maxBytes, memory: recycled?.memory });
  return { inst, dirty: recycled !== undefined && !recycled.clean };
}

/** Keeps a discarded instance's memory for a later restore of the same size (nothing may use the instance again). */
// Instances whose memory was already handed back: a memory enters the pool
// at most once per instance, whatever the callers do.
const handedBack = new WeakSet<WasmInstance>();

export function recycleInstance(inst: WasmInstance): void {
  if (!enabled || inst.alive || handedBack.has(inst)) return;
  handedBack.add(inst);
  const slot = slotFor(inst.binary, inst.memory.buffer.byteLength, inst.maxBytes);
  if (slot.recycled.length >= RECYCLED_PER_KIND) return;
  const entry: Recycled = { memory: inst.memory, clean: false };
  slot.recycled.push(entry);
  setImmediate(() => {
    // Taken (or dropped) before this turn came: the restore zeroed it.
    if (!slot.recycled.includes(entry)) return;
    const mem = new Uint8Array(entry.memory.buffer);
    zeroPagesExcept(mem, new Uint8Array(mem.length / PAGE));
    entry.clean = true;
  }).unref();
}

function schedule(slot: Slot, binary: WasmBinary, initialBytes: number, maxBytes: number): void {
  if (slot.scheduled) return;
  slot.scheduled = true;
  setImmediate(() => {
    slot.scheduled = false;
    if (slot.spare || !enabled) return;
    const inst = new WasmInstance(binary, { initialBytes, maxBytes });
    const mem = inst.bytes();
    for (const p of slot.touch) {
      const at = p * PAGE;
      if (at < mem.length) mem[at] = mem[at];
    }
    for (let at = 0; at < mem.length; at += PAGE) sink ^= mem[at];
    slot.spare = inst;
  }).unref();
}

/** Drops spares and recycled memories and stops keeping them (tests; benchmarks measuring plain restores). */
export function setInstancePool(on: boolean): void {
  enabled = on;
  if (!on) {
    for (const slot of slots.values()) {
      slot.spare = null;
      slot.recycled = [];
    }
  }
}
