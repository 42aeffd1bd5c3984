// The engine: deterministic, metered QuickJS sandboxes with memory images.
export { Sandbox, SYSCALL_GLOBAL } from './sandbox.js';
export { instancePoolStats, setInstancePool } from './instance-pool.js';
export type { SandboxOptions, CallOptions, SyscallHandler } from './sandbox.js';
export {
  compressImage,
  decompressImage,
  decodeImage,
  encodeImage,
  decodeManifest,
  encodeManifest,
  HASH_BYTES,
  imageFromManifest,
  imageHash,
  isManifest,
  pageHash,
  PAGE_SIZE,
  provenance,
} from './snapshot.js';
export type { ImageHeader, ImageManifest, SnapshotImage } from './snapshot.js';
export * from './errors.js';
export { benchBinary, meteredBinary, unmeteredBinary } from './wasm-binary.js';
export type { WasmBinary } from './wasm-binary.js';
