/**
 * @module source
 * Where VMs come from. A {@link VmSource} yields the VM's definition and one block device per
 * disk, captured at one instant: image files, running QEMU VMs (QMP + NBD, dirty bitmaps;
 * the guest's filesystems frozen through its agent around the instant when it has one) and
 * running libvirt domains (virsh's pull-mode backup API + NBD, checkpoints). For file-level
 * backup, `files/` reads a directory tree's metadata and decides what is excluded.
 */
export type { VmSource, SourceDisk, ImageLayer, SourceConsistency } from './vm-source.js';
export { openImageSource } from './image-source.js';
export type { QemuSourceOptions } from './qemu/qemu-source.js';
export type { CaptureHooks, CaptureQuiescer } from './qemu/qemu-capture.js';
export type { FreezeEvent, GuestFreezeOptions } from './qemu/guest-freeze.js';
export type { LibvirtSourceOptions } from './libvirt/libvirt-source.js';
export { openQemuSource, openLibvirtSource } from './live-sources.js';
export { LIBVIRT_NVRAM_DISK } from './libvirt/libvirt-nvram.js';
export { parseChangedRanges, mergeRanges, withChangedRanges, type ChangedRange } from './changed-ranges.js';
export { readChangedRanges } from './changed-ranges-input.js';
export { readFileMetadata, readFileMetadataSync, readXattrs, scanDirectory, listDirectory, DirectoryScan, ListingPrefetch, byUtf8Bytes, listingSeed, subtreeDigest, type ScannedEntry, readAccountNames, Excludes, CACHEDIR_TAG_SIGNATURE, type FileMetadata, type FileType, type AccountNames, type ExcludeOptions } from './files/index.js';
