import type { BlockDevice } from '../../blockdev/index.js';
import type { WritableBlockDevice } from '../../blockdev/index.js';
import { TransmissionFlag } from '../protocol/constants.js';

/**
 * What the server serves under one export name: a read-only device, or a writable one.
 * The server never closes devices: their owner does, after closing the server.
 */
export type NbdExport =
  | { device: BlockDevice; writable?: false; description?: string }
  | { device: WritableBlockDevice; writable: true; description?: string };

/**
 * The transmission flags of an export. FLUSH is offered everywhere (a no-op when read-only);
 * writable exports add FUA, TRIM and WRITE_ZEROES. MULTI_CONN holds because every connection
 * reaches the one device object, whose `flush` covers writes from any connection.
 */
export function transmissionFlags(exp: NbdExport): number {
  const base = TransmissionFlag.HAS_FLAGS | TransmissionFlag.SEND_FLUSH | TransmissionFlag.CAN_MULTI_CONN;
  if (exp.writable !== true) return base | TransmissionFlag.READ_ONLY;
  return base | TransmissionFlag.SEND_FUA | TransmissionFlag.SEND_TRIM | TransmissionFlag.SEND_WRITE_ZEROES;
}
