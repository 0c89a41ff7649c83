/**
 * @module fs/xfs
 * A read-only XFS v5 reader for file-level restore: superblock, inodes (v3, bigtime),
 * block maps (extents and B+trees, unwritten extents as zeros), directories in all four
 * shapes (short-form, block, leaf, node, with hash lookup), inline and remote symlinks,
 * extended attributes in all three (short-form, leaf, node; remote values) with XFS's POSIX
 * ACLs given in Linux's xattr form. Checksums of the superblock, inodes and the metadata
 * blocks read are verified.
 */
export { xfsDriver } from './xfs-driver.js';
export type { XfsFilesystem } from './xfs-filesystem.js';
