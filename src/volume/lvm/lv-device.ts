import { assertReadInBounds, coalesceExtents, type BlockDevice, type Extent } from '../../blockdev/index.js';
import { CofferError, type ErrorCode } from '../../errors/index.js';

/** Where one stripe of a segment lies: a window of a PV, or a PV that none of the disks holds. */
export type StripeArea = { device: BlockDevice; offset: number } | { missing: string };

/**
 * A run of a logical volume: `length` bytes from `start` in the LV, over `stripes.length`
 * areas. One stripe is a linear mapping; with N stripes, chunks of `stripeSize` bytes go
 * round-robin over the areas (chunk c on stripe c mod N, at row ⌊c / N⌋ of that area).
 */
export interface MappedSegment {
  start: number;
  length: number;
  stripeSize: number;
  stripes: StripeArea[];
}

/**
 * A logical volume as a block device: reads are split across segments and stripes and sent
 * to the PVs' devices (concurrently). The extent map passes the PV's map through for linear
 * segments; striped segments and segments on missing PVs are reported as data. Reading bytes
 * on a missing PV throws E_SOURCE_UNREADABLE naming the PV. Closing leaves the PVs open
 * (the disks belong to whoever opened them).
 */
export class LogicalVolumeDevice implements BlockDevice {
  readonly size: number;

  constructor(
    readonly name: string,
    private readonly segments: readonly MappedSegment[],
  ) {
    let next = 0;
    for (const s of segments) {
      if (s.start !== next || s.length <= 0 || s.stripes.length === 0 || (s.stripes.length > 1 && s.stripeSize <= 0)) {
        throw new RangeError(`${name}: segments must be contiguous, non-empty, with a stripe size when striped`);
      }
      next += s.length;
    }
    this.size = next;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    assertReadInBounds(this.size, offset, length);
    const target = into === undefined ? new Uint8Array(length) : into.subarray(0, length);
    const pieces = [...this.pieces(offset, length)];
    for (const piece of pieces) {
      if ('missing' in piece.area) {
        throw new CofferError('E_SOURCE_UNREADABLE',
          `${this.name}: bytes ${piece.lvOffset}..${piece.lvOffset + piece.length} lie on physical volume ${piece.area.missing}, which is on none of the disks given`,
          { subject: { object: this.name, offset: piece.lvOffset } });
      }
    }
    const pending = pieces.map(async ({ area, lvOffset, length: n, areaOffset }) => {
      if ('missing' in area) return;
      const window = target.subarray(lvOffset - offset, lvOffset - offset + n);
      const got = await area.device.read(area.offset + areaOffset, n, window);
      if (got !== window) window.set(got.subarray(0, n));
    });
    await Promise.all(pending);
    return target;
  }

  async *extents(offset = 0, length = this.size - offset): AsyncIterable<Extent> {
    assertReadInBounds(this.size, offset, length);
    yield* coalesceExtents(this.mapExtents(offset, length));
  }

  private async *mapExtents(offset: number, length: number): AsyncIterable<Extent> {
    const end = offset + length;
    for (const segment of this.segments) {
      const from = Math.max(offset, segment.start);
      const to = Math.min(end, segment.start + segment.length);
      if (from >= to) continue;
      const area = segment.stripes[0]!;
      if (segment.stripes.length === 1 && !('missing' in area)) {
        const shift = area.offset + (from - segment.start);
        for await (const e of area.device.extents(shift, to - from)) {
          yield { offset: e.offset - shift + from, length: e.length, kind: e.kind };
        }
      } else {
        yield { offset: from, length: to - from, kind: 'data' };
      }
    }
  }

  /** The contiguous pieces of `[offset, offset + length)`, each within one stripe chunk of one segment. */
  private *pieces(offset: number, length: number): Iterable<{ lvOffset: number; length: number; area: StripeArea; areaOffset: number }> {
    let position = offset;
    const end = offset + length;
    let index = this.findSegment(position);
    while (position < end) {
      const segment = this.segments[index]!;
      const segmentEnd = segment.start + segment.length;
      const relative = position - segment.start;
      const count = segment.stripes.length;
      let area: StripeArea;
      let areaOffset: number;
      let span: number;
      if (count === 1) {
        area = segment.stripes[0]!;
        areaOffset = relative;
        span = segmentEnd - position;
      } else {
        const chunk = Math.floor(relative / segment.stripeSize);
        const within = relative - chunk * segment.stripeSize;
        area = segment.stripes[chunk % count]!;
        areaOffset = Math.floor(chunk / count) * segment.stripeSize + within;
        span = Math.min(segment.stripeSize - within, segmentEnd - position);
      }
      const n = Math.min(span, end - position);
      yield { lvOffset: position, length: n, area, areaOffset };
      position += n;
      if (position >= segmentEnd) index++;
    }
  }

  private findSegment(offset: number): number {
    let low = 0;
    let high = this.segments.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (this.segments[middle]!.start <= offset) low = middle;
      else high = middle - 1;
    }
    return low;
  }

  async close(): Promise<void> {}
}

/**
 * A volume whose bytes Coffer cannot read (an LVM thin volume, a snapshot, a damaged LV):
 * its size is known, every read throws the CofferError given, the map is one data extent.
 */
export class UnreadableDevice implements BlockDevice {
  constructor(
    readonly size: number,
    private readonly code: ErrorCode,
    private readonly reason: string,
  ) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    assertReadInBounds(this.size, offset, length);
    throw new CofferError(this.code, this.reason);
  }

  async *extents(offset = 0, length = this.size - offset): AsyncIterable<Extent> {
    assertReadInBounds(this.size, offset, length);
    if (length > 0) yield { offset, length, kind: 'data' };
  }

  async close(): Promise<void> {}
}
