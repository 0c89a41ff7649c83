import { createHash } from 'node:crypto';
import { compareNames, isSafeEntryName } from '../../repo/index.js';
import type { DirectoryScan, Excludes } from '../../source/index.js';

/**
 * Directories listed at most for their subtree digests (each held as a path and a digest,
 * ≈ 200 bytes: ≈ 50 MiB). Past it nothing more is listed: the subtrees listed whole keep
 * their digests, those above them have none and are walked directory by directory.
 */
export const MAX_SUBTREE_DIRECTORIES = 250_000;

/**
 * A directory's subtree digest, as recorded in its entry's `subtree` (docs/repository-format.md
 * §16): the first 128 bits of SHA-256 over `coffer subtree 1`, NUL, the directory's listing
 * digest (32 hex: `scan`, seeded with the backup's options), then for each subdirectory its
 * tree holds, in the tree's order, its name, NUL, its own subtree digest (32 hex). Equal
 * digests: every directory below was listed with the same names and lstat records under the
 * same options, so a backup would record every tree below as before.
 */
export function subtreeDigest(listingDigest: string, subdirectories: readonly (readonly [name: string, digest: string])[]): string {
  const hash = createHash('sha256').update('coffer subtree 1\u0000').update(listingDigest);
  for (const [name, digest] of subdirectories) hash.update(name).update('\u0000').update(digest);
  return hash.digest('hex').slice(0, 32);
}

/** A directory to start from, and the device its walk compares mount points with (undefined: each top-level directory's own). */
export interface SubtreeRoot {
  path: string;
  rootDev: bigint | undefined;
}

/** What {@link digestSubtrees} needs of the backup that asks. */
export interface SubtreeListing {
  /** A directory's listing; undefined when it cannot be listed (its subtree and those above get no digest; the walk reports it). */
  list(path: string): Promise<DirectoryScan | undefined>;
  /** The seed of listing digests below a root on `rootDev` (the backup's options). */
  seedFor(rootDev: bigint | undefined): Uint8Array;
  excludes?: Excludes | undefined;
  signal?: AbortSignal | undefined;
  maxDirectories?: number;
}

/**
 * Lists every directory below `roots` that a file backup would descend into (the same
 * excludes, cache tags and --one-file-system mount points), and computes bottom-up the
 * subtree digest of each (by path) whose whole subtree can be recorded: every directory in
 * it listed, none with an entry that could not be stat'ed or with hard links (a backup
 * records no `scan` for those), no name refused, no mount point left out. Holds digests
 * only, never listings; lists at most `maxDirectories` (see {@link MAX_SUBTREE_DIRECTORIES}).
 *
 * An incremental then keeps, unread, the parent's tree of every directory whose digest is
 * the one recorded with it: for an unchanged tree, one comparison at the top instead of
 * reading every tree with subdirectories.
 */
export async function digestSubtrees(roots: readonly SubtreeRoot[], listing: SubtreeListing): Promise<Map<string, string>> {
  const digests = new Map<string, string>();
  const maxDirectories = listing.maxDirectories ?? MAX_SUBTREE_DIRECTORIES;
  let visited = 0;
  const excludes = listing.excludes;
  const oneFileSystem = excludes?.options.oneFileSystem === true;
  const visit = async (path: string, rootDev: bigint | undefined): Promise<string | undefined> => {
    if (++visited > maxDirectories || listing.signal?.aborted === true) return undefined;
    const scan = await listing.list(path);
    if (scan === undefined) return undefined;
    const own = scan.digest(listing.seedFor(rootDev));
    let complete = !scan.hasLinksOrErrors;
    const prefix = path === '/' ? '' : path;
    const children: { name: string; dev: bigint }[] = [];
    // A tagged cache keeps its tag alone: nothing below it is descended into.
    const tagged = excludes !== undefined && (await excludes.isTaggedCache(path));
    const refuse = () => (complete = false);
    for (const { name, metadata } of tagged ? [] : scan.entries(isSafeEntryName, refuse, true)) {
      if (excludes?.matches(`${prefix}/${name}`, name) === true) continue;
      if (metadata === undefined) {
        complete = false;
        continue;
      }
      const dev = rootDev ?? metadata.dev;
      if (oneFileSystem && metadata.dev !== dev) {
        complete = false; // a mount point: kept, empty, without a scan
        continue;
      }
      children.push({ name, dev });
    }
    children.sort((a, b) => compareNames(a.name, b.name));
    const below = await Promise.all(children.map(({ name, dev }) => visit(`${prefix}/${name}`, dev)));
    if (!complete) return undefined;
    const pairs: [string, string][] = [];
    for (const [i, { name }] of children.entries()) {
      const digest = below[i];
      if (digest === undefined) return undefined;
      pairs.push([name, digest]);
    }
    const digest = subtreeDigest(own, pairs);
    digests.set(path, digest);
    return digest;
  };
  await Promise.all(roots.map((root) => visit(root.path, root.rootDev)));
  return digests;
}
