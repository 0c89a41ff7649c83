/**
 * Where restores through the API may write: only inside the folders `restore.allowed-targets`
 * names (default: `restores/` in the data directory). A request's `to` is checked after
 * resolving every symlink of the part that exists already, so neither `..` nor a link planted
 * inside an allowed folder reaches outside it; the resolved path is what the task writes to.
 *
 * A target that does not exist yet is resolved through its deepest existing ancestor. A link
 * created between this check and the write is not covered: the allowed folders must not be
 * writable by anyone the server does not trust (the default folder is made 0700).
 */
import { realpath } from 'node:fs/promises';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { ApiError } from './api-error.js';

/**
 * The path to restore to, symlinks resolved, when it lies inside one of `allowed` (absolute
 * folders; those that do not exist are ignored).
 * @throws ApiError E_VALIDATION for a relative path, a NUL byte, a `..` segment or `/`;
 *   E_RESTORE_TARGET_REFUSED (403) for a path outside every allowed folder.
 */
export async function confineRestoreTarget(path: string, allowed: readonly string[]): Promise<string> {
  if (!isAbsolute(path) || path.includes('\0')) throw new ApiError('E_VALIDATION', `to ${path}: give an absolute path on the server`);
  if (path.split('/').includes('..')) throw new ApiError('E_VALIDATION', `to ${path}: ".." is not allowed in a restore target`);
  const clean = normalize(path);
  if (clean === '/') throw new ApiError('E_VALIDATION', 'to /: name a file or a folder');
  const resolved = await resolveExisting(clean);
  for (const folder of allowed) {
    const root = await realpath(folder).catch(() => undefined);
    if (root === undefined) continue;
    if (resolved === root || resolved.startsWith(root.endsWith(sep) ? root : root + sep)) return resolved;
  }
  throw new ApiError('E_RESTORE_TARGET_REFUSED', `to ${path}${resolved === clean ? '' : ` (${resolved})`}: restores may only write inside ${allowed.join(', ') || 'no folder'} (restore.allowed-targets)`);
}

/** `path` with its longest existing prefix replaced by its real path (symlinks resolved). */
async function resolveExisting(path: string): Promise<string> {
  const rest: string[] = [];
  let head = path;
  for (;;) {
    const real = await realpath(head).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
      throw new ApiError('E_VALIDATION', `to ${path}: ${head} cannot be read (${error.code ?? error.message})`);
    });
    if (real !== undefined) return rest.length === 0 ? real : join(real, ...rest.reverse());
    const cut = head.lastIndexOf('/');
    rest.push(head.slice(cut + 1));
    head = cut <= 0 ? '/' : head.slice(0, cut);
  }
}
