import { CofferError, type ErrorSubject } from '../errors/index.js';
import type { FsType } from './filesystem.js';

/** An `E_FS_CORRUPT` error: `what` says which structure and why, e.g. `inode 12: extent beyond the filesystem`. */
export function fsCorrupt(type: FsType | string, what: string, subject: ErrorSubject = {}): CofferError {
  return new CofferError('E_FS_CORRUPT', `${type}: ${what}`, { subject });
}

/** A driver's `openDamaged` answer for a reason (undefined: not its signature). */
export function damagedBecause(reason: string | undefined): { damage: string } | undefined {
  return reason === undefined ? undefined : { damage: reason };
}

/** An `E_FS_UNSUPPORTED` error naming the feature, e.g. `xfs: realtime files are not supported`. */
export function fsUnsupported(type: FsType | string, what: string, subject: ErrorSubject = {}): CofferError {
  return new CofferError('E_FS_UNSUPPORTED', `${type}: ${what}`, { subject });
}
