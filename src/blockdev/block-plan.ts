import type { BlockDevice, Extent } from './block-device.js';

/**
 * What a reader of the device must do with one fixed-size block:
 * - `zero`: the device says it reads as zeros, nothing to read;
 * - `unchanged`: the device says it has not changed since its reference point (a backup
 *   takes the parent's entry without reading);
 * - `read`: read it.
 */
export interface PlannedBlock {
  index: number;
  offset: number;
  length: number;
  action: 'zero' | 'unchanged' | 'read';
}

/**
 * Walks the device's extent map once and yields every block in order with its action
 * (backup plans its reads with it, a copy skips zero blocks with it).
 * A block is `zero` only if every byte of it is in zero extents, `unchanged` only if every
 * byte is in extents marked `changed: false` (and the caller trusts change tracking).
 */
export async function* planBlocks(device: BlockDevice, blockSize: number, trustChangeTracking: boolean): AsyncIterable<PlannedBlock> {
  const size = device.size;
  const blocks = Math.ceil(size / blockSize);
  const iterator = device.extents(0, size)[Symbol.asyncIterator]();
  let current: Extent | undefined;
  const advanceTo = async (offset: number) => {
    while (current === undefined || current.offset + current.length <= offset) {
      const next = await iterator.next();
      if (next.done) throw new Error(`the extent map of a ${size}-byte device stops before byte ${offset}`);
      current = next.value;
    }
  };
  for (let index = 0; index < blocks; index++) {
    const offset = index * blockSize;
    const length = Math.min(blockSize, size - offset);
    const end = offset + length;
    let allZero = true;
    let allUnchanged = trustChangeTracking;
    let position = offset;
    while (position < end) {
      await advanceTo(position);
      const extent = current as Extent;
      if (extent.kind !== 'zero') allZero = false;
      if (extent.changed !== false) allUnchanged = false;
      position = Math.min(end, extent.offset + extent.length);
    }
    const action = allZero ? 'zero' : allUnchanged ? 'unchanged' : 'read';
    yield { index, offset, length, action };
  }
}
