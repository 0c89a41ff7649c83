import type { Extent } from './block-device.js';

/**
 * Merges adjacent extents of the same kind, change state and layer, so callers see the
 * fewest ranges. Input must be ordered and non-overlapping.
 */
export async function* coalesceExtents(source: AsyncIterable<Extent>): AsyncIterable<Extent> {
  let pending: Extent | undefined;
  for await (const extent of source) {
    if (extent.length === 0) continue;
    if (
      pending !== undefined &&
      pending.offset + pending.length === extent.offset &&
      pending.kind === extent.kind &&
      pending.changed === extent.changed &&
      pending.layer === extent.layer
    ) {
      pending = { ...pending, length: pending.length + extent.length };
      continue;
    }
    if (pending !== undefined) yield pending;
    pending = { ...extent };
  }
  if (pending !== undefined) yield pending;
}

/** The extent map of a device that knows nothing about allocation: one data extent. */
export async function* wholeDeviceAsData(offset: number, length: number): AsyncIterable<Extent> {
  if (length > 0) yield { offset, length, kind: 'data' };
}

/** Throws a RangeError when `[offset, offset + length)` is not inside `[0, size)`. */
export function assertReadInBounds(size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new RangeError(`read of ${length} bytes at ${offset} is outside a device of ${size} bytes`);
  }
}
