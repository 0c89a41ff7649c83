/**
 * @module fs/ext
 * Read-only ext2/ext3/ext4: superblock and group descriptors (32/64-bit, flex_bg, meta_bg),
 * inodes of any size, extent trees and indirect block maps, linear and htree directories,
 * inline data, fast and slow symlinks, sparse files, extended attributes and POSIX ACLs. Each on-disk structure is documented in
 * the file that parses it.
 */
export { extDriver } from './ext-driver.js';
