// A state export: every committed entry of a store, as raw bytes, with what
// the exporter says it is (e.g. a replica's height and state hash). A new
// replica starts from one instead of from the first block, so the log's old
// blocks can be deleted (issue #15).
import fs from 'node:fs';
import { pack, unpack } from 'msgpackr';
import type { Store } from './store.js';

const FORMAT = 'quickvat-state-export/1';

export interface ExportMeta {
  readonly height: number;
  readonly stateHash: string;
  /** The cluster the exporting replica belongs to, and its genesis id (a joiner must be of the same cluster). */
  readonly cluster?: { readonly name: string; readonly genesis: string };
}

/** Writes the store's committed entries and `meta` to `file` (atomically: a temporary file, then rename). */
export function writeStateExport(store: Store, file: string, meta: ExportMeta): ExportMeta & { entries: number; bytes: number } {
  const entries = [...store.rawEntries()];
  const bytes = pack({ format: FORMAT, meta, entries });
  const tmp = `${file}.partial`;
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, file);
  return { ...meta, entries: entries.length, bytes: bytes.length };
}

/** Reads an export file: what the exporter said it is, and its entries. Throws naming the file if it is not one. */
export function loadStateExport(file: string): { meta: ExportMeta; entries: [Uint8Array, Uint8Array][] } {
  let data: { format?: unknown; meta?: ExportMeta; entries?: [Uint8Array, Uint8Array][] };
  try {
    data = unpack(fs.readFileSync(file));
  } catch (err) {
    throw new Error(`${file} is not a quickvat state export: ${(err as Error).message}`);
  }
  if (data?.format !== FORMAT || !Array.isArray(data.entries) || typeof data.meta?.stateHash !== 'string') {
    throw new Error(`${file} is not a quickvat state export (expected format ${FORMAT})`);
  }
  return { meta: data.meta, entries: data.entries };
}

/** Loads an export into an empty store; returns what the exporter said it is. */
export function readStateExport(store: Store, file: string): ExportMeta {
  const { meta, entries } = loadStateExport(file);
  store.importRawEntries(entries);
  return meta;
}
