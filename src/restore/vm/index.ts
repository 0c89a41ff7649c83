/**
 * Restore as a new VM: a snapshot's disks restored as images and the VM's stored definition
 * rewritten for a clone with a new identity (name, UUID, MACs). One module per definition
 * format (libvirt-domain.ts, qemu-command.ts), each pure; restore-as-vm.ts does the I/O.
 */
export { restoreAsVm, type RestoreAsVmOptions, type RestoredVm } from './restore-as-vm.js';
export { cloneLibvirtDomain, LIBVIRT_XML_FORMAT, type CloneDefinition, type RestoredDiskImage } from './libvirt-domain.js';
export { cloneQemuScript, QMP_DESCRIPTION_FORMAT, type QemuCloneScript } from './qemu-command.js';
export { randomIdentities, MAC_PREFIX, type IdentitySource } from './new-identity.js';
export { defineLibvirtDomain } from './define-domain.js';
export { bootHints, type BootHints } from './boot-hints.js';
