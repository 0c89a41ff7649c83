import type { Volume } from './volume.js';

/** A piece of a disk range that a volume holds: `length` bytes at `diskOffset` of the disk are bytes at `volumeOffset` of the volume. */
export interface VolumePiece {
  volumeOffset: number;
  diskOffset: number;
  length: number;
}

/** Bound on the pieces returned for one range (a striped volume gives one per stripe chunk). */
const MAX_PIECES = 1 << 16;

/**
 * The parts of bytes `[offset, offset + length)` of VM disk `disk` that lie in `volume`, as
 * volume offsets, in disk order: a partition or whole disk is one window of its disk; a
 * logical volume is mapped back through its segments and stripes (see
 * {@link Volume.segments}), so a range on a PV becomes the LV bytes stored there. A volume
 * whose place is unknown (an LV Coffer cannot read) holds nothing. Pure arithmetic.
 *
 * @example
 * volumeRangesOnDisk(p2, 0, { offset: p2.offset! + 4096, length: 512 }) // [{ volumeOffset: 4096, diskOffset: …, length: 512 }]
 */
export function volumeRangesOnDisk(volume: Volume, disk: number, range: { offset: number; length: number }): VolumePiece[] {
  const out: VolumePiece[] = [];
  const end = range.offset + range.length;
  if (volume.kind !== 'logical-volume') {
    if (volume.disk !== disk || volume.offset === undefined) return out;
    const from = Math.max(range.offset, volume.offset);
    const to = Math.min(end, volume.offset + volume.size);
    if (from < to) out.push({ volumeOffset: from - volume.offset, diskOffset: from, length: to - from });
    return out;
  }
  for (const segment of volume.segments ?? []) {
    const count = segment.stripes.length;
    const perStripe = segment.length / count;
    for (const [index, stripe] of segment.stripes.entries()) {
      if ('missing' in stripe || stripe.disk !== disk) continue;
      const from = Math.max(range.offset, stripe.offset);
      const to = Math.min(end, stripe.offset + perStripe);
      if (from >= to) continue;
      if (count === 1) {
        out.push({ volumeOffset: segment.start + (from - stripe.offset), diskOffset: from, length: to - from });
        continue;
      }
      // Area byte a is at row ⌊a / stripeSize⌋, chunk row·N + index of the segment.
      for (let at = from; at < to; ) {
        const area = at - stripe.offset;
        const row = Math.floor(area / segment.stripeSize);
        const within = area - row * segment.stripeSize;
        const n = Math.min(to - at, segment.stripeSize - within);
        out.push({ volumeOffset: segment.start + (row * count + index) * segment.stripeSize + within, diskOffset: at, length: n });
        at += n;
        if (out.length >= MAX_PIECES) return out;
      }
    }
  }
  return out.sort((a, b) => a.diskOffset - b.diskOffset);
}
