// What the guest evaluates, made from what the author wrote. A piece is the
// module file byte for byte (so its hash is `sha256sum` of the file and a
// review shows the author's lines); the guest's module loader takes
// CommonJS-shaped text, so each piece is transformed here, at install or load
// time, with pinned esbuild options. The output depends only on the piece's
// bytes, the loader its module name implies and the esbuild version the
// package lock pins, so it is cached by piece hash and never stored as the
// piece itself (issue 13).
import esbuild from 'esbuild';

/** How a module name's extension is parsed; names without a known extension are JavaScript. */
export type PieceLoader = 'js' | 'ts' | 'json';

export const LOADER_BY_EXTENSION: Readonly<Record<string, PieceLoader>> = {
  '.js': 'js',
  '.mjs': 'js',
  '.cjs': 'js',
  '.ts': 'ts',
  '.mts': 'ts',
  '.cts': 'ts',
  '.json': 'json',
};

export function loaderFor(name: string): PieceLoader {
  const dot = name.lastIndexOf('.');
  const ext = dot > name.lastIndexOf('/') ? name.slice(dot) : '';
  return Object.prototype.hasOwnProperty.call(LOADER_BY_EXTENSION, ext) ? LOADER_BY_EXTENSION[ext] : 'js';
}

/** Every option is pinned: nothing about the machine (tsconfig files, environment) may change the output. */
function transformOptions(loader: PieceLoader): esbuild.TransformOptions {
  return { loader, format: 'cjs', target: 'es2022', tsconfigRaw: {}, logLevel: 'silent', charset: 'utf8' };
}

export class PieceCompileError extends Error {
  override name = 'PieceCompileError';
  constructor(
    readonly module: string,
    readonly reason: string,
  ) {
    super(`module ${module} cannot be compiled for the vat: ${reason}`);
  }
}

// Bounded so a long-running host that sees many bundles does not grow without limit.
const MAX_CACHED = 4096;
const cache = new Map<string, string>();

/**
 * The CommonJS-shaped text the guest's module loader evaluates for a piece
 * (UTF-8 `source` whose sha256 is `hash`). Throws PieceCompileError naming
 * the module and the first syntax error (line:column).
 */
export function compilePiece(name: string, hash: string, source: string): string {
  const loader = loaderFor(name);
  const key = `${loader}:${hash}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  let code: string;
  try {
    code = esbuild.transformSync(source, transformOptions(loader)).code;
  } catch (err) {
    throw new PieceCompileError(name, compileFailure(err));
  }
  if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
  cache.set(key, code);
  return code;
}

/** `compilePiece` without a known hash, for source text that is not (yet) a piece. */
export function compileText(name: string, source: string): string {
  try {
    return esbuild.transformSync(source, transformOptions(loaderFor(name))).code;
  } catch (err) {
    throw new PieceCompileError(name, compileFailure(err));
  }
}

export function compileFailure(err: unknown): string {
  const first = (err as esbuild.TransformFailure).errors?.[0];
  if (!first) return (err as Error).message ?? String(err);
  const at = first.location ? ` at line ${first.location.line}:${first.location.column + 1}` : '';
  return `${first.text}${at}`;
}
