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
  /**
   * For a `read` block that change tracking says changed only in part (every byte of it is
   * marked `changed: true` or `false`, some of each): the changed byte ranges, absolute and
   * in order. A reader that has the block's previous content may read only these.
   */
  changed?: { offset: number; length: number }[];
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
    let allKnown = trustChangeTracking;
    const changed: { offset: number; length: number }[] = [];
    let position = offset;
    while (position < end) {
      await advanceTo(position);
      const extent = current as Extent;
      const to = Math.min(end, extent.offset + extent.length);
      if (extent.kind !== 'zero') allZero = false;
      if (extent.changed !== false) allUnchanged = false;
      if (extent.changed === undefined) allKnown = false;
      if (extent.changed === true) {
        const last = changed.at(-1);
        if (last !== undefined && last.offset + last.length === position) last.length += to - position;
        else changed.push({ offset: position, length: to - position });
      }
      position = to;
    }
    const action = allZero ? 'zero' : allUnchanged ? 'unchanged' : 'read';
    const partial = action === 'read' && allKnown && changed.length > 0 && !(changed.length === 1 && changed[0]?.length === length);
    yield partial ? { index, offset, length, action, changed } : { index, offset, length, action };
  }
}
