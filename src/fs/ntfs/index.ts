/**
 * @module fs/ntfs
 * A read-only NTFS reader: boot sector, MFT records with their fixups, resident and
 * non-resident attributes (runlists, sparse runs, LZNT1 compression units, attribute lists),
 * $I30 directory B+trees searched with the volume's $UpCase collation, hard links, alternate
 * data streams (also as `user.*` extended attributes, with the DOS attributes as
 * `system.ntfs_attrib_be`, the way ntfs-3g shows them: stream-xattrs.ts), symlinks and
 * junctions. Each on-disk structure is documented in the file that parses it.
 */
export { ntfsDriver } from './driver.js';
export { NtfsFilesystem } from './ntfs-filesystem.js';
