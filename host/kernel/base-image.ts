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
  // A full collection first: QuickJS sets its next collection at 1.5 times
  // the heap it leaves, so vats (and forks of zygotes) start with that much
  // headroom. Otherwise the runtime's heap sits just under QuickJS's initial
  // threshold (256 KiB), and the first delivery of every vat collects, which
  // rewrites object headers across the heap: a fork then shares few pages
  // with its zygote's image.
  sandbox.collectAtNextAllocation();
  sandbox.evaluate('void {}', { budget: BASE_BUDGET, filename: 'collect.js' });
  const image = storedImage(sandbox.snapshot());
  sandbox.dispose();
  return image;
}

export function baseImage(): StoredImage {
  base ??= buildBaseImage();
  return base;
}
