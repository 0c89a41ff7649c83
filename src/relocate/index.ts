/**
 * @module relocate
 * Moving a running VM's storage: the end of instant recovery. A VM booted from `coffer serve`
 * (its disks an NBD export of a snapshot) is moved onto local images while it runs, with
 * QEMU's `blockdev-mirror`, after which the export can end. Its own folder because it drives
 * QEMU (it imports qmp/), which restore/ must not, and it is not a source of backups; the
 * CLI (`coffer restore --to-vm QMP --to DIR`) uses it.
 */
export { moveToLocalStorage, moveVmToLocalStorage, MOVE_DEFAULTS, type MoveOptions, type MoveReport, type MovedDisk } from './move-to-local.js';
export { nbdBackedDisks, isNbdLayer, type NbdBackedDisk } from './nbd-backed-disks.js';
