/**
 * @module disk
 * Virtual disk formats as block devices, and writers to put disks back: raw images and block
 * devices for now (qcow2, VMDK, VHD, VHDX with backing chains come with the formats issue).
 * Knows nothing of the repository.
 */
export { RawImage } from './raw-image.js';
export { openRawTarget, type DiskTarget } from './raw-target.js';
