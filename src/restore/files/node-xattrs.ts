import type { Filesystem, FsNode, FsXattr } from '../../fs/index.js';
import { printableName } from '../../names/index.js';
import { setXattrsOnHost } from '../set-xattrs.js';
import { isEntryProblem, type TreeReport } from './safe-walk.js';

/**
 * A node's extended attributes for `files get` (Filesystem.xattrs; [] from readers without
 * them). Damaged attributes do not stop the entry: its content is intact, so it is restored
 * without them and the damage is a problem of the entry (`E_FS_CORRUPT`, exit 14), for an
 * admin must hear that its ACLs or labels were not restored.
 */
export async function readXattrs(fs: Filesystem, node: FsNode, guestPath: string, report: TreeReport): Promise<FsXattr[]> {
  if (fs.xattrs === undefined) return [];
  try {
    return await fs.xattrs(node);
  } catch (error) {
    if (!isEntryProblem(error)) throw error;
    report.problems.push({ path: guestPath, code: error.code, message: `${printableName(guestPath)}: its extended attributes do not read, restored without them: ${error.message}` });
    return [];
  }
}

/**
 * Sets each attribute on `target` (../set-xattrs.ts: a final symlink itself, not followed). One the
 * host refuses (`trusted.*` or `security.*` without the right, a label the host's SELinux
 * policy rejects, a target filesystem without xattrs, `system.richacl` on Linux) is noted in
 * `report.skipped` with the system's reason, as NTFS streams left out are: the file itself
 * is complete and restored, so the run does not fail for it, and the line tells the admin
 * which ACL or label to set again.
 */
export function setXattrs(target: string | Buffer, xattrs: readonly FsXattr[], guestPath: string, report: TreeReport): void {
  setXattrsOnHost(target, xattrs, {
    onRefused: (name, error) => {
      const code = (error as NodeJS.ErrnoException).code;
      report.skipped.push({ path: guestPath, reason: `extended attribute ${printableName(name)} not restored: ${error.message}${code !== undefined ? ` (${code})` : ''}` });
    },
  });
}
