/**
 * @module nbd
 * The Network Block Device protocol (NetworkBlockDevice/nbd doc/proto.md), client and server,
 * small and strict: fixed newstyle handshake only, structured replies, block status with
 * `base:allocation` and QEMU's `qemu:dirty-bitmap:NAME`, several requests in flight, no TLS.
 *
 * - `protocol/`: the wire formats (documented next to their encoders), pure and shared.
 * - `client/`: {@link NbdClient} (one connection to one export) and {@link NbdBlockDevice}
 *   (an export as a read-only block device: how backup reads a running VM's disks).
 * - `server/`: {@link NbdServer} serves block devices (read-only, or a
 *   {@link WritableBlockDevice}) to any NBD client: how instant recovery exports a snapshot.
 * Every peer is untrusted: malformed or hostile input, a peer that stalls or dies, gives a
 * CofferError (`E_PROTOCOL`, `E_TIMEOUT`, `E_CONNECTION_FAILED`, `E_NBD_ERROR`), never a hang.
 */
export { NbdClient, type NbdClientOptions } from './client/nbd-client.js';
export { NbdBlockDevice, type NbdBlockDeviceOptions } from './client/nbd-block-device.js';
export { parseNbdUri, describeAddress, type NbdAddress } from './client/address.js';
export type { NegotiatedExport } from './client/handshake.js';
export { NbdServer, type NbdServerOptions, type NbdListenAddress } from './server/nbd-server.js';
export { ClientErrorLog } from './server/client-error-log.js';
export type { NbdExport } from './server/nbd-export.js';
export { RawFileDevice } from './server/raw-file-device.js';
export type { WritableBlockDevice } from '../blockdev/index.js';
export type { BlockDescriptor } from './protocol/transmission.js';
export type { BlockSizes, ExportListing } from './protocol/handshake.js';
export { NBD_DEFAULTS } from './defaults.js';
