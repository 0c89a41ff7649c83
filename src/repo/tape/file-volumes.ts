import { createReadStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CofferError } from '../../errors/index.js';
import type { VolumeSink, VolumeSource, VolumeTarget } from './volume-sink.js';

export interface FileVolumeOptions {
  /** Several volumes: volume N goes to `PATH.N` (a file) instead of PATH. */
  split: boolean;
  /** Replace existing files (never needed for a device). */
  overwrite?: boolean;
  /**
   * On a tape drive, called before volume N ≥ 2 is written: it resolves once the next tape
   * is loaded (an operator, or a changer: `mtx next`). Without it a second volume on a device
   * is refused.
   */
  changeVolume?: (sequence: number) => Promise<void>;
}

/**
 * Volumes on files, or on a tape drive (a character device such as /dev/nst0, written with
 * one write(2) per record, so that a drive in fixed block mode gets one block per write;
 * closing a non-rewinding device writes the file mark). A full medium gives `E_NO_SPACE`.
 */
export function fileVolumeTarget(path: string, options: FileVolumeOptions): VolumeTarget {
  const written: string[] = []; // volume files (not devices) this export created, under their names or temporary ones
  /** Volumes written beside the files they replace (--overwrite): renamed over them by commit(). */
  const replacing: { temporary: string; name: string }[] = [];
  return {
    async discard(): Promise<void> {
      replacing.splice(0);
      for (const name of written.splice(0)) await unlink(name).catch(() => undefined);
    },
    async commit(): Promise<void> {
      for (const { temporary, name } of replacing.splice(0)) {
        try {
          await rename(temporary, name);
        } catch (error) {
          throw failure(error, name, 'replace');
        }
      }
      written.splice(0);
    },
    async open(sequence: number): Promise<VolumeSink> {
      const device = await isCharacterDevice(path);
      if (device && sequence > 1) {
        if (options.changeVolume === undefined) throw new CofferError('E_USAGE', `the tape set needs volume ${sequence} on ${path}: give --new-volume-command to load the next tape`);
        await options.changeVolume(sequence);
      }
      if (!device && !options.split && sequence > 1) {
        throw new CofferError('E_USAGE', `the tape set needs a volume ${sequence} (a volume's index holds about 3 million objects at most): give --volume-size to write ${path}.1, ${path}.2 …`);
      }
      const name = device || !options.split ? path : `${path}.${sequence}`;
      // An existing file is replaced only once the whole set is written (commit): a failed or
      // interrupted export leaves the last good tape file as it was. A device is written in place.
      // (A block device is written in place too, and never removed by discard.)
      const existing = device ? 'device' : await kindOf(name);
      const replaces = options.overwrite === true && existing === 'file';
      const opened = replaces ? join(dirname(name), `.${basename(name)}.coffer-${process.pid}-${randomBytes(4).toString('hex')}`) : name;
      let handle: FileHandle;
      try {
        handle = await open(opened, device || (options.overwrite === true && !replaces) ? 'w' : 'wx', 0o600);
      } catch (error) {
        throw failure(error, name, 'open');
      }
      if (replaces || existing === 'absent') written.push(opened); // files this export created: discard removes them
      if (replaces) replacing.push({ temporary: opened, name });
      return {
        name,
        async writeRecord(record: Uint8Array): Promise<void> {
          try {
            const { bytesWritten } = await handle.write(record, 0, record.length, null);
            if (bytesWritten !== record.length) throw Object.assign(new Error(`short write: ${bytesWritten} of ${record.length} bytes`), { code: device ? 'ENOSPC' : 'EIO' });
          } catch (error) {
            throw failure(error, name, 'write');
          }
        },
        async close(): Promise<void> {
          try {
            if (!device) await handle.sync();
          } catch (error) {
            throw failure(error, name, 'sync');
          } finally {
            await handle.close();
          }
        },
      };
    },
  };
}

/** A volume read from a file or a tape drive. */
export function fileVolumeSource(path: string): VolumeSource {
  return { name: path, open: () => createReadStream(path, { highWaterMark: 1024 * 1024 }) };
}

/** What is at `path`: nothing, a regular file, or something else (a block device…). */
async function kindOf(path: string): Promise<'absent' | 'file' | 'other'> {
  try {
    return (await stat(path)).isFile() ? 'file' : 'other';
  } catch {
    return 'absent';
  }
}

async function isCharacterDevice(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isCharacterDevice();
  } catch {
    return false;
  }
}

function failure(error: unknown, name: string, action: string): CofferError {
  const code = (error as NodeJS.ErrnoException).code;
  const reason = error instanceof Error ? error.message : String(error);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new CofferError('E_NO_SPACE', `no space left to ${action} ${name}: give a --volume-size below the medium's capacity to span volumes`, { subject: { path: name }, cause: error });
  }
  if (code === 'EEXIST') return new CofferError('E_TARGET_UNWRITABLE', `${name} exists: remove it or add --overwrite`, { subject: { path: name }, cause: error });
  return new CofferError('E_TARGET_UNWRITABLE', `cannot ${action} ${name}: ${reason}`, { subject: { path: name }, cause: error });
}
