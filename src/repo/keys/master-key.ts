import { randomBytes } from 'node:crypto';

/** Bytes in a master key: a 32-byte AES-256 key followed by a 32-byte HMAC key for ids. */
export const MASTER_KEY_SIZE = 64;

/**
 * The repository's secret. Random, made once at `init`, never stored in clear: each key file
 * holds it wrapped under a passphrase-derived key. Plain data so it can cross to workers.
 */
export interface MasterKey {
  encryptionKey: Buffer;
  idKey: Buffer;
}

/** A fresh random master key. */
export function newMasterKey(): MasterKey {
  return splitMasterKey(randomBytes(MASTER_KEY_SIZE));
}

/** Splits the 64 stored bytes into the two keys. */
export function splitMasterKey(bytes: Uint8Array): MasterKey {
  if (bytes.length !== MASTER_KEY_SIZE) throw new RangeError(`a master key has ${MASTER_KEY_SIZE} bytes`);
  const all = Buffer.from(bytes);
  return { encryptionKey: all.subarray(0, 32), idKey: all.subarray(32, 64) };
}

/** The 64 bytes to wrap. */
export function joinMasterKey(key: MasterKey): Buffer {
  return Buffer.concat([key.encryptionKey, key.idKey]);
}
