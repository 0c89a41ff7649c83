/**
 * The stored-digest public key (`stored-digest-key`, docs/repository-format.md §18): the
 * Ed25519 public key that signs the digest records, in plaintext so that the storage side can
 * check them without the master key. UTF-8 JSON and a newline:
 *
 * ```json
 * {"version":1,"algorithm":"ed25519","publicKey":"<64 hex: the raw 32-byte key>"}
 * ```
 *
 * Anyone who can write the storage can replace this object: a verifier trusts it only when its
 * fingerprint (SHA-256 of the 32 raw bytes, 64 hex) equals the one the key holder gave out of
 * band (`coffer verify --stored --trust FINGERPRINT`).
 */
import { CofferError } from '../../errors/index.js';

export function encodeDigestKey(publicKey: Uint8Array): Buffer {
  return Buffer.from(`${JSON.stringify({ version: 1, algorithm: 'ed25519', publicKey: Buffer.from(publicKey).toString('hex') })}\n`, 'utf8');
}

/** The raw 32-byte public key; `E_CORRUPT_OBJECT` if the object is malformed. */
export function decodeDigestKey(bytes: Buffer, name: string): Buffer {
  const corrupt = (why: string) => new CofferError('E_CORRUPT_OBJECT', `${name} is corrupt: ${why}`, { subject: { object: name } });
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw corrupt('not JSON');
  }
  const o = parsed as { version?: unknown; algorithm?: unknown; publicKey?: unknown };
  if (typeof parsed !== 'object' || parsed === null || o.version !== 1) throw corrupt('not version 1');
  if (o.algorithm !== 'ed25519') throw corrupt(`algorithm ${String(o.algorithm)} is unknown`);
  if (typeof o.publicKey !== 'string' || !/^[0-9a-f]{64}$/.test(o.publicKey)) throw corrupt('publicKey is not 64 hex');
  return Buffer.from(o.publicKey, 'hex');
}
