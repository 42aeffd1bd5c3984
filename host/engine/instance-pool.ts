// Instances made ahead of time for restores (issue 16: fork in <= 5 ms).
//
// A restore needs a fresh instance (instantiation and the C constructors,
// ~1.5 ms) and then writes the image's pages into its memory, where the
// first touch of every 4 KiB page is a page fault. Both can happen before
// the restore is asked for: after each restore, one spare instance per
// (binary, memory cap) is made in the next idle turn of the event loop, and
// the pages the last image of that kind covered are touched (each byte
// written back unchanged, so the memory is exactly a fresh instance's). A
// restore that finds no spare makes one on the spot, as before.
import type { WasmBinary } from './wasm-binary.js';
import { WasmInstance } from './wasm-instance.js';

const PAGE = 4096;

interface Slot {
  spare: WasmInstance | null;
  /** Pages the last restore of this kind wrote. */
  touch: Uint32Array;
  scheduled: boolean;
}

const slots = new Map<string, Slot>();
let enabled = true;

/**
 * A fresh instance of `binary` with a memory of `initialBytes` capped at
 * `maxBytes`; `pages` (the page indices about to be written) guides the
 * next spare's pre-touching.
 */
export function takeInstance(binary: WasmBinary, initialBytes: number, maxBytes: number, pages: Uint32Array): WasmInstance {
  const key = `${binary.sha256}/${initialBytes}/${maxBytes}`;
  let slot = slots.get(key);
  if (!slot) {
    slot = { spare: null, touch: pages, scheduled: false };
    slots.set(key, slot);
  }
  slot.touch = pages;
  const spare = slot.spare;
  slot.spare = null;
  if (enabled) schedule(slot, binary, initialBytes, maxBytes);
  return spare ?? new WasmInstance(binary, { initialBytes, maxBytes });
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
    slot.spare = inst;
  }).unref();
}

/** Drops the spares and stops making them (benchmarks measuring cold restores; tests). */
export function setInstancePool(on: boolean): void {
  enabled = on;
  if (!on) for (const slot of slots.values()) slot.spare = null;
}
