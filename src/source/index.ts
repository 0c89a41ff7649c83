/**
 * @module source
 * Where VMs come from. A {@link VmSource} yields the VM's definition and one block device per
 * disk, captured at one instant: image files, running QEMU VMs (QMP + NBD, dirty bitmaps) and
 * running libvirt domains (virsh's pull-mode backup API + NBD, checkpoints).
 */
export type { VmSource, SourceDisk, ImageLayer } from './vm-source.js';
export { openImageSource } from './image-source.js';
export { openQemuSource, type QemuSourceOptions } from './qemu/qemu-source.js';
export { openLibvirtSource, LIBVIRT_DEFINITION_FORMAT, type LibvirtSourceOptions } from './libvirt/libvirt-source.js';
export type { CaptureHooks } from './qemu/qemu-capture.js';
export { parseChangedRanges, mergeRanges, withChangedRanges, type ChangedRange } from './changed-ranges.js';
