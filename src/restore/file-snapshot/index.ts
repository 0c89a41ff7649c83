/**
 * @module restore/file-snapshot
 * File snapshots back out: restored into a directory with all their metadata, or browsed as
 * a read-only filesystem by the same `ls`/`cat`/`get`/`find` verbs as image snapshots.
 */
export { restoreFileSnapshot, type FileRestoreOptions, type FileRestoreReport } from './restore-files.js';
export { TreeFilesystem } from './tree-filesystem.js';
