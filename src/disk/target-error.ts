import { CofferError } from '../errors/index.js';

/**
 * What an errno from a call on a write target (an image being restored, a file or folder of
 * a file restore, standard output) means, in a user's words. A code not listed keeps the
 * system's message (`EIO: i/o error, write`).
 */
const REASONS: Record<string, string> = {
  EEXIST: 'it exists already',
  ENOTDIR: 'a part of the path is not a directory',
  ENOENT: 'a part of the path is missing or a dangling symbolic link',
  ELOOP: 'it is a symbolic link, which a restore never writes through',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the filesystem is read-only',
  ENAMETOOLONG: 'the name is too long for the target filesystem',
  EPIPE: 'its reader closed it before all the data was written (EPIPE)',
};

/** How {@link targetError} words a few cases for the command at hand. */
export interface TargetErrorOptions {
  /** Replaces the words for EEXIST, where the command has a way past it ("add --overwrite"). */
  exists?: string;
}

/**
 * The one mapping of a failed call on a write target to a CofferError: `E_NO_SPACE` (exit 5)
 * for a full disk or quota, `E_TARGET_UNWRITABLE` (exit 4) with the reason in words for the
 * rest. A CofferError passes unchanged. Used by every target (raw files and devices, image
 * writers' output files, standard output, file restores) so that one errno reads the same
 * whatever wrote it.
 */
export function targetError(target: string, error: unknown, options: TargetErrorOptions = {}): CofferError {
  if (error instanceof CofferError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? '';
  if (code === 'ENOSPC' || code === 'EDQUOT') return new CofferError('E_NO_SPACE', `no space left writing ${target}`, { subject: { path: target }, cause: error });
  const reason = (code === 'EEXIST' ? options.exists : undefined) ?? REASONS[code] ?? (error instanceof Error ? error.message : String(error));
  return new CofferError('E_TARGET_UNWRITABLE', `cannot write ${target}: ${reason}`, { subject: { path: target }, cause: error });
}

/** Runs a call on the target; its failure is thrown as {@link targetError} says. */
export async function targetCall<T>(target: string, call: () => Promise<T>, options: TargetErrorOptions = {}): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw targetError(target, error, options);
  }
}

/** Whether `error` is a full target (ENOSPC or EDQUOT, raw or as `E_NO_SPACE`). */
export function isNoSpace(error: unknown): boolean {
  if (error instanceof CofferError) return error.code === 'E_NO_SPACE';
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
