import { createCipheriv } from 'node:crypto';

/**
 * A block's fingerprint: the Poly1305 tag of ChaCha20-Poly1305 (RFC 8439) under a 32-byte key,
 * with the block as additional data and nothing encrypted, the nonce the block's index (48
 * bits little-endian, then six zero bytes). Each index gets its own one-time Poly1305 key,
 * so two different blocks share a fingerprint with probability about 2^-89 (a 256 KiB block
 * is 16,384 Poly1305 blocks: the bound is 8·L/2^106) for whoever does not hold the key.
 *
 * It is not an object id (those stay SHA-256 or the repository's keyed MAC): it only answers
 * "is this block what it was at the parent snapshot?" for a backup that has no change
 * tracking and must read every block (backup/block-fingerprints.ts). OpenSSL computes it at
 * ~12 GB/s per core on this project's machines, HMAC-SHA-256 at ~1.9.
 */
export const FINGERPRINT_BYTES = 16;

/** Bytes of a fingerprint key. */
export const FINGERPRINT_KEY_BYTES = 32;

const nonce = Buffer.alloc(12);

/** Writes the fingerprint of block `index` (`block`, its bytes) into `into[at, at + 16)`. */
export function blockFingerprint(key: Uint8Array, index: number, block: Uint8Array, into: Uint8Array, at: number): void {
  if (!Number.isSafeInteger(index) || index < 0 || index >= 2 ** 48) throw new RangeError(`block index ${index} out of range`);
  nonce.writeUIntLE(index, 0, 6);
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: FINGERPRINT_BYTES });
  cipher.setAAD(block, { plaintextLength: 0 });
  cipher.final();
  into.set(cipher.getAuthTag(), at);
}

/** True when `expected[at, at + 16)` is a fingerprint (all zero: none known) equal to `actual`'s at the same place. */
export function sameFingerprint(expected: Uint8Array, actual: Uint8Array, at: number): boolean {
  let any = 0;
  let differ = 0;
  for (let i = at; i < at + FINGERPRINT_BYTES; i++) {
    any |= expected[i] as number;
    differ |= (expected[i] as number) ^ (actual[i] as number);
  }
  return any !== 0 && differ === 0;
}
