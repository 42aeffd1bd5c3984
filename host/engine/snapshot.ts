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

export interface SnapshotImage {
  readonly header: ImageHeader;
  /** Indices of the non-zero pages, ascending. */
  readonly pageIndices: Uint32Array;
  /** Those pages, concatenated in the same order. */
  readonly pageData: Uint8Array;
}

/** The indices of the non-zero pages of a memory, ascending. */
export function nonZeroPages(memory: Uint8Array): Uint32Array {
  const buf = Buffer.from(memory.buffer, memory.byteOffset, memory.byteLength);
  const count = Math.floor(buf.length / PAGE_SIZE);
  const out = new Uint32Array(count);
  let n = 0;
  for (let i = 0; i < count; i++) {
    const off = i * PAGE_SIZE;
    if (!buf.subarray(off, off + PAGE_SIZE).equals(ZERO_PAGE)) out[n++] = i;
  }
  return out.slice(0, n);
}

export function captureImage(memory: Uint8Array, header: ImageHeader): SnapshotImage {
  if (memory.byteLength !== header.memoryBytes) {
    throw new SnapshotError(`memory is ${memory.byteLength} bytes but header says ${header.memoryBytes}`);
  }
  const pageIndices = nonZeroPages(memory);
  const pageData = new Uint8Array(pageIndices.length * PAGE_SIZE);
  pageIndices.forEach((p, i) => pageData.set(memory.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE), i * PAGE_SIZE));
  return Object.freeze({ header: Object.freeze({ ...header }), pageIndices, pageData });
}

/** Writes the image's pages into memory that already holds zeros elsewhere. */
export function writePages(image: SnapshotImage, memory: Uint8Array): void {
  const { pageIndices, pageData } = image;
  for (let i = 0; i < pageIndices.length; i++) {
    memory.set(pageData.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE), pageIndices[i] * PAGE_SIZE);
  }
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

/** Canonical bytes of an image: magic, header, page count, indices, pages. */
export function encodeImage(image: SnapshotImage): Uint8Array {
  const header = Buffer.from(headerJson(image.header), 'utf8');
  const pre = Buffer.alloc(MAGIC.length + 8);
  pre.write(MAGIC, 0, 'latin1');
  pre.writeUInt32LE(header.length, MAGIC.length);
  pre.writeUInt32LE(image.pageIndices.length, MAGIC.length + 4);
  const indices = Buffer.alloc(image.pageIndices.length * 4);
  image.pageIndices.forEach((p, i) => indices.writeUInt32LE(p, i * 4));
  return Buffer.concat([pre, header, indices, image.pageData]);
}

export function decodeImage(bytes: Uint8Array): SnapshotImage {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < MAGIC.length + 8 || buf.toString('latin1', 0, MAGIC.length) !== MAGIC) {
    throw new SnapshotError('not a quickvat memory image (bad magic)');
  }
  const headerLen = buf.readUInt32LE(MAGIC.length);
  const pageCount = buf.readUInt32LE(MAGIC.length + 4);
  const headerStart = MAGIC.length + 8;
  const indicesStart = headerStart + headerLen;
  const dataStart = indicesStart + pageCount * 4;
  if (buf.length !== dataStart + pageCount * PAGE_SIZE) {
    throw new SnapshotError(
      `memory image is ${buf.length} bytes; its header promises ${dataStart + pageCount * PAGE_SIZE} (truncated or damaged)`,
    );
  }
  let fields: unknown;
  try {
    fields = JSON.parse(buf.toString('utf8', headerStart, indicesStart));
  } catch {
    throw new SnapshotError('memory image header is not valid JSON');
  }
  if (!Array.isArray(fields) || fields.length !== 8) throw new SnapshotError('memory image header has the wrong shape');
  const [variant, wasmSha256, memoryBytes, runtimePtr, contextPtr, stackPointer, fns, clockMs] = fields as [
    string, string, number, number, number, number, [string, number][], number,
  ];
  const pageIndices = new Uint32Array(pageCount);
  let last = -1;
  for (let i = 0; i < pageCount; i++) {
    const p = buf.readUInt32LE(indicesStart + i * 4);
    if (p <= last || (p + 1) * PAGE_SIZE > memoryBytes) {
      throw new SnapshotError(`memory image page index ${p} is out of order or beyond ${memoryBytes} bytes`);
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
  const pageData = new Uint8Array(buf.subarray(dataStart));
  return Object.freeze({ header: Object.freeze(header), pageIndices, pageData });
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

/** sha256 over the canonical encoding: equal for byte-identical vat memories. */
export function imageHash(image: SnapshotImage): string {
  return crypto.createHash('sha256').update(encodeImage(image)).digest('hex');
}
