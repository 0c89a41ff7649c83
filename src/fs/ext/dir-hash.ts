/**
 * The hashes that order htree directories (the hash version is in the htree root, byte
 * 0x1C of the directory's first block): 0 legacy, 1 half MD4, 2 TEA, and 3/4/5 the same
 * three reading name bytes as unsigned chars (the superblock's s_flags says which: a
 * filesystem made on a machine whose `char` is signed uses 0-2). The seed is the
 * superblock's s_hash_seed, or the MD4 initial values when it is all zero. The result has
 * its low bit cleared (an odd hash in an index entry marks a collision continuing in the
 * next leaf), and 0xFFFFFFFE, the end-of-directory marker, becomes 0xFFFFFFFC.
 */
export const HASH = { LEGACY: 0, HALF_MD4: 1, TEA: 2, LEGACY_UNSIGNED: 3, HALF_MD4_UNSIGNED: 4, TEA_UNSIGNED: 5 } as const;

const DEFAULT_SEED = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476] as const;

/** The major hash of `name`; undefined for a hash version this reader does not know. */
export function dirHash(name: Uint8Array, version: number, seed: readonly number[]): number | undefined {
  const buf = seed.length === 4 && seed.some((x) => x !== 0) ? Uint32Array.from(seed) : Uint32Array.from(DEFAULT_SEED);
  const unsigned = version >= 3;
  let hash: number;
  switch (version) {
    case HASH.LEGACY:
    case HASH.LEGACY_UNSIGNED:
      hash = legacyHash(name, unsigned);
      break;
    case HASH.HALF_MD4:
    case HASH.HALF_MD4_UNSIGNED: {
      const input = new Uint32Array(8);
      for (let p = 0; p < name.length; p += 32) {
        stringToWords(name.subarray(p), name.length - p, input, 8, unsigned);
        halfMd4(buf, input);
      }
      hash = buf[1] ?? 0;
      break;
    }
    case HASH.TEA:
    case HASH.TEA_UNSIGNED: {
      const input = new Uint32Array(4);
      for (let p = 0; p < name.length; p += 16) {
        stringToWords(name.subarray(p), name.length - p, input, 4, unsigned);
        tea(buf, input);
      }
      hash = buf[0] ?? 0;
      break;
    }
    default:
      return undefined;
  }
  hash = (hash & ~1) >>> 0;
  return hash === 0xfffffffe ? 0xfffffffc : hash;
}

const char = (byte: number, unsigned: boolean): number => (unsigned || byte < 128 ? byte : byte - 256);

function legacyHash(name: Uint8Array, unsigned: boolean): number {
  let hash0 = 0x12a3fe2d;
  let hash1 = 0x37abe8f9;
  for (const byte of name) {
    let hash = (hash1 + ((hash0 ^ Math.imul(char(byte, unsigned), 7152373)) >>> 0)) >>> 0;
    if (hash & 0x80000000) hash = (hash - 0x7fffffff) >>> 0;
    hash1 = hash0;
    hash0 = hash;
  }
  return (hash0 << 1) >>> 0;
}

/** Packs up to 4 × `words` bytes of the name into words, padded with the length. */
function stringToWords(msg: Uint8Array, length: number, out: Uint32Array, words: number, unsigned: boolean): void {
  let pad = (length | (length << 8)) >>> 0;
  pad = (pad | (pad << 16)) >>> 0;
  let val = pad;
  const len = Math.min(length, words * 4);
  let w = 0;
  for (let i = 0; i < len; i++) {
    val = (char(msg[i] ?? 0, unsigned) + ((val << 8) >>> 0)) >>> 0;
    if (i % 4 === 3) {
      out[w++] = val;
      val = pad;
    }
  }
  if (w < words) out[w++] = val;
  while (w < words) out[w++] = pad;
}

const rol = (x: number, s: number): number => ((x << s) | (x >>> (32 - s))) >>> 0;

function halfMd4(buf: Uint32Array, x: Uint32Array): void {
  let a = buf[0] ?? 0, b = buf[1] ?? 0, c = buf[2] ?? 0, d = buf[3] ?? 0;
  const F = (p: number, q: number, r: number): number => (r ^ (p & (q ^ r))) >>> 0;
  const G = (p: number, q: number, r: number): number => ((p & q) + ((p ^ q) & r)) >>> 0;
  const H = (p: number, q: number, r: number): number => (p ^ q ^ r) >>> 0;
  const K2 = 0x5a827999; // 013240474631
  const K3 = 0x6ed9eba1; // 015666365641
  const r = (f: typeof F, w: number, p: number, q: number, s: number, v: number, k: number, shift: number): number =>
    rol((w + f(p, q, s) + ((v + k) >>> 0)) >>> 0, shift);
  const X = (i: number): number => x[i] ?? 0;
  // Round 1
  a = r(F, a, b, c, d, X(0), 0, 3); d = r(F, d, a, b, c, X(1), 0, 7); c = r(F, c, d, a, b, X(2), 0, 11); b = r(F, b, c, d, a, X(3), 0, 19);
  a = r(F, a, b, c, d, X(4), 0, 3); d = r(F, d, a, b, c, X(5), 0, 7); c = r(F, c, d, a, b, X(6), 0, 11); b = r(F, b, c, d, a, X(7), 0, 19);
  // Round 2
  a = r(G, a, b, c, d, X(1), K2, 3); d = r(G, d, a, b, c, X(3), K2, 5); c = r(G, c, d, a, b, X(5), K2, 9); b = r(G, b, c, d, a, X(7), K2, 13);
  a = r(G, a, b, c, d, X(0), K2, 3); d = r(G, d, a, b, c, X(2), K2, 5); c = r(G, c, d, a, b, X(4), K2, 9); b = r(G, b, c, d, a, X(6), K2, 13);
  // Round 3
  a = r(H, a, b, c, d, X(3), K3, 3); d = r(H, d, a, b, c, X(7), K3, 9); c = r(H, c, d, a, b, X(2), K3, 11); b = r(H, b, c, d, a, X(6), K3, 15);
  a = r(H, a, b, c, d, X(1), K3, 3); d = r(H, d, a, b, c, X(5), K3, 9); c = r(H, c, d, a, b, X(0), K3, 11); b = r(H, b, c, d, a, X(4), K3, 15);
  buf[0] = ((buf[0] ?? 0) + a) >>> 0;
  buf[1] = ((buf[1] ?? 0) + b) >>> 0;
  buf[2] = ((buf[2] ?? 0) + c) >>> 0;
  buf[3] = ((buf[3] ?? 0) + d) >>> 0;
}

function tea(buf: Uint32Array, input: Uint32Array): void {
  let sum = 0;
  let b0 = buf[0] ?? 0, b1 = buf[1] ?? 0;
  const a = input[0] ?? 0, b = input[1] ?? 0, c = input[2] ?? 0, d = input[3] ?? 0;
  for (let n = 0; n < 16; n++) {
    sum = (sum + 0x9e3779b9) >>> 0;
    b0 = (b0 + ((((b1 << 4) + a) ^ (b1 + sum) ^ ((b1 >>> 5) + b)) >>> 0)) >>> 0;
    b1 = (b1 + ((((b0 << 4) + c) ^ (b0 + sum) ^ ((b0 >>> 5) + d)) >>> 0)) >>> 0;
  }
  buf[0] = ((buf[0] ?? 0) + b0) >>> 0;
  buf[1] = ((buf[1] ?? 0) + b1) >>> 0;
}
