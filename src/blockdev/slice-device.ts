import type { BlockDevice, Extent } from './block-device.js';
import { assertReadInBounds } from './extents.js';

/**
 * A window `[offset, offset + length)` of another block device, itself a block device: a
 * partition of a disk, a logical volume's segment. Reads and extents are translated; closing
 * a slice leaves the parent open (the parent belongs to whoever opened it).
 */
export class SliceDevice implements BlockDevice {
  constructor(
    readonly parent: BlockDevice,
    readonly offset: number,
    readonly size: number,
  ) {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 || size < 0 || offset + size > parent.size) {
      throw new RangeError(`slice of ${size} bytes at ${offset} is outside a device of ${parent.size} bytes`);
    }
  }

  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    assertReadInBounds(this.size, offset, length);
    return this.parent.read(this.offset + offset, length, into);
  }

  async *extents(offset = 0, length = this.size - offset): AsyncIterable<Extent> {
    assertReadInBounds(this.size, offset, length);
    for await (const extent of this.parent.extents(this.offset + offset, length)) {
      yield { ...extent, offset: extent.offset - this.offset };
    }
  }

  async close(): Promise<void> {}
}
