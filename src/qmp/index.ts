/**
 * @module qmp
 * A strict client of the QEMU Machine Protocol, and the typed commands live backup needs.
 *
 * {@link QmpClient} owns one connection to a QEMU monitor (unix socket or TCP): greeting and
 * capabilities negotiation, commands with ids and several in flight, QMP errors as
 * {@link QmpCommandError} (E_QMP_ERROR with QEMU's error class), events to subscribers and
 * waiters, timeouts, and bounded, line-framed input from a peer that is never trusted
 * (E_PROTOCOL, E_CONNECTION_FAILED, E_TIMEOUT: never a hang).
 *
 * On top, one function per QMP command used by live backup, each checking QEMU's reply
 * against the QAPI schema it documents: disks and dirty bitmaps (block-query.ts), node
 * management (block-nodes.ts), bitmaps (dirty-bitmaps.ts), atomic `transaction`s, backup jobs
 * (block-jobs.ts), QEMU's NBD server (nbd-export.ts), version/status/capability probing
 * (vm-status.ts), guest I/O errors (block-io-error.ts), HMP (hmp.ts) and the VM's definition (describe-vm.ts). The orchestration of
 * a backup (fleecing, checkpoints, teardown) belongs to `source/`.
 *
 * Beside QMP, {@link GuestAgentClient} speaks to the QEMU guest agent inside the VM over its
 * virtio-serial channel (no greeting; resynchronised with guest-sync-delimited; a deadline on
 * every command, since an absent agent never answers), with the fsfreeze commands
 * (guest-agent-commands.ts) and the channel's host end found through QMP (guest-agent-channel.ts).
 */
export { QmpClient, QMP_DEFAULTS } from './qmp-client.js';
export type { QmpAddress, QmpConnectOptions, QmpCallOptions, QmpEventListener } from './qmp-client.js';
export { QmpCommandError, isQmpCommandError } from './qmp-command-error.js';
export type { QmpEvent, QmpGreeting, QemuVersion } from './qmp-message.js';
export { deviceIdOfQdev, queryBlock, queryNamedBlockNodes } from './block-query.js';
export type { BlockDriveInfo, BlockNodeInfo, DirtyBitmapInfo } from './block-query.js';
export { blockdevAdd, blockdevDel, fleecingOverlayOptions } from './block-nodes.js';
export type { BlockdevOptions } from './block-nodes.js';
export {
  addDirtyBitmap,
  removeDirtyBitmap,
  mergeDirtyBitmaps,
  clearDirtyBitmap,
  enableDirtyBitmap,
  disableDirtyBitmap,
  bitmapAddAction,
  bitmapMergeAction,
  bitmapAction,
} from './dirty-bitmaps.js';
export type { DirtyBitmapRef, DirtyBitmapAddArgs, DirtyBitmapMergeArgs } from './dirty-bitmaps.js';
export { transaction } from './transaction.js';
export type { TransactionAction, TransactionOptions } from './transaction.js';
export { blockdevBackup, blockdevBackupAction, blockJobCancel, jobDismiss, queryBlockJobs, queryJobs } from './block-jobs.js';
export type { BlockdevBackupArgs, BlockdevOnError, BlockJobInfo, JobInfo } from './block-jobs.js';
export { blockdevCreate, blockdevMirror, jobComplete, jobFinalize } from './block-mirror.js';
export type { BlockdevMirrorArgs } from './block-mirror.js';
export { nbdServerStart, nbdServerStop, blockExportAdd, blockExportDel, queryBlockExports } from './nbd-export.js';
export type { NbdListenAddress, NbdExportArgs, BlockExportInfo } from './nbd-export.js';
export { queryVersion, queryStatus, cont, queryCommands, missingCommands } from './vm-status.js';
export { BLOCK_IO_ERROR, parseBlockIoError } from './block-io-error.js';
export type { BlockIoError } from './block-io-error.js';
export type { VmStatus } from './vm-status.js';
export { humanMonitorCommand, qemuIo, type QemuIoOptions } from './hmp.js';
export { describeVm, VM_DESCRIPTION_FORMAT } from './describe-vm.js';
export type { VmDescription, DeviceDescription } from './describe-vm.js';
export { GuestAgentClient, GuestAgentCommandError, GUEST_AGENT_DEFAULTS } from './guest-agent-client.js';
export type { GuestAgentConnectOptions, GuestAgentCallOptions } from './guest-agent-client.js';
export { guestPing, guestInfo, guestFsfreezeStatus, guestFsfreezeFreeze, guestFsfreezeThaw } from './guest-agent-commands.js';
export type { GuestAgentInfo, GuestFsfreezeStatus } from './guest-agent-commands.js';
export { findGuestAgentChannel, parseChardevFilename, GUEST_AGENT_PORT_NAME } from './guest-agent-channel.js';
export type { GuestAgentChannel } from './guest-agent-channel.js';
