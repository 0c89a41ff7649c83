/**
 * @module fs/fat
 * The FAT12/16/32 reader: boot sector, the FAT and its cluster
 * chains, directories with VFAT long names, files read by cluster runs. Read-only; a damaged
 * volume gives E_FS_CORRUPT for what is damaged and leaves the rest readable.
 */
export { fatDriver } from './fat-driver.js';
export { FatFilesystem } from './fat-filesystem.js';
