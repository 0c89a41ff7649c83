/**
 * @module source/files
 * Reading a directory tree for file-level backup: each path's complete metadata (lstat with
 * nanoseconds, or a whole directory's at once off the main thread; symlink targets, device numbers, extended attributes and so POSIX ACLs), the
 * local account names, and the exclusion rules.
 */
export { readFileMetadata, readFileMetadataSync, readXattrs, type FileMetadata, type FileType } from './file-metadata.js';
export { DirectoryScan, listDirectory, scanDirectory, type ScannedEntry } from './scan-directory.js';
export { ListingPrefetch } from './listing-prefetch.js';
export { byUtf8Bytes, listingSeed, subtreeDigest } from './subtree-digest.js';
export { readAccountNames, type AccountNames } from './account-names.js';
export { Excludes, CACHEDIR_TAG_SIGNATURE, type ExcludeOptions } from './excludes.js';
