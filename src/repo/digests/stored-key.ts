import type { Backend } from '../backend/backend.js';
import { decodeDigestKey } from '../format/digest-key.js';
import { fingerprintOf } from '../keys/signing-key.js';
import { DIGEST_KEY_KEY } from '../layout.js';

/**
 * The fingerprint of the public key stored in `stored-digest-key`, read without any key, or
 * null when there is none yet. Unverified by nature: compare it with the one the key holder
 * printed (coffer init, coffer key list).
 */
export async function storedDigestKeyFingerprint(backend: Backend): Promise<string | null> {
  if (!(await backend.has(DIGEST_KEY_KEY))) return null;
  return fingerprintOf(decodeDigestKey(await backend.get(DIGEST_KEY_KEY), `${backend.location}/${DIGEST_KEY_KEY}`));
}
