// Math.random inside a vat: deterministic, and different per vat. QuickJS's
// own generator is seeded from the clock at context creation and shared by
// every fork of an image; ours is xoshiro128** seeded from the vat's identity.
import crypto from 'node:crypto';

/** The guest global the host calls (once, after a restore) with the seed words. */
export const RESEED_GLOBAL = '__quickvat_reseed';

/** Evaluated once into every new sandbox, before any other code. */
export const RANDOM_PRELUDE = `(() => {
  let a = 1, b = 2, c = 3, d = 4;
  const rotl = (x, k) => (x << k) | (x >>> (32 - k));
  const next = () => {
    const r = Math.imul(rotl(Math.imul(b, 5), 7), 9);
    const t = b << 9;
    c ^= a; d ^= b; b ^= c; a ^= d; c ^= t; d = rotl(d, 11);
    return r >>> 0;
  };
  const random = function random() { return ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992; };
  Object.defineProperty(Math, 'random', { value: random, writable: true, configurable: true });
  Object.defineProperty(globalThis, '${RESEED_GLOBAL}', {
    value: (words) => {
      [a, b, c, d] = String(words).split(',').map((w) => Number(w) | 0);
      if ((a | b | c | d) === 0) a = 1;
      return '';
    },
    configurable: true,
  });
})();`;

/** The four 32-bit seed words for `identity` (the same on every replica). */
export function seedWords(identity: string): number[] {
  const h = crypto.createHash('sha256').update(`quickvat/random/${identity}`).digest();
  return [0, 4, 8, 12].map((o) => h.readInt32LE(o));
}
