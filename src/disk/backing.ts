import { stat } from 'node:fs/promises';
import type { Extent, Placement } from '../blockdev/index.js';
import { CofferError } from '../errors/index.js';
import { fillZeros } from '../native/index.js';
import type { DiskImage } from './disk-image.js';

/**
 * What every layered format does with ranges its top image does not hold: read them from
 * the backing image (parent, delta parent) — zeros past its end or when there is none —
 * and report their extents one layer deeper.
 */

/** Fills `slice` with the backing image's bytes at `offset` (zeros where it has none). */
export async function readFromBacking(backing: DiskImage | null, offset: number, slice: Uint8Array): Promise<void> {
  const inside = backing === null ? 0 : Math.max(0, Math.min(slice.length, backing.size - offset));
  if (backing !== null && inside > 0) await backing.read(offset, inside, slice.subarray(0, inside));
  fillZeros(slice, inside);
}

/** The backing image's extents over a range, one layer deeper; zero past its end or without one. */
export async function* backingExtents(backing: DiskImage | null, offset: number, length: number): AsyncIterable<Extent> {
  const inside = backing === null ? 0 : Math.max(0, Math.min(length, backing.size - offset));
  if (backing !== null && inside > 0) {
    for await (const extent of backing.extents(offset, inside)) {
      yield { ...extent, ...(extent.layer === undefined ? {} : { layer: extent.layer + 1 }) };
    }
  }
  if (inside < length) yield { offset: offset + inside, length: length - inside, kind: 'zero' };
}

/**
 * Where the backing image's bytes over a range lie ({@link Placement}): its own placements,
 * or `read` when it cannot say; zeros past its end or without one.
 */
export async function* backingPlacements(backing: DiskImage | null, offset: number, length: number): AsyncIterable<Placement> {
  const inside = backing === null ? 0 : Math.max(0, Math.min(length, backing.size - offset));
  if (backing !== null && inside > 0) {
    if (backing.placements === undefined) yield { offset, length: inside, kind: 'read' };
    else yield* backing.placements(offset, inside);
  }
  if (inside < length) yield { offset: offset + inside, length: length - inside, kind: 'zero' };
}

/**
 * Where a differencing disk's parent is: the first of `candidates` (from its locators, in the
 * format's order of preference) that exists as a file or a block device. None existing is
 * `E_SOURCE_UNREADABLE`, naming every place looked at.
 */
export async function findParent(childPath: string, candidates: readonly string[], what: string): Promise<string> {
  for (const candidate of candidates) {
    if (await stat(candidate).then((s) => s.isFile() || s.isBlockDevice(), () => false)) return candidate;
  }
  throw new CofferError('E_SOURCE_UNREADABLE', `${childPath}: the parent of this ${what} is missing; looked for ${candidates.join(', ')}`, {
    subject: { path: childPath },
  });
}
