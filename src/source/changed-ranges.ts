import type { BlockDevice, Extent } from '../blockdev/index.js';
import { CofferError } from '../errors/index.js';

/** A byte range `[offset, offset + length)` that changed. */
export interface ChangedRange {
  offset: number;
  length: number;
}

/**
 * Parses a list of changed ranges from any source of change tracking:
 * - `[[offset, length], ...]` (what a script writes from LVM thin diffs, ZFS, a VMware CBT
 *   export, a storage array);
 * - the JSON of `qemu-img map --output=json` of a delta (an overlay, a snapshot's top layer):
 *   `[{"start", "length", "data", "zero", "depth"?}, ...]`; ranges with `data: true` or
 *   `zero: true` that the image itself holds (`depth` 0, or no depth) changed.
 * Ranges are sorted and merged; anything malformed is `E_USAGE` naming the problem.
 */
export function parseChangedRanges(text: string, source: string): ChangedRange[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CofferError('E_USAGE', `${source}: not JSON (expected [[offset, length], ...] or qemu-img map --output=json)`);
  }
  if (!Array.isArray(value)) throw new CofferError('E_USAGE', `${source}: expected a JSON array`);
  const ranges: ChangedRange[] = [];
  for (const [i, item] of value.entries()) {
    const bad = (why: string): CofferError => new CofferError('E_USAGE', `${source}: entry ${i}: ${why}`);
    if (Array.isArray(item)) {
      const [offset, length] = item as unknown[];
      if (!isByteCount(offset) || !isByteCount(length)) throw bad('expected [offset, length] with non-negative integers');
      if (length > 0) ranges.push({ offset, length });
    } else if (typeof item === 'object' && item !== null) {
      const { start, length, data, zero, depth } = item as Record<string, unknown>;
      if (!isByteCount(start) || !isByteCount(length)) throw bad('expected start and length');
      const ownLayer = depth === undefined || depth === 0;
      if (ownLayer && (data === true || zero === true) && length > 0) ranges.push({ offset: start, length });
    } else {
      throw bad('expected [offset, length] or a qemu-img map entry');
    }
  }
  return mergeRanges(ranges);
}

/** Sorted, with overlapping and touching ranges merged. */
export function mergeRanges(ranges: readonly ChangedRange[]): ChangedRange[] {
  const sorted = [...ranges].sort((a, b) => a.offset - b.offset);
  const out: ChangedRange[] = [];
  for (const r of sorted) {
    const last = out.at(-1);
    if (last !== undefined && r.offset <= last.offset + last.length) last.length = Math.max(last.length, r.offset + r.length - last.offset);
    else out.push({ ...r });
  }
  return out;
}

/**
 * The device with every extent marked `changed` where it meets a changed range and
 * `changed: false` elsewhere: what the ranges' source claims. Ranges past the end of the
 * device are an error (they speak of another disk).
 */
export function withChangedRanges(device: BlockDevice, ranges: readonly ChangedRange[]): BlockDevice {
  const last = ranges.at(-1);
  if (last !== undefined && last.offset + last.length > device.size) {
    throw new CofferError('E_USAGE', `changed range ${last.offset}+${last.length} lies past the end of a ${device.size}-byte disk`);
  }
  return {
    size: device.size,
    read: (offset, length, into) => device.read(offset, length, into),
    close: () => device.close(),
    async *extents(offset?: number, length?: number): AsyncIterable<Extent> {
      let i = 0;
      for await (const extent of device.extents(offset, length)) {
        let at = extent.offset;
        const end = extent.offset + extent.length;
        while (i < ranges.length && (ranges[i] as ChangedRange).offset + (ranges[i] as ChangedRange).length <= at) i++;
        let j = i;
        while (at < end) {
          const r = ranges[j];
          if (r === undefined || r.offset >= end) {
            yield { ...extent, offset: at, length: end - at, changed: false };
            break;
          }
          if (r.offset > at) {
            yield { ...extent, offset: at, length: r.offset - at, changed: false };
            at = r.offset;
          }
          const to = Math.min(end, r.offset + r.length);
          yield { ...extent, offset: at, length: to - at, changed: true };
          at = to;
          if (to === r.offset + r.length) j++;
        }
      }
    },
  };
}

function isByteCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
