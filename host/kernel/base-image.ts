// The base image every vat starts from: a fresh sandbox that has evaluated
// the guest runtime (SES lockdown, marshal, liveslots). Building it costs a
// few hundred milliseconds, so it is built once per process; it is
// deterministic, so every host builds the same bytes and the same id.
import { imageHash, Sandbox, type SnapshotImage } from '../engine/index.js';
import { runtimeBundleSource } from './runtime-bundle.js';

export interface StoredImage {
  readonly id: string;
  readonly image: SnapshotImage;
}

const BASE_BUDGET = 100_000_000_000n;
let base: StoredImage | undefined;

export function storedImage(image: SnapshotImage): StoredImage {
  return { id: imageHash(image), image };
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
