import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { CofferError } from '../errors/index.js';

/** A local repository's folder as the filesystem resolves it; undefined for a remote store (s3://, https://) or one that cannot be resolved. */
async function localFolder(location: string): Promise<string | undefined> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) return undefined;
  return realpath(location).catch(() => undefined);
}

/** Where a write to `target` lands: the part of it that exists resolved through its links, the rest appended. */
async function resolveTarget(target: string): Promise<string> {
  let existing = path.resolve(target);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(await realpath(existing), ...rest);
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) return path.resolve(target);
      rest.unshift(path.basename(existing));
      existing = parent;
    }
  }
}

/**
 * Refuses (`E_USAGE`, exit 2) a command's output path inside the local repository it reads:
 * a tape, a restored image or extracted files written over `config`, a pack or a key file
 * would damage the very repository they come from (with `--overwrite`, at once). Links are
 * followed, so a symlink into the repository is refused too. Standard output (`-`) and
 * remote repositories pass.
 */
export async function refuseInsideRepository(location: string, target: string, flag: string): Promise<void> {
  if (target === '-') return;
  const folder = await localFolder(location);
  if (folder === undefined) return;
  const resolved = await resolveTarget(target);
  if (resolved === folder || resolved.startsWith(`${folder}${path.sep}`)) {
    throw new CofferError('E_USAGE', `${flag} ${target} is inside the repository ${location}: writing there would damage it; choose a place outside it`, { subject: { path: target } });
  }
}
