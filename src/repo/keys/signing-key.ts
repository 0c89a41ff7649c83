import { createHash, createPrivateKey, createPublicKey, hkdfSync, sign, verify, type KeyObject } from 'node:crypto';
import { joinMasterKey, type MasterKey } from './master-key.js';

/**
 * The repository's Ed25519 signing key, which authenticates the digest records
 * (docs/repository-format.md §18) so that the storage side can check stored bytes without
 * the master key.
 *
 * It is not stored: every key holder derives the same key pair from the master key,
 *
 *   seed = HKDF-SHA256(ikm = the 64 master key bytes, salt = empty,
 *                      info = "coffer stored-digest signing key v1", length 32)
 *
 * and uses the seed as the Ed25519 private key (RFC 8032). So an existing repository gets its
 * key the first time a key holder writes, two hosts can never make two different keys, and no
 * secret is added to the repository. Only the 32-byte public key is stored, in plaintext
 * (`stored-digest-key`); its fingerprint is the SHA-256 of those 32 bytes, 64 hex.
 */
export const SIGNING_KEY_INFO = 'coffer stored-digest signing key v1';

/** Bytes of an Ed25519 public key and of a signature. */
export const PUBLIC_KEY_SIZE = 32;
export const SIGNATURE_SIZE = 64;

// DER prefixes that wrap a raw Ed25519 key (RFC 8410): PKCS#8 for the 32-byte seed, SPKI for
// the 32-byte public key. Node imports keys in these forms.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** A key pair that signs digest records. */
export interface SigningKey {
  /** The raw 32-byte public key. */
  publicKey: Buffer;
  /** SHA-256 of the public key, 64 hex. */
  fingerprint: string;
  /** The 64-byte Ed25519 signature of `message`. */
  sign(message: Uint8Array): Buffer;
}

/** The repository's signing key, derived from its master key (see above). */
export function deriveSigningKey(masterKey: MasterKey): SigningKey {
  const seed = Buffer.from(hkdfSync('sha256', joinMasterKey(masterKey), Buffer.alloc(0), SIGNING_KEY_INFO, 32));
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const publicKey = Buffer.from(spki.subarray(spki.length - PUBLIC_KEY_SIZE));
  return { publicKey, fingerprint: fingerprintOf(publicKey), sign: (message) => sign(null, message, privateKey) };
}

/** SHA-256 of a raw public key, 64 hex: what the storage operator is given out of band. */
export function fingerprintOf(publicKey: Uint8Array): string {
  return createHash('sha256').update(publicKey).digest('hex');
}

/** Checks an Ed25519 signature by a raw 32-byte public key. */
export function verifySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== PUBLIC_KEY_SIZE || signature.length !== SIGNATURE_SIZE) return false;
  return verify(null, message, publicKeyObject(publicKey), signature);
}

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: 'der', type: 'spki' });
}
