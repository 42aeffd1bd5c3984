// One key order for everything a vat stores: JavaScript's string order
// (UTF-16 code units), which is also the order of @endo/marshal's compareRank
// and encodePassable. The host's store orders keys by their UTF-8 bytes, which
// disagrees for code points above U+FFFF against U+E000..U+FFFF (private use
// and others), and cannot hold lone surrogates at all. So every vatstore key
// crosses the syscall boundary escaped:
//   code units below U+D800 stay as they are;
//   a code unit u in U+D800..U+FFFF becomes two characters,
//     U+E000 + ((u - 0xD800) >> 8) and U+E100 + ((u - 0xD800) & 0xFF).
// Escaped keys contain no surrogates, their UTF-8 byte order is their code
// unit order, and that order is the order of the original keys (issue #11).

const NEEDS_ESCAPE = /[\uD800-\uFFFF]/;
const ESCAPED = /[\uE000-\uFFFF]/;

/** The key as stored. */
export function escapeKey(key: string): string {
  if (!NEEDS_ESCAPE.test(key)) return key;
  let out = '';
  for (let i = 0; i < key.length; i++) {
    const u = key.charCodeAt(i);
    if (u < 0xd800) out += key[i];
    else out += String.fromCharCode(0xe000 + ((u - 0xd800) >> 8), 0xe100 + ((u - 0xd800) & 0xff));
  }
  return out;
}

/** The key as the vat named it. */
export function unescapeKey(stored: string): string {
  if (!ESCAPED.test(stored)) return stored;
  let out = '';
  for (let i = 0; i < stored.length; i++) {
    const c = stored.charCodeAt(i);
    if (c < 0xe000) {
      out += stored[i];
      continue;
    }
    const trail = stored.charCodeAt(++i);
    out += String.fromCharCode(0xd800 + ((c - 0xe000) << 8) + (trail - 0xe100));
  }
  return out;
}
