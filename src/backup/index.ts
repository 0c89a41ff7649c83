/**
 * @module backup
 * The backup direction of the pipeline: a {@link VmSource}'s disks, block by block, into a
 * snapshot. Reads only data ranges, hashes on the worker pool, stores only new chunks, and
 * writes the manifest last; and directory trees into file snapshots (`files/`: content-defined
 * chunks, one tree object per directory). Reports progress through a callback; never prints.
 */
export { backupVm, type BackupOptions, type BackupProgress } from './backup-vm.js';
export { backupDisk, type BackupDiskOptions, type DiskProgress } from './backup-disk.js';
export { backupFiles, fileParentOf, type FileBackupOptions, type FileBackupProgress } from './files/backup-files.js';
export { FastCdc, FILE_CHUNK_SIZES, type ChunkSizes } from '../repo/index.js';
export { runVmBackup, repositoryOpenerAt, type RunVmBackupOptions, type VmBackupProgress } from './run-vm-backup.js';
export type { CaptureHookCommands, RepositoryLocation, RepositoryOpener, ScratchSpec, VmBackupEvent, VmBackupRequest, VmBackupResult, VmBackupSource, VmBackupSpec } from './vm-backup-spec.js';
export { BusyClock, type Bottleneck, type ByteThrottle, type TimeBreakdown } from './backup-meter.js';
