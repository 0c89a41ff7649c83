import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { openDiskTarget, TARGET_EXTENSIONS, type TargetFormat } from '../disk/index.js';
import { CofferError } from '../errors/index.js';
import { makeFolders } from '../native/index.js';
import type { DiskRecord, Repository, Snapshot } from '../repo/index.js';
import { restoreDisk, type RestoreProgress } from './restore-disk.js';
import { SnapshotDisk } from './snapshot-disk.js';

/** Options of {@link restoreSnapshot}. */
export interface RestoreOptions {
  /** A disk's name (`disk0`) or number (`0`); all disks when absent. */
  disk?: string;
  /**
   * Where to write: a file, a block device, or `-` (standard output) for one disk; a
   * directory (created if needed) for several, each disk written as `<name>.<extension>` in it.
   */
  to: string;
  /** The image format to write (default raw). */
  format?: TargetFormat;
  overwrite?: boolean;
  stdout?: Writable;
  signal?: AbortSignal;
  onProgress?: (progress: RestoreProgress) => void;
}

/** Restores one or all disks of a snapshot as images of one format. Returns one result per disk. */
export async function restoreSnapshot(repo: Repository, snapshot: Snapshot, options: RestoreOptions): Promise<{ disk: string; path: string; progress: RestoreProgress }[]> {
  const disks = options.disk === undefined ? snapshot.disks : [findDisk(snapshot, options.disk)];
  if (disks.length > 1 && options.to === '-') {
    throw new CofferError('E_USAGE', `snapshot ${snapshot.id.slice(0, 8)} has ${disks.length} disks: choose one with --disk to write to standard output`);
  }
  // Several disks, or an existing directory, get one <disk>.raw file each in that directory.
  const single = options.to === '-' || (disks.length === 1 && (await stat(options.to).catch(() => undefined))?.isDirectory() !== true);
  if (!single) await makeFolders(options.to);
  const results = [];
  for (const record of disks) {
    const format = options.format ?? 'raw';
    const path = single ? options.to : join(options.to, `${record.name}.${TARGET_EXTENSIONS[format]}`);
    const target = await openDiskTarget(path, record.size, { format, overwrite: options.overwrite ?? false, ...(options.stdout ? { stdout: options.stdout } : {}) });
    const disk = new SnapshotDisk(repo, snapshot.id, record);
    const progress = await restoreDisk(disk, target, {
      threads: repo.pool.threads,
      preferredConcurrency: repo.backend.preferredConcurrency,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    results.push({ disk: record.name, path, progress });
  }
  return results;
}

/** A disk of a snapshot by name or number. */
export function findDisk(snapshot: Snapshot, nameOrNumber: string): DiskRecord {
  const byName = snapshot.disks.find((disk) => disk.name === nameOrNumber);
  const byNumber = /^\d+$/.test(nameOrNumber) ? snapshot.disks[Number(nameOrNumber)] : undefined;
  const disk = byName ?? byNumber;
  if (disk === undefined) {
    throw new CofferError('E_DISK_NOT_FOUND', `snapshot ${snapshot.id.slice(0, 8)} has no disk ${nameOrNumber} (it has ${snapshot.disks.map((d) => d.name).join(', ')})`, {
      subject: { snapshot: snapshot.id },
    });
  }
  return disk;
}
