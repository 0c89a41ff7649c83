/**
 * @module source
 * Where VMs come from. A {@link VmSource} yields the VM's definition and one block device per
 * disk, captured at one instant: image files now; running QEMU VMs and libvirt domains next.
 */
export type { VmSource, SourceDisk, ImageLayer } from './vm-source.js';
export { openImageSource } from './image-source.js';
