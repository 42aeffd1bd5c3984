// The base image every vat starts from: a fresh sandbox that has evaluated
// the guest runtime (SES lockdown, marshal, liveslots). Building it costs a
// few hundred milliseconds, so it is built once per process; it is
// deterministic, so every host builds the same bytes and the same id.
import crypto from 'node:crypto';
import { compressImage, decompressImage, encodeImage, Sandbox, type SnapshotImage } from '../engine/index.js';
import { runtimeBundleSource } from './runtime-bundle.js';

export interface StoredImage {
  readonly id: string;
  readonly image: SnapshotImage;
  readonly compressed: Uint8Array;
}

const BASE_BUDGET = 100_000_000_000n;
let base: StoredImage | undefined;

export function imageId(image: SnapshotImage): string {
  return crypto.createHash('sha256').update(encodeImage(image)).digest('hex');
}

export function storedImage(image: SnapshotImage): StoredImage {
  return { id: imageId(image), image, compressed: compressImage(image) };
}

/**
 * A fresh sandbox that has evaluated the guest runtime (or `source`, another
 * build of it), as an image (no caching: cold-start baselines use this).
 */
export function buildBaseImage(identity = 'quickvat-base', source = runtimeBundleSource()): StoredImage {
  const sandbox = Sandbox.create({ identity });
  sandbox.evaluate(source, { budget: BASE_BUDGET, filename: 'vat-runtime.js' });
  const image = storedImage(sandbox.snapshot());
  sandbox.dispose();
  return image;
}

export function baseImage(): StoredImage {
  base ??= buildBaseImage();
  return base;
}

// Decompressing a multi-megabyte image costs milliseconds; vats restored from
// the same image (base, zygotes) share one decoded copy.
const decoded = new Map<string, SnapshotImage>();
const DECODED_LIMIT = 16;

export function decodeStoredImage(id: string, compressed: () => Uint8Array): SnapshotImage {
  const hit = decoded.get(id);
  if (hit) return hit;
  const image = base?.id === id ? base.image : decompressImage(compressed());
  decoded.set(id, image);
  if (decoded.size > DECODED_LIMIT) decoded.delete(decoded.keys().next().value as string);
  return image;
}
