/**
 * The filesystems of any snapshot, each under the volume id browsing names it by: the one
 * place that knows a snapshot holds either disks (volumes found on them, a filesystem on each:
 * {@link SnapshotFiles}) or, for a file snapshot (`coffer backup --files`, a guest's
 * `coffer agent`), one tree of files ({@link TreeFilesystem}). `coffer files` and the API's
 * browse routes open a snapshot through it and never ask which kind it is.
 *
 * Volume ids (what the API's `volume=` takes, and `VOLUME:` in `coffer files` targets):
 * - a volume on a disk: `DISK:NAME` (`disk0:p1`, `disk1:disk`), or `NAME` alone when that
 *   name is on one disk only (or on the disk the `disk` option chose);
 * - an LVM logical volume: `VG/LV` (`vg0/root`), on whichever disks it spans;
 * - a file snapshot's tree: `files` ({@link FILE_TREE_VOLUME}), its one volume and the
 *   {@link SnapshotFilesystems.defaultVolume} a path without a volume (`/etc/hosts`) is in.
 */
import { CofferError } from '../../errors/index.js';
import type { Filesystem } from '../../fs/index.js';
import type { Repository, Snapshot } from '../../repo/index.js';
import { TreeFilesystem } from '../file-snapshot/tree-filesystem.js';
import { SnapshotFiles, type SnapshotVolume } from './snapshot-files.js';

/** The volume id of a file snapshot's tree (frozen: the API and scripts name it). */
export const FILE_TREE_VOLUME = 'files';

/** A volume of a snapshot, described alike whatever holds it. */
export interface BrowsableVolume {
  /** What {@link SnapshotFilesystems.filesystem} takes: `disk0:p1`, `vg0/root`, `files`. */
  id: string;
  /** The disk it lies on (its first, for a logical volume); '' for a file snapshot's tree. */
  disk: string;
  /** `p1`, `disk`, `vg0/root`; `files`. */
  name: string;
  /** `partition`, `whole-disk`, `logical-volume`; `files` for a file snapshot's tree. */
  kind: string;
  /** Bytes: the volume's; a file snapshot's logical bytes (all its files). */
  size: number;
  /** Byte offset on its disk (partitions and whole disks), else null. */
  offset: number | null;
  /** The partition type (`Linux filesystem`, `0x83`), or `file snapshot`. */
  type: string;
  /** The filesystem's type (`ext4`, `ntfs`, `coffer-files`), or null when none Coffer reads is there. */
  filesystem: string | null;
  label: string;
  uuid: string | null;
  /** Why it cannot be browsed (encrypted, damaged), warnings, and for a file snapshot what was backed up. */
  notes: string[];
  /** The volume as found on a disk, for callers that show more of it (`coffer files`' table); absent for a tree. */
  onDisk?: SnapshotVolume;
}

/** A snapshot's filesystems, open; `close` releases what reading them holds. */
export interface SnapshotFilesystems {
  /** The volume a path given without one is in: a file snapshot's tree. Undefined for disks: the volume must be named. */
  readonly defaultVolume: string | undefined;
  /** Every volume (of the chosen disk, with `disk`), each probed for its filesystem. */
  volumes(): Promise<BrowsableVolume[]>;
  /**
   * The filesystem of volume `id`. Throws E_VOLUME_NOT_FOUND (naming the volumes there are),
   * E_USAGE (a name on several disks), E_VOLUME_ENCRYPTED, or E_FS_UNSUPPORTED.
   */
  filesystem(id: string): Promise<Filesystem>;
  /** Chunks fetched from the repository so far, and their stored bytes. */
  fetched(): { chunks: number; bytes: number };
  close(): Promise<void>;
}

/**
 * Opens a snapshot for browsing. `disk` (a disk snapshot only) limits the volumes listed and
 * found by name alone to that disk's (and the logical volumes).
 * @throws E_DISK_NOT_FOUND for a `disk` the snapshot does not have (a file snapshot has none).
 * @example
 *   const browse = await openSnapshotFilesystems(repo, snapshot);
 *   try { const fs = await browse.filesystem(browse.defaultVolume ?? 'disk0:p1'); … } finally { await browse.close(); }
 */
export async function openSnapshotFilesystems(repo: Repository, snapshot: Snapshot, options: { disk?: string } = {}): Promise<SnapshotFilesystems> {
  if (snapshot.files === undefined) return new DiskFilesystems(snapshot, await SnapshotFiles.open(repo, snapshot, options));
  if (options.disk !== undefined) throw new CofferError('E_DISK_NOT_FOUND', `snapshot ${snapshot.id.slice(0, 8)} is a file snapshot: it has no disk ${options.disk} (its files are the one volume ${FILE_TREE_VOLUME})`, { subject: { snapshot: snapshot.id } });
  return new TreeFilesystems(snapshot as Snapshot & { files: NonNullable<Snapshot['files']> }, new TreeFilesystem(repo, snapshot as Snapshot & { files: NonNullable<Snapshot['files']> }));
}

/** A disk snapshot: the volumes {@link SnapshotFiles} finds, named `DISK:NAME` or `VG/LV`. */
class DiskFilesystems implements SnapshotFilesystems {
  readonly defaultVolume = undefined;

  constructor(
    private readonly snapshot: Snapshot,
    private readonly files: SnapshotFiles,
  ) {}

  async volumes(): Promise<BrowsableVolume[]> {
    return (await this.files.list()).map((v) => ({
      id: v.volume.kind === 'logical-volume' ? v.volume.name : `${v.diskName}:${v.volume.name}`,
      disk: v.diskName,
      name: v.volume.name,
      kind: v.volume.kind,
      size: v.volume.size,
      offset: v.volume.offset ?? null,
      type: v.volume.typeDescription ?? v.volume.partitionType ?? '',
      filesystem: v.filesystem?.type ?? null,
      label: v.filesystem?.label ?? v.volume.label ?? '',
      uuid: v.filesystem !== undefined && v.filesystem.uuid !== '' ? v.filesystem.uuid : (v.volume.uuid ?? null),
      notes: [...(v.volume.warnings ?? []), ...(v.volume.encrypted !== undefined ? [`encrypted (${v.volume.encrypted}): its files cannot be read`] : []), ...(v.problem !== undefined ? [v.problem.message] : [])],
      onDisk: v,
    }));
  }

  async filesystem(id: string): Promise<Filesystem> {
    const colon = id.indexOf(':');
    const disk = colon > 0 ? id.slice(0, colon) : undefined;
    const name = colon > 0 ? id.slice(colon + 1) : id;
    if (disk !== undefined && !this.snapshot.disks.some((d) => d.name === disk)) {
      throw new CofferError('E_VOLUME_NOT_FOUND', `no disk ${disk} in snapshot ${this.snapshot.id.slice(0, 8)} (disks: ${this.snapshot.disks.map((d) => d.name).join(', ')})`, { subject: { snapshot: this.snapshot.id } });
    }
    return (await this.files.filesystem(name, disk === undefined ? {} : { disk })).filesystem;
  }

  fetched(): { chunks: number; bytes: number } {
    return this.files.fetched();
  }

  close(): Promise<void> {
    return this.files.close();
  }
}

/** A file snapshot: its tree, the one volume `files`. */
class TreeFilesystems implements SnapshotFilesystems {
  readonly defaultVolume = FILE_TREE_VOLUME;

  constructor(
    private readonly snapshot: Snapshot & { files: NonNullable<Snapshot['files']> },
    private readonly tree: TreeFilesystem,
  ) {}

  async volumes(): Promise<BrowsableVolume[]> {
    const { paths, stdinName } = this.snapshot.files;
    const what = stdinName !== undefined ? `standard input, as /${stdinName}` : paths.join(', ');
    return [{ id: FILE_TREE_VOLUME, disk: '', name: FILE_TREE_VOLUME, kind: 'files', size: this.tree.size, offset: null, type: 'file snapshot', filesystem: this.tree.type, label: '', uuid: null, notes: [`backed up from ${this.snapshot.hostname}: ${what}`] }];
  }

  async filesystem(id: string): Promise<Filesystem> {
    if (id !== FILE_TREE_VOLUME) throw new CofferError('E_VOLUME_NOT_FOUND', `no volume ${id} in snapshot ${this.snapshot.id.slice(0, 8)}: a file snapshot has one, ${FILE_TREE_VOLUME}`, { subject: { snapshot: this.snapshot.id } });
    return this.tree;
  }

  fetched(): { chunks: number; bytes: number } {
    return this.tree.fetched();
  }

  async close(): Promise<void> {}
}
