/**
 * Where a repository's free space can be known, and how: a repository on a local path lives on
 * a filesystem that statfs(2) describes; one on S3 or behind a repository server has no free
 * space the server can read (a bucket has no size; a quota is the provider's), so it is
 * unknown. Used by the periodic space check and by the API's `GET /repositories/{repo}/space`.
 */
import { statfs } from 'node:fs/promises';

/** The folder of a repository on a local path (`/…` or `local:/…`), or undefined for S3 and repository servers. */
export function localRepositoryPath(url: string): string | undefined {
  const path = url.startsWith('local:') ? url.slice('local:'.length) : url;
  return path.startsWith('/') ? path : undefined;
}

/**
 * Free and total bytes of the filesystem holding `path`: `free` counts the blocks available to
 * the server's user (`bavail`, not `bfree`: root's reserve is not space a repository can use).
 * @throws what statfs throws (ENOENT for a missing folder).
 */
export async function filesystemSpace(path: string): Promise<{ free: number; total: number }> {
  const s = await statfs(path);
  return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
}
