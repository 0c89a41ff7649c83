import type { FsXattr } from '../fs/index.js';
import { encodeName } from '../names/index.js';
import { syscalls } from '../native/index.js';

/**
 * Sets each extended attribute on a host path (a final symlink itself, not followed:
 * lsetxattr), for both file restores: `restore` of a file snapshot and `files get --to`.
 * Names are decoded as entry names are (`encodeName` gives their bytes back); an attribute
 * the host refuses (`trusted.*` without the right, a target filesystem without xattrs, a
 * `user.*` one where the caller may not write) goes to `onRefused` with the system's error
 * and the next one is set: what a refusal means is the caller's (a problem of the restore,
 * or a skipped line).
 *
 * Call it after chown (which clears `security.capability`) and before chmod: a `user.*`
 * attribute needs write permission on the entry, which the final mode of a read-only file or
 * folder does not give a user other than root.
 */
export function setXattrsOnHost(target: string | Buffer, xattrs: Iterable<FsXattr>, options: { onRefused: (name: string, error: Error) => void }): void {
  for (const { name, value } of xattrs) {
    try {
      syscalls.setXattr(target, encodeName(name), Buffer.from(value.buffer, value.byteOffset, value.length));
    } catch (error) {
      options.onRefused(name, error as Error);
    }
  }
}
