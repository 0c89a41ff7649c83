/**
 * @module fs
 * Read-only filesystem readers for file-level restore: each is a {@link FilesystemDriver}
 * that recognises its superblock on a block device and opens a {@link Filesystem} (list
 * directories, stat, read files by range, read links). A guest's disk is untrusted input:
 * every reader bounds its work and memory and reports damage as `E_FS_CORRUPT`.
 */
export type { Filesystem, FilesystemDriver, FsDirEntry, FsFileExtent, FsNode, FsPhysicalExtent, FsNodeType, FsStream, FsType, FsXattr } from './filesystem.js';
export { fsCorrupt, fsUnsupported } from './fs-errors.js';
export { openFilesystem, FILESYSTEM_DRIVERS } from './open-filesystem.js';
export { resolvePath, lookupChild, type ResolvedNode } from './resolve-path.js';
export { walkTree, MAX_WALK_DEPTH, type WalkItem } from './walk-tree.js';
export { fatDriver } from './fat/index.js';
export { extDriver } from './ext/index.js';
export { ntfsDriver } from './ntfs/index.js';
export { xfsDriver } from './xfs/index.js';
export { findAffectedFiles, mergeRanges, DEFAULT_MAX_AFFECTED_FILES, type AffectedFile, type AffectedFilesReport, type ByteRange, type FindAffectedOptions } from './affected-files.js';
