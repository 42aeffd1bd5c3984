// Memory images in the store, page-shared (issue 16).
//
// An image is stored as its manifest (header, page indices, each page's
// sha256) under `img.<id>`, where the id is the manifest's sha256; every
// non-zero 4 KiB page is stored once under `pg.<sha256>`, whichever images
// have it (the base image, zygotes, their forks, each incarnation, successive
// snapshots of one vat). Zero pages are implicit. A snapshot therefore writes
// only the pages the store does not hold yet.
//
// Writes go through the store's crank buffer, so an image and its pages
// commit in the crank's one transaction: a process killed mid-snapshot leaves
// the previous, complete state. Collection is mark and sweep from the images
// the vat records name, also inside a crank: a page is dropped only when no
// stored manifest lists it.
import {
  decodeManifest,
  decompressImage,
  encodeImage,
  encodeManifest,
  HASH_BYTES,
  imageFromManifest,
  imageHash,
  isManifest,
  pageHash,
  PAGE_SIZE,
  provenance,
  type ImageManifest,
  type SnapshotImage,
} from '../engine/index.js';
import crypto from 'node:crypto';
import type { Store } from '../store/index.js';

const IMAGE = 'img.';
const PAGE = 'pg.';
const RELEASED = 'k.img.released';
const COLLECT_AT = 'k.img.collectAt';
/**
 * Collect after this many images may have become unreferenced, or a quarter
 * of the live images if that is more: a collection reads every live manifest
 * and walks every stored key, so its cost is spread over releases in
 * proportion. The counts are kept in the store, so every replica collects in
 * the same crank.
 */
export const COLLECT_AFTER = 16;

// Assembled images by id. Ids are content hashes, so one cache serves every
// store in the process; vats restored from the same image (base, zygote)
// share one copy of its pages.
const assembled = new Map<string, SnapshotImage>();
const ASSEMBLED_LIMIT = 16;

// Pages in memory by hash, weakly: an image assembled from the store reuses
// the buffers of pages some live image (a zygote, the base image, another
// vat's) already holds, so a loaded vat's image (which its sandbox keeps to
// compare its next snapshot against) costs only its own pages.
const livePages = new Map<string, WeakRef<Uint8Array>>();
const forget = new FinalizationRegistry<string>((hex) => {
  if (livePages.get(hex)?.deref() === undefined) livePages.delete(hex);
});

function sharePage(hex: string, page: Uint8Array): void {
  if (livePages.get(hex)?.deref() !== undefined) return;
  livePages.set(hex, new WeakRef(page));
  forget.register(page, hex);
}

function remember(id: string, image: SnapshotImage): SnapshotImage {
  assembled.delete(id);
  assembled.set(id, image);
  if (assembled.size > ASSEMBLED_LIMIT) assembled.delete(assembled.keys().next().value as string);
  return image;
}

function hashHex(hashes: Uint8Array, i: number): string {
  return Buffer.from(hashes.buffer, hashes.byteOffset + i * HASH_BYTES, HASH_BYTES).toString('hex');
}

/** What the store holds: images, distinct pages, and their bytes. */
export interface ImageStoreUsage {
  readonly images: number;
  readonly pages: number;
  readonly pageBytes: number;
  readonly manifestBytes: number;
}

export class ImageStore {
  constructor(
    private readonly store: Store,
    /** Ids of the images something still needs (the vat records' images). */
    private readonly roots: () => Iterable<string>,
  ) {}

  has(id: string): boolean {
    return this.store.has(IMAGE + id);
  }

  /** Stores `image` (its manifest and any page not stored yet) in the current crank; returns its id. */
  put(image: SnapshotImage): string {
    const id = imageHash(image);
    if (this.has(id)) return id;
    const { pages, pageHashes } = image;
    // A stored manifest's pages are all stored, so when the image this one
    // was captured against is here, only the pages that differ need a look;
    // the others are the origin's own buffers, shared already when it was.
    const from = provenance(image);
    const check = from && this.has(from.originId) ? from.fresh : null;
    const n = check ? check.length : pages.length;
    for (let k = 0; k < n; k++) {
      const i = check ? check[k] : k;
      const hex = hashHex(pageHashes, i);
      sharePage(hex, pages[i]);
      const key = PAGE + hex;
      if (!this.store.has(key)) this.store.set(key, pages[i]);
    }
    this.store.set(IMAGE + id, encodeManifest(image));
    return id;
  }

  /** The image stored under `id`. Throws if it (or one of its pages) is missing. */
  get(id: string): SnapshotImage {
    const hit = assembled.get(id);
    if (hit) return hit;
    const raw = this.raw(id);
    // Stores written before page sharing hold whole deflated images.
    if (!isManifest(raw)) return remember(id, decompressImage(raw));
    const manifest = decodeManifest(raw);
    const pages = Array.from(manifest.pageIndices, (_, i) => this.page(manifest, i, id));
    return remember(id, imageFromManifest(manifest, pages));
  }

  private raw(id: string): Uint8Array {
    const bytes = this.store.get(IMAGE + id) as Uint8Array | undefined;
    if (!bytes) throw new Error(`memory image ${id} is missing from the store`);
    return bytes;
  }

  private page(manifest: ImageManifest, i: number, id: string, shared = true): Uint8Array {
    const hex = hashHex(manifest.pageHashes, i);
    const live = shared ? livePages.get(hex)?.deref() : undefined;
    if (live) return live;
    const stored = this.store.get(PAGE + hex) as Uint8Array | undefined;
    if (!stored) throw new Error(`memory image ${id} lists page ${manifest.pageIndices[i]} (${hex.slice(0, 12)}…), which is missing from the store`);
    // The image keeps exactly this object (a Buffer), so the weak reference lives as long as it does.
    const page = Buffer.isBuffer(stored) ? stored : Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
    if (shared) sharePage(hex, page);
    return page;
  }

  /**
   * Notes that an image may have lost its last reference (a vat moved to a
   * newer one); every COLLECT_AFTER such notes (or a quarter of the live
   * images, if more), collects. Call after the vat record names its new
   * image. Part of the current crank.
   */
  release(): void {
    const n = ((this.store.get(RELEASED) as number | undefined) ?? 0) + 1;
    if (n >= ((this.store.get(COLLECT_AT) as number | undefined) ?? COLLECT_AFTER)) this.collect();
    else this.store.set(RELEASED, n);
  }

  /** Drops every image no root names and every page no remaining image lists; part of the current crank. */
  collect(): { images: number; pages: number } {
    const live = new Set(this.roots());
    const livePages = new Set<string>();
    for (const id of live) {
      const raw = this.store.get(IMAGE + id) as Uint8Array | undefined;
      if (!raw || !isManifest(raw)) continue;
      const { pageHashes } = decodeManifest(raw);
      for (let i = 0; i < pageHashes.length / HASH_BYTES; i++) livePages.add(hashHex(pageHashes, i));
    }
    let images = 0;
    let pages = 0;
    for (const key of this.keys(IMAGE)) {
      if (!live.has(key.slice(IMAGE.length))) {
        this.store.delete(key);
        images++;
      }
    }
    for (const key of this.keys(PAGE)) {
      if (!livePages.has(key.slice(PAGE.length))) {
        this.store.delete(key);
        pages++;
      }
    }
    this.store.set(RELEASED, 0);
    this.store.set(COLLECT_AT, Math.max(COLLECT_AFTER, Math.floor(live.size / 4)));
    return { images, pages };
  }

  /**
   * Checks every stored image: its id is the hash of its content, every page
   * it lists is present and hashes to its address. Returns one line per problem.
   */
  verify(onImage?: () => void): string[] {
    const bad: string[] = [];
    // Pages are shared: each distinct page is read and hashed once.
    const sound = new Set<string>();
    for (const key of this.keys(IMAGE)) {
      const id = key.slice(IMAGE.length);
      try {
        const raw = this.raw(id);
        if (!isManifest(raw)) {
          const legacy = crypto.createHash('sha256').update(encodeImage(decompressImage(raw))).digest('hex');
          if (legacy !== id) bad.push(`${id}: content does not match its id`);
          continue;
        }
        const manifest = decodeManifest(raw);
        if (imageHash(manifest) !== id) bad.push(`${id}: manifest does not match its id`);
        for (let i = 0; i < manifest.pageIndices.length; i++) {
          const hex = hashHex(manifest.pageHashes, i);
          if (sound.has(hex)) continue;
          const page = this.page(manifest, i, id, false);
          if (page.length === PAGE_SIZE && pageHash(page).toString('hex') === hex) sound.add(hex);
          else bad.push(`${id}: page ${manifest.pageIndices[i]} does not match its hash`);
        }
      } catch (err) {
        bad.push(`${id}: ${(err as Error).message}`);
      } finally {
        onImage?.();
      }
    }
    return bad;
  }

  /** Ids of the stored images, in key order. */
  ids(): string[] {
    return [...this.keys(IMAGE)].map((k) => k.slice(IMAGE.length));
  }

  /** The stored manifest of an image (page indices and hashes, no page data). */
  manifest(id: string): ImageManifest | undefined {
    const raw = this.raw(id);
    return isManifest(raw) ? decodeManifest(raw) : undefined;
  }

  usage(): ImageStoreUsage {
    let images = 0;
    let manifestBytes = 0;
    for (const key of this.keys(IMAGE)) {
      images++;
      manifestBytes += (this.store.get(key) as Uint8Array).length;
    }
    let pages = 0;
    for (const _ of this.keys(PAGE)) pages++;
    return { images, pages, pageBytes: pages * PAGE_SIZE, manifestBytes };
  }

  // Batched lmdb reads: a collection walks every stored page's key.
  private keys(prefix: string): Generator<string> {
    return this.store.keys(prefix);
  }
}
