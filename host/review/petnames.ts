// A voter's petnames: their own names for piece hashes they have already
// looked at, as a JSON object { "<sha256>": "mathStuff v4 (audited)" }.
import fs from 'node:fs';

const HASH = /^[0-9a-fA-F]{64}$/;

/** Parses petnames JSON; `source` names the input in errors. Hashes are lowercased. */
export function parsePetnames(text: string, source = 'petnames'): Record<string, string> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new SyntaxError(`${source} is not valid JSON: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${source} must be a JSON object mapping piece hashes to names, got ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`);
  }
  const names: Record<string, string> = Object.create(null);
  for (const [key, name] of Object.entries(value)) {
    if (!HASH.test(key)) throw new TypeError(`${source}: key ${JSON.stringify(key)} is not a piece hash (64 hex digits of sha256)`);
    if (typeof name !== 'string' || name.trim() === '') throw new TypeError(`${source}: the name for ${key} must be a non-empty string, got ${JSON.stringify(name)}`);
    const hash = key.toLowerCase();
    if (hash in names) throw new TypeError(`${source}: hash ${hash} is named twice (keys differ only in letter case)`);
    names[hash] = name;
  }
  return { ...names };
}

export function loadPetnames(path: string): Record<string, string> {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read petnames file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parsePetnames(text, `petnames file ${path}`);
}
