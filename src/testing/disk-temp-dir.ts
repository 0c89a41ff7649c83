import { mkdir, mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project's own scratch folder (ignored by git), on whatever disk holds the checkout. */
const PROJECT_SCRATCH = fileURLToPath(new URL('../../../test-output/scratch', import.meta.url));

/** statfs(2) f_type of filesystems kept in memory. */
const IN_MEMORY = new Set([0x01021994 /* tmpfs */, 0x858458f6 /* ramfs */]);

/**
 * A temporary folder on a disk filesystem, for tests of what only a disk does (O_DIRECT,
 * page-cache residency): the system's temporary folder unless it is a tmpfs (Debian 13 mounts
 * /tmp so), else a folder under the checkout's `test-output/scratch`.
 */
export async function makeDiskTempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const base = IN_MEMORY.has((await statfs(tmpdir())).type) ? PROJECT_SCRATCH : tmpdir();
  await mkdir(base, { recursive: true });
  const path = await mkdtemp(join(base, `${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}
