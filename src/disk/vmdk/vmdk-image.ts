import { assertReadInBounds, type Extent, type Placement } from '../../blockdev/index.js';
import { fillZeros } from '../../native/index.js';
import { backingPlacements, readFromBacking } from '../backing.js';
import type { BackingOpener, DiskImage } from '../disk-image.js';
import type { ImageFile } from '../image-file.js';
import { fillSegments, segmentExtents, mergeSegments, type SegmentKind } from '../segments.js';
import { MAX_DESCRIPTOR_BYTES, parseDescriptor, type VmdkDescriptor } from './descriptor.js';
import { closePieces, openDescriptorLayout, type Piece } from './layout.js';
import { isCowdHeader } from './cowd-extent.js';
import { SECTOR, SPARSE_HEADER_SIZE, isSparseHeader } from './sparse-header.js';
import { SparseExtent } from './sparse-extent.js';

/** Where a run of guest bytes comes from. */
type Segment =
  | { offset: number; length: number; source: 'data'; file: ImageFile; host: number }
  | { offset: number; length: number; source: 'zero' }
  | { offset: number; length: number; source: 'parent' }
  | { offset: number; length: number; source: 'compressed'; extent: SparseExtent; host: number; grain: number; within: number };

/**
 * Opens a VMDK image: a monolithic sparse or stream-optimized file (its descriptor
 * embedded), or a descriptor file naming flat, sparse or zero extents in its folder
 * (monolithicFlat, twoGbMaxExtentFlat/Sparse, ESXi's vmfs); a delta disk's parent is opened
 * through `openBacking` from its `parentFileNameHint`. Takes ownership of `file`.
 * Throws `E_IMAGE_INVALID` naming the file for damaged or hostile images and
 * `E_UNSUPPORTED_FORMAT` for layouts Coffer does not read (vsanSparse, raw device
 * mappings, a COWD extent given without its descriptor).
 */
export async function openVmdk(file: ImageFile, openBacking: BackingOpener): Promise<DiskImage> {
  let pieces: Piece[] = [];
  let parent: DiskImage | null = null;
  try {
    const head = await file.readAt(0, Math.min(file.size, SPARSE_HEADER_SIZE));
    let descriptor: VmdkDescriptor | null;
    if (isCowdHeader(head)) {
      // Only its descriptor says which disk it is a delta of: read alone, the parent's bytes would be zeros.
      throw file.unsupported('an ESX sparse (COWD) extent given alone: give the descriptor file (the .vmdk that names it as a VMFSSPARSE extent), which also names its parent');
    }
    if (isSparseHeader(head)) {
      const extent = await SparseExtent.open(file, 0);
      pieces = [{ start: 0, length: extent.bytes, kind: 'sparse', extent }];
      descriptor = await readEmbeddedDescriptor(extent);
    } else {
      if (file.size > MAX_DESCRIPTOR_BYTES) throw file.invalid(`not a VMDK sparse extent, and at ${file.size} bytes too large for a VMDK descriptor`);
      descriptor = parseDescriptor((await file.readAt(0, file.size)).toString('utf8'), file);
      pieces = await openDescriptorLayout(file, descriptor);
    }
    parent = await openParent(file, descriptor, openBacking);
    return new VmdkImage(file, { pieces, parent, descriptor });
  } catch (error) {
    await closePieces(pieces);
    await parent?.close();
    await file.close();
    throw error;
  }
}

/** The descriptor a sparse extent embeds (null when it has none); its extent line (the file itself) is not used. */
async function readEmbeddedDescriptor(extent: SparseExtent): Promise<VmdkDescriptor | null> {
  const { descriptorOffset, descriptorSize } = extent.header;
  if (descriptorOffset === 0) return null;
  const start = descriptorOffset * SECTOR;
  const size = descriptorSize * SECTOR;
  if (start + size > extent.file.size) throw extent.file.invalid(`the embedded descriptor (bytes ${start}..${start + size}) lies past the end of the file`, start);
  const bytes = await extent.file.readAt(start, size);
  const end = bytes.indexOf(0);
  return parseDescriptor(bytes.subarray(0, end < 0 ? bytes.length : end).toString('utf8'), extent.file, { embedded: true });
}

/**
 * The parent a delta disk names, checked as QEMU checks it: its CID must be the delta's
 * parentCID (otherwise the parent changed after the delta was taken, and reading through it
 * would mix two states of the disk).
 */
async function openParent(file: ImageFile, descriptor: VmdkDescriptor | null, openBacking: BackingOpener): Promise<DiskImage | null> {
  if (descriptor === null) return null;
  const hint = descriptor.parentFileNameHint;
  if (hint === null) {
    if (descriptor.parentCid !== null) throw file.invalid(`the descriptor has parentCID ${hex(descriptor.parentCid)} but no parentFileNameHint to find the parent by`);
    return null;
  }
  const parent = await openBacking(hint, file.path, 'vmdk');
  if (parent instanceof VmdkImage && parent.cid !== null && parent.cid !== descriptor.parentCid) {
    await parent.close();
    throw file.invalid(`its parent ${parent.path} has CID ${hex(parent.cid)}, not the parentCID ${descriptor.parentCid === null ? 'ffffffff' : hex(descriptor.parentCid)} it was made from`);
  }
  return parent;
}

function hex(cid: number): string {
  return cid.toString(16).padStart(8, '0');
}

/**
 * A VMDK disk as a block device: guest ranges map through the extents to flat file ranges,
 * grains of sparse extents (plain or compressed), zeros, or the parent. Consecutive ranges
 * stored one after the other in one file are read with one file read.
 */
export class VmdkImage implements DiskImage {
  readonly format = 'vmdk' as const;
  readonly size: number;
  /** The disk's content id (CID), null when its descriptor has none. */
  readonly cid: number | null;
  /** The layout (`createType`), `monolithicSparse` for a sparse file without a descriptor. */
  readonly createType: string;

  readonly backing: DiskImage | null;
  private readonly pieces: readonly Piece[];
  private closed = false;

  /** Takes ownership of `file`, the pieces' files and the parent; see {@link openVmdk}. */
  constructor(
    private readonly file: ImageFile,
    parts: { pieces: readonly Piece[]; parent: DiskImage | null; descriptor: VmdkDescriptor | null },
  ) {
    const { pieces, descriptor } = parts;
    this.pieces = pieces;
    this.backing = parts.parent;
    const last = pieces[pieces.length - 1];
    this.size = last === undefined ? 0 : last.start + last.length;
    this.cid = descriptor?.cid ?? null;
    const first = pieces[0];
    const compressed = pieces.length === 1 && first?.kind === 'sparse' && first.extent.header.compressed;
    this.createType = descriptor?.createType ?? (compressed ? 'streamOptimized' : 'monolithicSparse');
  }

  get path(): string {
    return this.file.path;
  }

  /** What `coffer disk info` shows: the layout, the content id, and the extents by kind. */
  get details(): Record<string, string | number | boolean> {
    const count = (kind: Piece['kind']) => this.pieces.filter((piece) => piece.kind === kind).length;
    return {
      createType: this.createType,
      ...(this.cid === null ? {} : { cid: this.cid.toString(16).padStart(8, '0') }),
      flatExtents: count('flat'),
      sparseExtents: count('sparse'),
      ...(count('sesparse') > 0 ? { seSparseExtents: count('sesparse') } : {}),
      ...(count('cowd') > 0 ? { cowdExtents: count('cowd') } : {}),
      zeroExtents: count('zero'),
      files: this.files.length,
    };
  }

  /** The descriptor's file (or the monolithic file), then each extent file once, in order. */
  get files(): readonly string[] {
    const paths = [this.file.path];
    for (const piece of this.pieces) {
      const path = piece.kind === 'flat' ? piece.file.path : piece.kind === 'zero' ? undefined : piece.extent.file.path;
      if (path !== undefined && !paths.includes(path)) paths.push(path);
    }
    return paths;
  }

  /**
   * Fills segments as they are mapped, several at once (so compressed grains inflate in
   * parallel on the thread pool; see segments.ts).
   */
  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    assertReadInBounds(this.size, offset, length);
    const target = into === undefined ? new Uint8Array(length) : into.subarray(0, length);
    await fillSegments(target, offset, this.segments(offset, length), (segment, slice) => this.fill(segment, slice));
    return target;
  }

  async *extents(offset = 0, length = this.size - offset): AsyncIterable<Extent> {
    assertReadInBounds(this.size, offset, length);
    yield* segmentExtents(this.segments(offset, length), { backing: this.backing, classify });
  }

  /** Grain and flat data where they lie in their files, zeros, the parent's placements; compressed grains must be read. */
  async *placements(offset: number, length: number): AsyncIterable<Placement> {
    assertReadInBounds(this.size, offset, length);
    for await (const segment of this.segments(offset, length)) {
      const range = { offset: segment.offset, length: segment.length };
      if (segment.source === 'zero') yield { ...range, kind: 'zero' };
      else if (segment.source === 'compressed') yield { ...range, kind: 'read' };
      else if (segment.source === 'data') yield { ...range, ...segment.file.placeAt(segment.host, segment.length) };
      else yield* backingPlacements(this.backing, segment.offset, segment.length);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await closePieces(this.pieces);
      await this.file.close();
    } finally {
      await this.backing?.close();
    }
  }

  private async fill(segment: Segment, slice: Uint8Array): Promise<void> {
    switch (segment.source) {
      case 'zero':
        fillZeros(slice);
        break;
      case 'data':
        await segment.file.readAt(segment.host, segment.length, slice);
        break;
      case 'parent':
        await this.readParent(segment.offset, slice);
        break;
      case 'compressed': {
        const grain = await segment.extent.inflatedGrain(segment.host, segment.grain);
        slice.set(grain.subarray(segment.within, segment.within + segment.length));
        break;
      }
    }
  }

  private readParent(offset: number, slice: Uint8Array): Promise<void> {
    return readFromBacking(this.backing, offset, slice);
  }

  /** The guest range as segments; adjacent ones of the same source (and contiguous file data) merged. */
  private segments(offset: number, length: number): AsyncIterable<Segment> {
    return mergeSegments(this.pieceSegments(offset, offset + length), canMerge);
  }

  private async *pieceSegments(from: number, to: number): AsyncIterable<Segment> {
    for (let index = this.pieceAt(from); index < this.pieces.length; index++) {
      const piece = this.pieces[index] as Piece;
      if (piece.start >= to) break;
      const start = Math.max(from, piece.start);
      const end = Math.min(to, piece.start + piece.length);
      if (piece.kind === 'zero') {
        yield { offset: start, length: end - start, source: 'zero' };
      } else if (piece.kind === 'flat') {
        // A thin flat extent's holes are zeros of this layer: mapped as such, never read.
        const host = piece.base + (start - piece.start);
        for await (const run of piece.file.dataRuns(host, end - start)) {
          const at = start + (run.at - host);
          yield run.data ? { offset: at, length: run.length, source: 'data', file: piece.file, host: run.at } : { offset: at, length: run.length, source: 'zero' };
        }
      } else {
        const file = piece.extent.file;
        for await (const run of piece.extent.runs(start - piece.start, end - piece.start)) {
          const at = piece.start + run.offset;
          switch (run.kind) {
            case 'unallocated':
              yield { offset: at, length: run.length, source: 'parent' };
              break;
            case 'zero':
              yield { offset: at, length: run.length, source: 'zero' };
              break;
            case 'data':
              yield { offset: at, length: run.length, source: 'data', file, host: run.host };
              break;
            case 'compressed':
              // Only hosted sparse extents compress (seSparse never does).
              yield { offset: at, length: run.length, source: 'compressed', extent: piece.extent as SparseExtent, host: run.host, grain: run.grain, within: run.within };
              break;
          }
        }
      }
    }
  }

  /** The index of the piece holding byte `offset` (binary search; pieces are in order). */
  private pieceAt(offset: number): number {
    let low = 0;
    let high = this.pieces.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if ((this.pieces[middle] as Piece).start <= offset) low = middle;
      else high = middle - 1;
    }
    return low;
  }
}

function classify(segment: Segment): SegmentKind {
  if (segment.source === 'data' || segment.source === 'compressed') return { kind: 'data', layer: 0 };
  return segment.source === 'zero' ? { kind: 'zero', layer: 0 } : 'backing';
}

function canMerge(a: Segment, b: Segment): boolean {
  if (a.source !== b.source) return false;
  if (a.source === 'data' && b.source === 'data') return a.file === b.file && a.host + a.length === b.host;
  return a.source === 'zero' || a.source === 'parent';
}
