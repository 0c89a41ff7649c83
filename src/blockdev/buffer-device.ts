import type { BlockDevice, Extent } from './block-device.js';
import { assertReadInBounds, wholeDeviceAsData } from './extents.js';

/**
 * Bytes in memory as a read-only block device, one data extent: a small source read whole at
 * a backup's instant (a libvirt domain's UEFI variable store), or test material.
 */
export function bufferDevice(bytes: Uint8Array): BlockDevice {
  return {
    size: bytes.length,
    async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
      assertReadInBounds(bytes.length, offset, length);
      const out = into === undefined ? new Uint8Array(length) : into.subarray(0, length);
      out.set(bytes.subarray(offset, offset + length));
      return out;
    },
    extents(offset = 0, length = bytes.length - offset): AsyncIterable<Extent> {
      assertReadInBounds(bytes.length, offset, length);
      return wholeDeviceAsData(offset, length);
    },
    async close(): Promise<void> {},
  };
}
