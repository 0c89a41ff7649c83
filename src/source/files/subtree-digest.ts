import { createHash } from 'node:crypto';
import { encodeName, hasRawBytes } from '../../names/index.js';
import type { AccountNames } from './account-names.js';
import type { Excludes } from './excludes.js';

/**
 * The seed of every listing digest ({@link DirectoryScan.digest}) below a walk's root on
 * device `rootDev` (undefined: `/` given, each top-level directory then seeded with its own):
 * what, besides a listing, decides how a file backup records its entries — the scheme's
 * version, the account names, the exclusion rules and the device mount points are compared with.
 */
export function listingSeed(accounts: AccountNames, excludes: Excludes | undefined, rootDev: bigint | undefined): Buffer {
  const options = JSON.stringify(['coffer listing 2', String(rootDev), [...accounts.users], [...accounts.groups], excludes?.fingerprint ?? null]);
  return createHash('sha256').update(options).digest();
}

/**
 * A directory's subtree digest, as a file backup records it in the directory's entry
 * (`subtree`, docs/repository-format.md §16): the first 128 bits of SHA-256 over
 * `coffer subtree 1`, NUL, the directory's listing digest (32 hex, seeded by
 * {@link listingSeed}), then for each subdirectory its tree holds, in the tree's order (by the
 * names' UTF-8 bytes), its name, NUL, its own subtree digest (32 hex). Equal digests: every
 * directory below was listed with the same names and lstat records (access times aside) under
 * the same options, so a backup would record every tree below as before.
 */
export function subtreeDigest(listingDigest: string, subdirectories: readonly (readonly [name: string, digest: string])[]): string {
  const hash = createHash('sha256').update('coffer subtree 1\u0000').update(listingDigest);
  for (const [name, digest] of subdirectories) hash.update(hasRawBytes(name) ? encodeName(name) : name).update('\u0000').update(digest);
  return hash.digest('hex').slice(0, 32);
}

/**
 * Orders names by their bytes (names/byte-names.ts: a raw byte as itself), as a file tree's entries are ordered (repo's compareNames,
 * which this layer cannot import, has a fast path for the walk's many names; a listing orders
 * only each directory's few subdirectories).
 */
export function byUtf8Bytes(a: string, b: string): number {
  return Buffer.compare(encodeName(a), encodeName(b));
}
