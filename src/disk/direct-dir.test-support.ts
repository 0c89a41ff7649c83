import { takesDirectWrites } from './direct-writes.js';

/** Why the tests that need O_DIRECT cannot run in `path` (a checkout on overlayfs, NFS…), or false when they can. */
export async function noDirectWritesIn(path: string): Promise<string | false> {
  return (await takesDirectWrites(path)) ? false : `${path} is not on ext4, XFS or btrfs`;
}
