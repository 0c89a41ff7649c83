/**
 * @module restore
 * The restore direction: a snapshot's disk is itself a block device over the repository
 * ({@link SnapshotDisk}), and restoring is copying that device to a target (a sparse raw
 * file, a block device, standard output). Comparing two snapshots (`diff/`) reads them the
 * same way: disk indexes, file trees, and the filesystems on a snapshot's disks.
 */
export { SnapshotDisk } from './snapshot-disk.js';
export { restoreDisk, type RestoreProgress } from './restore-disk.js';
export { restoreSnapshot, findDisk, type RestoreOptions } from './restore-snapshot.js';
export { SnapshotFiles, type SnapshotVolume, openSnapshotFilesystems, FILE_TREE_VOLUME, type SnapshotFilesystems, type BrowsableVolume, affectedFiles, affectedFilesOfSnapshot, type AffectedFilesOptions, type VolumeDamage, extractTree, tarTree, zipTree, type ZipReport, globToRegExp, type ExtractOptions, type ExtractReport, type TarOptions, type TarReport, type EntryProblem, type TreeReport } from './files/index.js';
export { CowOverlay, GRANULE, type OverlayOrigin } from './cow-overlay.js';
export { testRestore, checkerCommand, bootCheck, BOOT_BUSES, BOOT_FIRMWARES, type BootFirmwareChoice, type BootBus, type BootCheckOptions, type BootResult, type TestRestoreOptions, type TestRestoreReport, type DiskCheck, type VolumeCheck, type CheckerResult } from './test-restore/index.js';
export {
  restoreAsVm,
  cloneLibvirtDomain,
  cloneQemuScript,
  randomIdentities,
  defineLibvirtDomain,
  LIBVIRT_XML_FORMAT,
  QMP_DESCRIPTION_FORMAT,
  MAC_PREFIX,
  type RestoreAsVmOptions,
  type RestoredVm,
  type CloneDefinition,
  type QemuCloneScript,
  type RestoredDiskImage,
  type IdentitySource,
} from './vm/index.js';
export { restoreFileSnapshot, TreeFilesystem, type FileRestoreOptions, type FileRestoreReport } from './file-snapshot/index.js';
export * from './diff/index.js';
