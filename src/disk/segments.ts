/**
 * What every mapped image reader (qcow2, VHD, VHDX, VMDK) does between its map and its
 * bytes: walk a guest range unit by unit (clusters, blocks, grains) into *segments*, runs
 * of guest bytes that come from one place (host data, zeros, compressed units, the backing
 * image), merging neighbours that can be read as one; then fill a read's buffer from them,
 * several segments at a time. Each reader keeps its own segment kinds and fill.
 */

import { coalesceExtents, type Extent, type Placement } from '../blockdev/index.js';
import { fillZeros } from '../native/index.js';
import { backingExtents, backingPlacements, readFromBacking } from './backing.js';
import type { DiskImage } from './disk-image.js';
import type { HostPlacement } from './image-file.js';

/** A run of guest bytes; a reader adds where it comes from. */
export interface Segment {
  offset: number;
  length: number;
}

/** Reads started together for one read: enough to overlap file reads and decoding, few enough to bound memory. */
const FILLS_IN_FLIGHT = 8;

/**
 * The segments of `length` guest bytes from `offset`, cut at multiples of `unitSize`: `map`
 * gives the segments of `take` bytes of unit `unit` starting `within` it (guest offset
 * `position`), and neighbours that `canMerge` allows are joined (the earlier one grows).
 * `map` may answer for more than `take` bytes — whole following units that map alike (a qcow2
 * L1 entry without an L2 table: 512 MiB of clusters), never past the range's end — and the
 * walk goes on after them.
 */
export async function* unitSegments<S extends Segment>(
  offset: number,
  length: number,
  options: {
    unitSize: number;
    map: (unit: number, position: number, within: number, take: number) => S[] | Promise<S[]>;
    canMerge: (a: S, b: S) => boolean;
  },
): AsyncIterable<S> {
  // One loop, no inner generator, and no await for a unit mapped at once (its table in
  // memory): a 4 GiB qcow2 has 65,536 clusters, walked once to plan a copy and once to read.
  const { unitSize, map, canMerge } = options;
  const end = offset + length;
  let pending: S | undefined;
  for (let position = offset; position < end; ) {
    const unit = Math.floor(position / unitSize);
    const within = position - unit * unitSize;
    const take = Math.min(end - position, unitSize - within);
    const mapped = map(unit, position, within, take);
    let covered = 0;
    for (const next of Array.isArray(mapped) ? mapped : await mapped) {
      covered += next.length;
      if (pending !== undefined && pending.offset + pending.length === next.offset && canMerge(pending, next)) {
        pending.length += next.length;
        continue;
      }
      if (pending !== undefined) yield pending;
      pending = { ...next };
    }
    position += Math.max(take, covered);
  }
  if (pending !== undefined) yield pending;
}

/** `segments` with neighbours that `canMerge` allows joined (copies: the input is not changed). */
export async function* mergeSegments<S extends Segment>(segments: AsyncIterable<S>, canMerge: (a: S, b: S) => boolean): AsyncIterable<S> {
  let pending: S | undefined;
  for await (const next of segments) {
    if (pending !== undefined && pending.offset + pending.length === next.offset && canMerge(pending, next)) {
      pending.length += next.length;
      continue;
    }
    if (pending !== undefined) yield pending;
    pending = { ...next };
  }
  if (pending !== undefined) yield pending;
}

/**
 * Fills `target`, which holds the guest bytes from `offset`, from `segments`: `fill` gets each
 * segment and its slice of `target`, started as the segment is mapped, up to
 * {@link FILLS_IN_FLIGHT} at once. Stops at the first failure and throws it; every fill has
 * settled before this returns or throws, so nothing writes into `target` afterwards.
 */
export async function fillSegments<S extends Segment>(
  target: Uint8Array,
  offset: number,
  segments: AsyncIterable<S>,
  fill: (segment: S, slice: Uint8Array) => Promise<void> | void,
): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  try {
    for await (const segment of segments) {
      const slice = target.subarray(segment.offset - offset, segment.offset - offset + segment.length);
      const filling: Promise<void> = Promise.resolve()
        .then(() => fill(segment, slice))
        .then(
          () => void inFlight.delete(filling),
          (error: unknown) => {
            inFlight.delete(filling);
            failure ??= { error };
          },
        );
      inFlight.add(filling);
      if (inFlight.size >= FILLS_IN_FLIGHT) await Promise.race(inFlight);
      if (failure !== undefined) break;
    }
  } finally {
    await Promise.all(inFlight);
  }
  if (failure !== undefined) throw failure.error;
}

/** A segment of an image without compressed units (VHD, VHDX): its file's bytes at `host`, zeros, or the backing image's bytes. */
export type PlainSegment = Segment & ({ source: 'data'; host: number } | { source: 'zero' } | { source: 'parent' });

/**
 * Reads `length` guest bytes from `offset` of an image whose segments are all plain: into
 * `into` when given (its first `length` bytes), else into a new buffer, which is returned.
 */
export async function readPlainSegments(
  image: { file: { readAt(offset: number, length: number, into: Uint8Array): Promise<unknown> }; backing: DiskImage | null },
  segments: AsyncIterable<PlainSegment>,
  offset: number,
  length: number,
  into?: Uint8Array,
): Promise<Uint8Array> {
  const target = into === undefined ? new Uint8Array(length) : into.subarray(0, length);
  await fillSegments(target, offset, segments, (segment, slice) => {
    if (segment.source === 'zero') fillZeros(slice);
    else if (segment.source === 'data') return image.file.readAt(segment.host, segment.length, slice).then(() => undefined);
    else return readFromBacking(image.backing, segment.offset, slice);
  });
  return target;
}

/**
 * Where the guest bytes of plain `segments` lie (a block device's `placements`): host data
 * as the image's file places it, zeros, the backing image's placements.
 */
export async function* plainPlacements(
  image: { file: { placeAt(offset: number, length: number): HostPlacement }; backing: DiskImage | null },
  segments: AsyncIterable<PlainSegment>,
): AsyncIterable<Placement> {
  for await (const segment of segments) {
    if (segment.source === 'zero') yield { offset: segment.offset, length: segment.length, kind: 'zero' };
    else if (segment.source === 'data') yield { offset: segment.offset, length: segment.length, ...image.file.placeAt(segment.host, segment.length) };
    else yield* backingPlacements(image.backing, segment.offset, segment.length);
  }
}

/**
 * The placements of a device whose bytes lie in one file at their own offsets (a raw image, a
 * fixed VHD): its data extents in the file, its holes as zeros.
 */
export async function* extentPlacements(extents: AsyncIterable<Extent>, place: (offset: number, length: number) => HostPlacement): AsyncIterable<Placement> {
  for await (const extent of extents) {
    if (extent.kind === 'zero') yield { offset: extent.offset, length: extent.length, kind: 'zero' };
    else yield { offset: extent.offset, length: extent.length, ...place(extent.offset, extent.length) };
  }
}

/** What a segment is in the extent map: data or zeros of this image (with its layer), or the backing image's. */
export type SegmentKind = Pick<Extent, 'kind' | 'layer'> | 'backing';

/**
 * The extent map of `segments`, coalesced: each segment as `classify` says, and for those
 * from the backing image its extents one layer deeper (zeros past its end or without one).
 */
export async function* segmentExtents<S extends Segment>(
  segments: AsyncIterable<S>,
  options: { backing: DiskImage | null; classify: (segment: S) => SegmentKind },
): AsyncIterable<Extent> {
  async function* raw(): AsyncIterable<Extent> {
    for await (const segment of segments) {
      const kind = options.classify(segment);
      if (kind === 'backing') yield* backingExtents(options.backing, segment.offset, segment.length);
      else yield { offset: segment.offset, length: segment.length, ...kind };
    }
  }
  yield* coalesceExtents(raw());
}
