import { randomBytes } from 'node:crypto';
import { open, realpath, rename, unlink, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CofferError } from '../errors/index.js';
import { targetError } from './target-error.js';

/**
 * A regular file a restore writes an image into: a new file at `path`, or, replacing an
 * existing one (`--overwrite`), a new file beside it that takes its place only once complete.
 *
 * Writing over the old image in place would destroy it at the first write: a restore that then
 * fails (a full disk, a damaged chunk, Ctrl-C) would leave neither the old image nor a whole
 * new one, and a partial image that looks like a disk. So the new image is written to
 * `.<name>.coffer-<hex>` in the old one's folder (the folder of the file a symbolic link
 * points at: the link stays a link), with the old file's owner, group and permission bits,
 * and renamed over it by {@link commit}, atomically; {@link discard} removes it and leaves the
 * old image as it was. The price is room for both images at once: without it the restore
 * fails with `E_NO_SPACE` saying so, and the old image is untouched. A `kill -9` in between
 * leaves the `.coffer-` file behind (delete it). The old file's extended attributes (SELinux
 * labels among them) are not copied.
 */
export class TargetFile {
  private constructor(
    /** Opened for writing. */
    readonly handle: FileHandle,
    /** Where the data goes (the temporary file when replacing). */
    readonly writePath: string,
    /** The file the image becomes, as the user named it. */
    readonly path: string,
    /** The file replaced (the link's target resolved), when replacing. */
    private readonly replaces: string | undefined,
    /** A block device: written in place, never removed. */
    private readonly isDevice = false,
  ) {}

  /** Whether the image replaces an existing file on {@link commit}. */
  get replacing(): boolean {
    return this.replaces !== undefined;
  }

  /**
   * Creates the file for `path` (mode 0600). `existing`: what is at `path` now, following a
   * symbolic link (a regular file, replaced only with `overwrite`). Throws `E_TARGET_UNWRITABLE`
   * in the user's words.
   */
  static async create(path: string, existing: Stats | undefined, options: { overwrite: boolean }): Promise<TargetFile> {
    if (existing !== undefined && !options.overwrite) throw targetError(path, Object.assign(new Error('exists'), { code: 'EEXIST' }), { exists: 'it exists (add --overwrite to replace it)' });
    if (existing === undefined) {
      try {
        return new TargetFile(await open(path, 'wx', 0o600), path, path, undefined);
      } catch (error) {
        throw targetError(path, error, { exists: 'it exists (add --overwrite to replace it)' });
      }
    }
    if (!existing.isFile()) throw new CofferError('E_TARGET_UNWRITABLE', `cannot write ${path}: it is neither a regular file nor a block device`, { subject: { path } });
    let replaces: string;
    let handle: FileHandle | undefined;
    let writePath = '';
    try {
      replaces = await realpath(path);
      writePath = join(dirname(replaces), `.${basename(replaces).slice(0, 200)}.coffer-${randomBytes(6).toString('hex')}`);
      handle = await open(writePath, 'wx', 0o600);
      // The old image's owner and permissions (a VM's disk is often its hypervisor user's).
      await handle.chown(existing.uid, existing.gid).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EPERM') throw error; // not root: the file stays the restoring user's
      });
      await handle.chmod(existing.mode & 0o7777);
    } catch (error) {
      await handle?.close().catch(() => undefined);
      if (writePath !== '' && handle !== undefined) await unlink(writePath).catch(() => undefined);
      throw targetError(path, error);
    }
    return new TargetFile(handle, writePath, path, replaces);
  }

  /**
   * An existing block device written in place (an image format on a logical volume): there is
   * nothing beside it to write to, and nothing to remove on failure. Only with `overwrite`.
   */
  static async device(path: string, options: { overwrite: boolean }): Promise<TargetFile> {
    if (!options.overwrite) throw targetError(path, Object.assign(new Error('exists'), { code: 'EEXIST' }), { exists: 'it exists (add --overwrite to replace it)' });
    try {
      return new TargetFile(await open(path, 'r+'), path, path, undefined, true);
    } catch (error) {
      throw targetError(path, error);
    }
  }

  /**
   * The error of a failed call on the file. A full disk while replacing says that the old
   * image takes room until the new one is complete.
   */
  translate(error: unknown): CofferError {
    const translated = targetError(this.path, error, { exists: 'it exists (add --overwrite to replace it)' });
    if (translated.code !== 'E_NO_SPACE' || this.replaces === undefined || error instanceof CofferError) return translated;
    return new CofferError(
      'E_NO_SPACE',
      `${translated.message}: --overwrite writes the new image beside the old one, which it replaces only when the restore is complete, so both must fit; the old image is untouched (delete it first, or restore elsewhere)`,
      { subject: { path: this.path }, cause: error },
    );
  }

  /** After the data is durable and the handle closed: the new image takes the old one's place. */
  async commit(): Promise<void> {
    if (this.replaces === undefined) return;
    try {
      await rename(this.writePath, this.replaces);
      const folder = await open(dirname(this.replaces), 'r');
      try {
        await folder.sync(); // the rename itself durable
      } finally {
        await folder.close();
      }
    } catch (error) {
      await unlink(this.writePath).catch(() => undefined);
      throw this.translate(error);
    }
  }

  /** After the handle is closed: removes what was written (a new file, or the replacement; never a device); the old image stays. */
  async discard(): Promise<void> {
    if (!this.isDevice) await unlink(this.writePath).catch(() => undefined);
  }
}
