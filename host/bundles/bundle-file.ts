// A bundle as one file, for the CLI: the manifest plus every piece (base64),
// so `quickvat bundle` output can be reviewed, uploaded and installed later.
import fs from 'node:fs';
import { manifestBundleId, sha256Hex, validateManifest, type SourceBundle } from './manifest.js';

export const BUNDLE_FILE_FORMAT = 'quickvat-bundle-file-1';

export function writeBundleFile(path: string, bundle: SourceBundle): void {
  const pieces = Object.fromEntries([...bundle.pieces].sort(([a], [b]) => (a < b ? -1 : 1)).map(([h, bytes]) => [h, Buffer.from(bytes).toString('base64')]));
  const text = JSON.stringify({ format: BUNDLE_FILE_FORMAT, bundleId: bundle.bundleId, manifest: bundle.manifest, pieces }, null, 1);
  fs.writeFileSync(`${path}.tmp`, text);
  fs.renameSync(`${path}.tmp`, path);
}

/** Reads and checks a bundle file: the manifest's shape, its id, and every piece against its hash. */
export function readBundleFile(path: string): SourceBundle {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(path, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code ? `cannot read bundle file ${path}: ${code}` : `bundle file ${path} is not JSON`);
  }
  const file = raw as { format?: unknown; bundleId?: unknown; manifest?: unknown; pieces?: unknown };
  if (!file || file.format !== BUNDLE_FILE_FORMAT) throw new Error(`${path} is not a quickvat bundle file (format must be ${BUNDLE_FILE_FORMAT})`);
  let manifest;
  try {
    manifest = validateManifest(file.manifest);
  } catch (err) {
    throw new Error(`bundle file ${path}: ${(err as Error).message}`);
  }
  const bundleId = manifestBundleId(manifest);
  if (file.bundleId !== bundleId) throw new Error(`bundle file ${path}: bundleId ${String(file.bundleId)} does not match its manifest (${bundleId})`);
  if (typeof file.pieces !== 'object' || file.pieces === null) throw new Error(`bundle file ${path}: pieces must be an object of hash -> base64`);
  const pieces = new Map<string, Uint8Array>();
  for (const [hash, b64] of Object.entries(file.pieces as Record<string, unknown>)) {
    if (typeof b64 !== 'string') throw new Error(`bundle file ${path}: piece ${hash} is not base64 text`);
    const bytes = new Uint8Array(Buffer.from(b64, 'base64'));
    if (sha256Hex(bytes) !== hash) throw new Error(`bundle file ${path}: piece ${hash} does not match its hash (tampered or damaged)`);
    pieces.set(hash, bytes);
  }
  return { manifest, pieces, bundleId };
}
