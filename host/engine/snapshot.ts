// Memory images: what a quiescent sandbox is, stored as its non-zero pages.
//
// A QuickJS instance at rest is entirely its linear memory (the stack pointer
// is back at its base between calls), so an image is the non-zero 4 KiB pages
// plus the few numbers needed to re-enter it. The encoding is canonical: the
// same memory always gives the same bytes, so image hashes compare replicas.
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { SnapshotError } from './errors.js';

export const PAGE_SIZE = 4096;
const MAGIC = 'QVIMG001';
const MANIFEST_MAGIC = 'QVMAN001';
const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

export interface ImageHeader {
  /** Package and version of the QuickJS build. */
  readonly variant: string;
  /** sha256 of the exact wasm binary the image came from; nothing else can run it. */
  readonly wasmSha256: string;
  readonly memoryBytes: number;
  readonly runtimePtr: number;
  readonly contextPtr: number;
  readonly stackPointer: number;
  /** Host functions reachable from the guest, by id (the guest stores only the ids). */
  readonly hostFunctions: Readonly<Record<string, number>>;
  readonly clockMs: number;
}

/** An image as a page store keeps it: header, page indices, and each page's sha256. */
export interface ImageManifest {
  readonly header: ImageHeader;
  /** Indices of the non-zero pages, ascending. */
  readonly pageIndices: Uint32Array;
  /** sha256 of each page, 32 bytes each, in the same order: the pages' content addresses. */
  readonly pageHashes: Uint8Array;
}

export interface SnapshotImage extends ImageManifest {
  /**
   * The non-zero pages, 4 KiB each, in pageIndices order. Images share page
   * buffers (an image taken after a restore reuses the unchanged pages of the
   * one it was restored from), so nobody may write into them.
   */
  readonly pages: readonly Uint8Array[];
}

export const HASH_BYTES = 32;

/** sha256 of one page: its content address in a page store. */
export function pageHash(page: Uint8Array): Buffer {
  return crypto.createHash('sha256').update(asBuffer(page)).digest();
}

// Node's hash and compare take a fast path for Buffers only: a plain
// Uint8Array view hashed ~8x slower in our measurements.
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function zeroPage(page: Buffer): boolean {
  return page.equals(ZERO_PAGE);
}

const CHUNK_PAGES = 16;
const ZERO_CHUNK = Buffer.alloc(CHUNK_PAGES * PAGE_SIZE);

/**
 * Zeroes every page of `memory` not marked in `keep`. Looks at 64 KiB at a
 * time: one compare per chunk is far cheaper than one per page, and most
 * chunks of a vat's memory are zero.
 */
export function zeroPagesExcept(memory: Uint8Array, keep: Uint8Array): void {
  const buf = Buffer.from(memory.buffer, memory.byteOffset, memory.byteLength);
  const count = buf.length / PAGE_SIZE;
  for (let c = 0; c < count; c += CHUNK_PAGES) {
    const end = Math.min(count, c + CHUNK_PAGES);
    let all = true;
    for (let p = c; p < end && all; p++) all = keep[p] === 1;
    if (all) continue;
    const chunk = buf.subarray(c * PAGE_SIZE, end * PAGE_SIZE);
    if (end - c === CHUNK_PAGES && chunk.equals(ZERO_CHUNK)) continue;
    for (let p = c; p < end; p++) if (keep[p] !== 1) buf.fill(0, p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
  }
}

/** The indices of the non-zero pages of a memory, ascending. */
export function nonZeroPages(memory: Uint8Array): Uint32Array {
  const buf = Buffer.from(memory.buffer, memory.byteOffset, memory.byteLength);
  const count = Math.floor(buf.length / PAGE_SIZE);
  const out = new Uint32Array(count);
  let n = 0;
  for (let i = 0; i < count; i++) {
    if (!zeroPage(buf.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE))) out[n++] = i;
  }
  return out.slice(0, n);
}

// Where each memory page sits in an image (-1: a zero page), computed once per
// image: capture compares memory against the image it started from.
const slotsOf = new WeakMap<SnapshotImage, Int32Array>();
function pageSlots(image: SnapshotImage): Int32Array {
  let slots = slotsOf.get(image);
  if (!slots) {
    slots = new Int32Array(image.header.memoryBytes / PAGE_SIZE).fill(-1);
    image.pageIndices.forEach((p, i) => (slots![p] = i));
    slotsOf.set(image, slots);
  }
  return slots;
}

/** For a captured image: the id of the image it was compared against, and the positions of the pages that differed from it. */
export interface Provenance {
  readonly originId: string;
  readonly fresh: Uint32Array;
}
const provenances = new WeakMap<SnapshotImage, Provenance>();

/** How `image` relates to the image it was captured against, if it was. A page store needs to check only the fresh pages when it holds the origin. */
export function provenance(image: SnapshotImage): Provenance | undefined {
  return provenances.get(image);
}

/**
 * The image of `memory`. With `origin` (the image this memory was restored
 * from or last captured as), pages equal to the origin's are shared with it
 * and only the others are copied and hashed: a snapshot costs one compare per
 * page plus work proportional to the pages that changed. The result is the
 * same bytes with or without an origin.
 */
export function captureImage(memory: Uint8Array, header: ImageHeader, origin?: SnapshotImage | null): SnapshotImage {
  if (memory.byteLength !== header.memoryBytes) {
    throw new SnapshotError(`memory is ${memory.byteLength} bytes but header says ${header.memoryBytes}`);
  }
  const buf = Buffer.from(memory.buffer, memory.byteOffset, memory.byteLength);
  const count = buf.length / PAGE_SIZE;
  const slots = origin ? pageSlots(origin) : new Int32Array(0);
  // Per page: >= 0 the origin's slot it equals, -1 zero, -2 changed.
  const state = new Int32Array(count);
  let nonZero = 0;
  let changed = 0;
  for (let p = 0; p < count; p++) {
    const page = buf.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
    const slot = p < slots.length ? slots[p] : -1;
    if (slot >= 0 && page.equals(origin!.pages[slot])) state[p] = slot;
    else if (zeroPage(page)) state[p] = -1;
    else {
      state[p] = -2;
      changed++;
    }
    if (state[p] !== -1) nonZero++;
  }
  const pageIndices = new Uint32Array(nonZero);
  const pages: Uint8Array[] = new Array(nonZero);
  const pageHashes = new Uint8Array(nonZero * HASH_BYTES);
  const fresh = Buffer.alloc(changed * PAGE_SIZE);
  const freshAt = new Uint32Array(changed);
  let i = 0;
  let f = 0;
  for (let p = 0; p < count; p++) {
    const s = state[p];
    if (s === -1) continue;
    pageIndices[i] = p;
    if (s >= 0) {
      pages[i] = origin!.pages[s];
      pageHashes.set(origin!.pageHashes.subarray(s * HASH_BYTES, (s + 1) * HASH_BYTES), i * HASH_BYTES);
    } else {
      const copy = fresh.subarray(f * PAGE_SIZE, (f + 1) * PAGE_SIZE);
      copy.set(buf.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE));
      pages[i] = copy;
      pageHashes.set(pageHash(copy), i * HASH_BYTES);
      freshAt[f++] = i;
    }
    i++;
  }
  const image = Object.freeze({ header: Object.freeze({ ...header }), pageIndices, pages: Object.freeze(pages), pageHashes });
  if (origin) provenances.set(image, { originId: imageHash(origin), fresh: freshAt });
  return image;
}

/** An image from its header and pages (hashing each page). */
export function imageFromPages(header: ImageHeader, pageIndices: Uint32Array, pages: readonly Uint8Array[]): SnapshotImage {
  const pageHashes = new Uint8Array(pages.length * HASH_BYTES);
  pages.forEach((page, i) => pageHashes.set(pageHash(page), i * HASH_BYTES));
  return Object.freeze({ header: Object.freeze({ ...header }), pageIndices, pages: Object.freeze(pages.map(asBuffer)), pageHashes });
}

/** Writes the image's pages into memory that already holds zeros elsewhere. */
export function writePages(image: SnapshotImage, memory: Uint8Array): void {
  const { pageIndices, pages } = image;
  for (let i = 0; i < pageIndices.length; i++) memory.set(pages[i], pageIndices[i] * PAGE_SIZE);
}

function headerJson(h: ImageHeader): string {
  // Fixed key order keeps the encoding canonical.
  const fns = Object.keys(h.hostFunctions)
    .sort()
    .map((k) => [k, h.hostFunctions[k]]);
  return JSON.stringify([
    h.variant,
    h.wasmSha256,
    h.memoryBytes,
    h.runtimePtr,
    h.contextPtr,
    h.stackPointer,
    fns,
    h.clockMs,
  ]);
}

// Both encodings: magic, header length, page count, header JSON, page
// indices, then per page either its 4 KiB (a whole image) or its 32-byte hash
// (a manifest, whose pages live in a page store).
function encode(magic: string, image: Pick<ImageManifest, 'header' | 'pageIndices'>, body: readonly Uint8Array[]): Uint8Array {
  const header = Buffer.from(headerJson(image.header), 'utf8');
  const pre = Buffer.alloc(magic.length + 8);
  pre.write(magic, 0, 'latin1');
  pre.writeUInt32LE(header.length, magic.length);
  pre.writeUInt32LE(image.pageIndices.length, magic.length + 4);
  const indices = Buffer.alloc(image.pageIndices.length * 4);
  image.pageIndices.forEach((p, i) => indices.writeUInt32LE(p, i * 4));
  return Buffer.concat([pre, header, indices, ...body]);
}

function decode(
  magic: string,
  what: string,
  bytes: Uint8Array,
  entryBytes: number,
): { header: ImageHeader; pageIndices: Uint32Array; body: Uint8Array } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < magic.length + 8 || buf.toString('latin1', 0, magic.length) !== magic) {
    throw new SnapshotError(`not a quickvat ${what} (bad magic)`);
  }
  const headerLen = buf.readUInt32LE(magic.length);
  const pageCount = buf.readUInt32LE(magic.length + 4);
  const headerStart = magic.length + 8;
  const indicesStart = headerStart + headerLen;
  const dataStart = indicesStart + pageCount * 4;
  if (buf.length !== dataStart + pageCount * entryBytes) {
    throw new SnapshotError(`${what} is ${buf.length} bytes; its header promises ${dataStart + pageCount * entryBytes} (truncated or damaged)`);
  }
  let fields: unknown;
  try {
    fields = JSON.parse(buf.toString('utf8', headerStart, indicesStart));
  } catch {
    throw new SnapshotError(`${what} header is not valid JSON`);
  }
  if (!Array.isArray(fields) || fields.length !== 8) throw new SnapshotError(`${what} header has the wrong shape`);
  const [variant, wasmSha256, memoryBytes, runtimePtr, contextPtr, stackPointer, fns, clockMs] = fields as [
    string, string, number, number, number, number, [string, number][], number,
  ];
  const pageIndices = new Uint32Array(pageCount);
  let last = -1;
  for (let i = 0; i < pageCount; i++) {
    const p = buf.readUInt32LE(indicesStart + i * 4);
    if (p <= last || (p + 1) * PAGE_SIZE > memoryBytes) {
      throw new SnapshotError(`${what} page index ${p} is out of order or beyond ${memoryBytes} bytes`);
    }
    pageIndices[i] = last = p;
  }
  const header: ImageHeader = {
    variant,
    wasmSha256,
    memoryBytes,
    runtimePtr,
    contextPtr,
    stackPointer,
    hostFunctions: Object.fromEntries(fns),
    clockMs,
  };
  return { header, pageIndices, body: new Uint8Array(buf.subarray(dataStart)) };
}

/** Canonical bytes of a whole image: magic, header, page count, indices, pages. Portable: needs no page store. */
export function encodeImage(image: SnapshotImage): Uint8Array {
  return encode(MAGIC, image, image.pages);
}

export function decodeImage(bytes: Uint8Array): SnapshotImage {
  const { header, pageIndices, body } = decode(MAGIC, 'memory image', bytes, PAGE_SIZE);
  const pages = Array.from(pageIndices, (_, i) => body.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
  return imageFromPages(header, pageIndices, pages);
}

/** Canonical bytes of an image's manifest (pages by hash); its sha256 is the image's id. */
export function encodeManifest(image: ImageManifest): Uint8Array {
  return encode(MANIFEST_MAGIC, image, [image.pageHashes]);
}

export function decodeManifest(bytes: Uint8Array): ImageManifest {
  const { header, pageIndices, body } = decode(MANIFEST_MAGIC, 'image manifest', bytes, HASH_BYTES);
  return Object.freeze({ header: Object.freeze(header), pageIndices, pageHashes: body });
}

export function isManifest(bytes: Uint8Array): boolean {
  return bytes.length >= MANIFEST_MAGIC.length && Buffer.from(bytes.buffer, bytes.byteOffset, MANIFEST_MAGIC.length).toString('latin1') === MANIFEST_MAGIC;
}

/** An image from its manifest and its pages (checked against their hashes). */
export function imageFromManifest(manifest: ImageManifest, pages: readonly Uint8Array[]): SnapshotImage {
  const { header, pageIndices, pageHashes } = manifest;
  if (pages.length !== pageIndices.length) throw new SnapshotError(`image manifest lists ${pageIndices.length} pages, got ${pages.length}`);
  pages.forEach((page, i) => {
    if (page.length !== PAGE_SIZE) throw new SnapshotError(`page ${pageIndices[i]} is ${page.length} bytes, not ${PAGE_SIZE}`);
  });
  return Object.freeze({ header, pageIndices, pages: Object.freeze(pages.map(asBuffer)), pageHashes });
}

/** Deflate, level 1: about a third of the sparse size for a few ms. */
export function compressImage(image: SnapshotImage): Uint8Array {
  return zlib.deflateRawSync(encodeImage(image), { level: 1 });
}

export function decompressImage(bytes: Uint8Array): SnapshotImage {
  let raw: Buffer;
  try {
    raw = zlib.inflateRawSync(bytes);
  } catch (err) {
    throw new SnapshotError(`compressed memory image is damaged: ${(err as Error).message}`);
  }
  return decodeImage(raw);
}

const hashes = new WeakMap<ImageManifest, string>();

/**
 * sha256 (hex) of the image's manifest, which names every page by its
 * sha256: equal for byte-identical vat memories, and the image's id in a
 * page store. Costs nothing beyond the page hashes capture already made.
 */
export function imageHash(image: ImageManifest): string {
  let h = hashes.get(image);
  if (h === undefined) {
    h = crypto.createHash('sha256').update(encodeManifest(image)).digest('hex');
    hashes.set(image, h);
  }
  return h;
}
