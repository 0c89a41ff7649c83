import { CofferError } from '../../errors/index.js';
import { openFilesystem, type Filesystem } from '../../fs/index.js';
import type { Repository, Snapshot } from '../../repo/index.js';
import { listVolumes, type Volume } from '../../volume/index.js';
import { findDisk } from '../restore-snapshot.js';
import { SnapshotDisk } from '../snapshot-disk.js';

/** A volume of a snapshot and what is on it, as far as it was looked at. */
export interface SnapshotVolume {
  volume: Volume;
  /** The disk's name in the snapshot. */
  diskName: string;
  /** Set once probed: the filesystem, or undefined when none was recognised. */
  filesystem?: Filesystem;
  /** Why the volume cannot be browsed (encrypted, damaged or unsupported filesystem). */
  problem?: CofferError;
}

/**
 * The files of a snapshot, browsed straight from the repository: each disk is a
 * {@link SnapshotDisk} (chunks fetched on demand through a small cache), volumes are found on
 * the disks, and a volume's filesystem is opened only when it is used or listed. Nothing is
 * restored to disk first.
 */
export class SnapshotFiles {
  private constructor(
    readonly snapshot: Snapshot,
    readonly disks: SnapshotDisk[],
    readonly volumes: SnapshotVolume[],
    private readonly onlyDisk: number | undefined,
  ) {}

  /** Opens the snapshot's disks and lists their volumes (reads only partition tables and LVM labels). */
  static async open(repo: Repository, snapshot: Snapshot, options: { disk?: string } = {}): Promise<SnapshotFiles> {
    const disks = snapshot.disks.map((disk) => new SnapshotDisk(repo, snapshot.id, disk));
    const onlyDisk = options.disk === undefined ? undefined : snapshot.disks.indexOf(findDisk(snapshot, options.disk));
    const volumes = (await listVolumes(disks)).map((volume) => ({ volume, diskName: snapshot.disks[volume.disk]?.name ?? String(volume.disk) }));
    return new SnapshotFiles(snapshot, disks, volumes, onlyDisk);
  }

  /** The volumes of the selected disk (or of all disks), each probed for its filesystem. */
  async list(): Promise<SnapshotVolume[]> {
    const shown = this.volumes.filter((v) => this.onlyDisk === undefined || v.volume.disk === this.onlyDisk || v.volume.kind === 'logical-volume');
    for (const v of shown) await this.probe(v);
    return shown;
  }

  /**
   * The filesystem of the volume named `name` (`p1`, `vg0/root`, `disk`), on disk `disk`
   * (a name) when given, else on the disk `open` chose, else on whichever disk has it. Throws
   * `E_VOLUME_NOT_FOUND` (with the names there are), `E_USAGE` (the name is on several disks),
   * `E_VOLUME_ENCRYPTED`, or `E_FS_UNSUPPORTED` when no filesystem Coffer reads is on it.
   */
  async filesystem(name: string, options: { disk?: string } = {}): Promise<{ volume: SnapshotVolume; filesystem: Filesystem }> {
    const onlyDisk = options.disk === undefined ? this.onlyDisk : this.snapshot.disks.findIndex((d) => d.name === options.disk);
    const matches = this.volumes.filter((v) => v.volume.name === name && (onlyDisk === undefined || v.volume.disk === onlyDisk || v.volume.kind === 'logical-volume'));
    if (matches.length === 0) {
      const names = [...new Set(this.volumes.map((v) => v.volume.name))].join(', ') || 'none';
      throw new CofferError('E_VOLUME_NOT_FOUND', `no volume ${name} in snapshot ${this.snapshot.id.slice(0, 8)} (volumes: ${names})`, { subject: { snapshot: this.snapshot.id } });
    }
    if (matches.length > 1) {
      throw new CofferError('E_USAGE', `volume ${name} is on several disks (${matches.map((m) => m.diskName).join(', ')}): choose one with --disk`);
    }
    const v = matches[0] as SnapshotVolume;
    await this.probe(v);
    if (v.problem !== undefined) throw v.problem;
    if (v.filesystem === undefined) {
      throw new CofferError('E_FS_UNSUPPORTED', `volume ${name} holds no filesystem Coffer reads (ext2/3/4, FAT, NTFS, XFS)`, { subject: { snapshot: this.snapshot.id } });
    }
    return { volume: v, filesystem: v.filesystem };
  }

  /** Chunks and stored bytes fetched from the repository so far, over all disks. */
  fetched(): { chunks: number; bytes: number } {
    return this.disks.reduce((sum, d) => ({ chunks: sum.chunks + d.fetched.chunks, bytes: sum.bytes + d.fetched.bytes }), { chunks: 0, bytes: 0 });
  }

  async close(): Promise<void> {
    for (const disk of this.disks) await disk.close();
  }

  /**
   * Looks at `v` once for its filesystem: sets `filesystem`, or `problem` (encrypted,
   * damaged), or neither (no filesystem Coffer reads; an LVM PV, whose LVs are listed apart).
   */
  async probe(v: SnapshotVolume): Promise<void> {
    if (v.filesystem !== undefined || v.problem !== undefined) return;
    if (v.volume.encrypted !== undefined) {
      const kind = v.volume.encrypted === 'luks' ? 'LUKS' : 'BitLocker';
      v.problem = new CofferError('E_VOLUME_ENCRYPTED', `volume ${v.volume.name} is ${kind}-encrypted: its files cannot be read from the backup (restore the disk and unlock it)`);
      return;
    }
    if (v.volume.lvmPhysicalVolume !== undefined) return; // its logical volumes are listed on their own
    try {
      const fs = await openFilesystem(v.volume.device);
      if (fs !== undefined) v.filesystem = fs;
    } catch (error) {
      if (!(error instanceof CofferError) || error.code === 'E_INTERRUPTED') throw error;
      v.problem = error;
    }
  }
}
