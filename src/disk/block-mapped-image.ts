import { assertReadInBounds, type Extent, type Placement } from '../blockdev/index.js';
import type { DiskImage } from './disk-image.js';
import type { ImageFile } from './image-file.js';
import { plainPlacements, readPlainSegments, segmentExtents, unitSegments, type PlainSegment, type SegmentKind } from './segments.js';

/** What a {@link BlockMappedImage} reads its own bytes from: the image file, or a view of it (a VHDX whose log was replayed in memory). */
export type BlockMappedFile = Pick<ImageFile, 'path' | 'readAt' | 'placeAt' | 'close'>;

/** How a format's segments read as extents, and which neighbours are one segment. */
export interface SegmentRules<S extends PlainSegment> {
  classify(segment: S): SegmentKind;
  canMerge(a: S, b: S): boolean;
}

/**
 * What the readers of images made of fixed-size blocks found through a table share (VHD
 * dynamic and differencing, VHDX): a guest range is cut at block boundaries, each block's
 * share mapped to plain segments by the format ({@link blockSegments}: the file's bytes,
 * zeros, or the parent's bytes), neighbours merged as {@link SegmentRules.canMerge} allows,
 * and those segments read, mapped and placed the same way for every such format. A format
 * adds its table, its bitmaps and what `coffer disk info` shows.
 */
export abstract class BlockMappedImage<S extends PlainSegment> {
  abstract readonly size: number;
  abstract readonly backing: DiskImage | null;
  private closed = false;

  protected constructor(
    protected readonly file: BlockMappedFile,
    private readonly rules: SegmentRules<S>,
  ) {}

  /** Bytes of a block, the unit {@link blockSegments} maps. */
  protected abstract readonly blockSize: number;

  /** Segments for `take` bytes of block `block` starting `within` it (guest offset `position`). */
  protected abstract blockSegments(block: number, position: number, within: number, take: number): Promise<S[]>;

  get path(): string {
    return this.file.path;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    assertReadInBounds(this.size, offset, length);
    return readPlainSegments({ file: this.file, backing: this.backing }, this.segments(offset, length), offset, length, into);
  }

  async *extents(offset = 0, length = this.size - offset): AsyncIterable<Extent> {
    assertReadInBounds(this.size, offset, length);
    yield* segmentExtents(this.segments(offset, length), { backing: this.backing, classify: this.rules.classify });
  }

  async *placements(offset: number, length: number): AsyncIterable<Placement> {
    assertReadInBounds(this.size, offset, length);
    yield* plainPlacements({ file: this.file, backing: this.backing }, this.segments(offset, length));
  }

  /** Closes the file and the parent (owned); a second call does nothing. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.file.close();
    await this.backing?.close();
  }

  /** The guest range as segments, adjacent ones of the same source (and contiguous host bytes) merged. */
  private segments(offset: number, length: number): AsyncIterable<S> {
    return unitSegments(offset, length, { unitSize: this.blockSize, map: (block, position, within, take) => this.blockSegments(block, position, within, take), canMerge: this.rules.canMerge });
  }
}
