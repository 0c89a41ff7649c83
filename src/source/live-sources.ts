import type { openLibvirtSource as OpenLibvirtSource } from './libvirt/libvirt-source.js';
import type { openQemuSource as OpenQemuSource } from './qemu/qemu-source.js';

/**
 * The running-VM sources, loaded when one is opened: their QMP, NBD and libvirt XML code
 * (≈45 modules, ~25 ms of a command's start) is not needed by a backup of image files or of
 * files, which every backup command otherwise loaded through this folder's index.
 */
export async function openQemuSource(...args: Parameters<typeof OpenQemuSource>): ReturnType<typeof OpenQemuSource> {
  return (await import('./qemu/qemu-source.js')).openQemuSource(...args);
}

/** {@link openQemuSource}'s counterpart for libvirt domains. */
export async function openLibvirtSource(...args: Parameters<typeof OpenLibvirtSource>): ReturnType<typeof OpenLibvirtSource> {
  return (await import('./libvirt/libvirt-source.js')).openLibvirtSource(...args);
}
