import { DELETIONS_KEY, DIGEST_KEY_KEY, DIGESTS_PREFIX, LEASES_PREFIX, SPACE_RESERVE_KEY } from '../layout.js';

/**
 * Whether the digest records cover an object (docs/repository-format.md §18): every object a
 * key holder writes, except those rewritten in place by design (leases, refreshed every two
 * minutes; the `deletions` token; the space `reserve`, deleted and written again by prune) and the digest machinery itself (records prove themselves by
 * their signature, the public key by its fingerprint).
 */
export function isCoveredKey(key: string): boolean {
  return !(key.startsWith(LEASES_PREFIX) || key === DELETIONS_KEY || key === SPACE_RESERVE_KEY || key.startsWith(DIGESTS_PREFIX) || key === DIGEST_KEY_KEY);
}
