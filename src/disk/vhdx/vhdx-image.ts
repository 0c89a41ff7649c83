/**
 * Opens VHDX images (MS-VHDX v1.0): fixed, dynamic and differencing disks. The layouts are
 * documented beside their parsers: vhdx-header.ts (identifier and headers), vhdx-region-table.ts,
 * vhdx-metadata.ts, vhdx-bat.ts. Everything read at open is checked before use: header and
 * region table checksums (a damaged copy falls back to the other), regions inside the file and
 * past the first MiB, metadata values in the format's bounds, and every BAT entry inside the
 * file. A header whose log GUID is set (the file was not closed cleanly) has its log replayed in
 * memory (vhdx-log.ts, vhdx-replayed-file.ts) before anything past the headers is read: Coffer
 * never writes to a source.
 */
import { BlockMappedImage } from '../block-mapped-image.js';
import type { BackingOpener, DiskImage } from '../disk-image.js';
import type { ImageFile } from '../image-file.js';
import type { SegmentKind } from '../segments.js';
import {
  batGeometry,
  BAT_ENTRY_SIZE,
  parseVhdxBat,
  PAYLOAD_BLOCK_FULLY_PRESENT,
  PAYLOAD_BLOCK_NOT_PRESENT,
  PAYLOAD_BLOCK_PARTIALLY_PRESENT,
  sectorRuns,
  type VhdxBat,
} from './vhdx-bat.js';
import { chooseVhdxHeader, hasVhdxSignature, logNeedsReplay, VHDX_HEADER_OFFSETS, VHDX_HEADER_SECTION_SIZE, VHDX_HEADER_SIZE, type VhdxHeader } from './vhdx-header.js';
import { parseVhdxMetadata, parseVhdxMetadataTable, VHDX_METADATA_TABLE_SIZE, type VhdxMetadata } from './vhdx-metadata.js';
import { readVhdxLog } from './vhdx-log.js';
import { openVhdxParent } from './vhdx-parent.js';
import { ReplayedFile, type VhdxSource } from './vhdx-replayed-file.js';
import { parseVhdxRegionTable, VHDX_REGION_TABLE_OFFSETS, VHDX_REGION_TABLE_SIZE, type VhdxRegions } from './vhdx-region-table.js';

/** Sector bitmaps of partially present blocks kept in memory (each a block's slice of a bitmap block). */
const CACHED_BITMAPS = 64;
/** The largest log replayed (read whole into memory at open); qemu-img and Hyper-V use 1 MiB. */
const MAX_LOG_LENGTH = 256 * 1024 * 1024;

/** Where a run of guest bytes comes from. */
type Segment =
  | { offset: number; length: number; source: 'data'; host: number }
  | { offset: number; length: number; source: 'zero'; layered: boolean }
  | { offset: number; length: number; source: 'parent' };

/**
 * Opens a VHDX image, with the parent chain of a differencing disk (opened through
 * `openBacking`). Takes ownership of `file`: the image's `close()` closes it and the parent.
 * Throws `E_IMAGE_INVALID` naming the image for anything the image contradicts itself on,
 * `E_UNSUPPORTED_FORMAT` for an unknown version, required region or metadata item, or a log
 * over 256 MiB, `E_SOURCE_UNREADABLE` when the parent cannot be found.
 */
export async function openVhdx(file: ImageFile, openBacking: BackingOpener): Promise<DiskImage> {
  if (file.size < VHDX_HEADER_SECTION_SIZE) throw file.invalid(`a VHDX has at least ${VHDX_HEADER_SECTION_SIZE} bytes, this file has ${file.size}`);
  if (!hasVhdxSignature(await file.readAt(0, 8))) throw file.invalid('VHDX file type identifier lacks its "vhdxfile" signature');
  const header = chooseVhdxHeader(
    [await file.readAt(VHDX_HEADER_OFFSETS[0], VHDX_HEADER_SIZE), await file.readAt(VHDX_HEADER_OFFSETS[1], VHDX_HEADER_SIZE)],
    file,
  );
  const source: VhdxSource = logNeedsReplay(header) ? await replayLog(file, header) : file;
  const regions = await readRegions(source);
  const metadata = await readMetadata(source, regions);
  const { entries } = batGeometry(metadata);
  if (entries * BAT_ENTRY_SIZE > regions.bat.length) {
    throw source.invalid(`VHDX BAT region holds ${regions.bat.length / BAT_ENTRY_SIZE} entries, the virtual size needs ${entries}`);
  }
  const bat = parseVhdxBat(await source.readAt(regions.bat.fileOffset, entries * BAT_ENTRY_SIZE), { layout: metadata, image: source });
  const parent =
    metadata.parentLocator === null
      ? null
      : await openVhdxParent(source, { locator: metadata.parentLocator, openBacking, dataWriteGuidOf: (p) => (p instanceof VhdxImage ? p.header.dataWriteGuid : null) });
  return new VhdxImage(source, { header, metadata, bat, parent });
}

/**
 * The file as it reads once the header's log is replayed (in memory; the file is never
 * written). A log without a valid sequence for the header's log GUID has nothing to replay.
 * The log must lie inside the file past the first MiB, and the file must be as long as the
 * log's flushed file offset says (else it was truncated after the log was written).
 */
async function replayLog(file: ImageFile, header: VhdxHeader): Promise<VhdxSource> {
  const { logOffset, logLength } = header;
  if (logLength === 0 || logOffset < VHDX_HEADER_SECTION_SIZE || logOffset + logLength > file.size) {
    throw file.invalid(`VHDX log (${logLength} bytes at ${logOffset}) lies outside the file (${file.size} bytes) or over the headers`);
  }
  if (logLength > MAX_LOG_LENGTH) throw file.unsupported(`a VHDX log of ${logLength} bytes (more than ${MAX_LOG_LENGTH})`);
  const replay = readVhdxLog(await file.readAt(logOffset, logLength), { logGuid: header.logGuid, image: file });
  if (replay === null) return file;
  if (replay.flushedFileOffset > file.size) {
    throw file.invalid(`VHDX log needs a file of at least ${replay.flushedFileOffset} bytes but it has ${file.size}: the file was truncated`);
  }
  for (const w of replay.writes) {
    if (w.fileOffset < VHDX_HEADER_SECTION_SIZE || (w.fileOffset < logOffset + logLength && logOffset < w.fileOffset + ('data' in w ? w.data.length : w.zeroLength))) {
      throw file.invalid(`VHDX log writes at ${w.fileOffset}, over the headers or the log itself`);
    }
  }
  return new ReplayedFile(file, replay);
}

/** The first region table copy that is whole (checksum), parsed and checked. */
async function readRegions(file: VhdxSource): Promise<VhdxRegions> {
  const reasons: string[] = [];
  for (const at of VHDX_REGION_TABLE_OFFSETS) {
    const parsed = parseVhdxRegionTable(await file.readAt(at, VHDX_REGION_TABLE_SIZE), { fileSize: file.size, image: file });
    if (typeof parsed !== 'string') return parsed;
    reasons.push(parsed);
  }
  throw file.invalid(`both VHDX region tables are damaged: table 1: ${reasons[0]}; table 2: ${reasons[1]}`);
}

async function readMetadata(file: VhdxSource, regions: VhdxRegions): Promise<VhdxMetadata> {
  const { fileOffset, length } = regions.metadata;
  if (length < VHDX_METADATA_TABLE_SIZE) throw file.invalid(`VHDX metadata region is ${length} bytes, smaller than its table`);
  const table = parseVhdxMetadataTable(await file.readAt(fileOffset, VHDX_METADATA_TABLE_SIZE), { regionLength: length, image: file });
  const items = new Map<string, Uint8Array>();
  for (const [id, ref] of table) items.set(id, await file.readAt(fileOffset + ref.offset, ref.length));
  return parseVhdxMetadata(items, file);
}

/**
 * A VHDX as a block device. Guest offsets map through the BAT (decoded in memory) to blocks:
 * fully present blocks are read from the file (consecutive blocks stored one after the other
 * in one read), partially present ones sector by sector per their sector bitmap, absent ones
 * read as zeros or, on a differencing disk, from the parent. Concurrent reads are allowed.
 */
class VhdxImage extends BlockMappedImage<Segment> implements DiskImage {
  readonly format = 'vhdx' as const;
  readonly size: number;
  readonly header: VhdxHeader;
  readonly metadata: VhdxMetadata;
  readonly backing: DiskImage | null;
  private readonly bat: VhdxBat;
  protected readonly blockSize: number;
  private readonly sectorSize: number;
  private readonly bitmaps = new Map<number, Promise<Uint8Array>>();

  constructor(
    file: VhdxSource,
    parts: { header: VhdxHeader; metadata: VhdxMetadata; bat: VhdxBat; parent: DiskImage | null },
  ) {
    super(file, { classify, canMerge });
    this.header = parts.header;
    this.metadata = parts.metadata;
    this.bat = parts.bat;
    this.backing = parts.parent;
    this.size = parts.metadata.virtualSize;
    this.blockSize = parts.metadata.blockSize;
    this.sectorSize = parts.metadata.logicalSectorSize;
  }

  get details(): Record<string, string | number | boolean> {
    const m = this.metadata;
    let present = 0;
    for (const state of this.bat.states) if (state === PAYLOAD_BLOCK_FULLY_PRESENT || state === PAYLOAD_BLOCK_PARTIALLY_PRESENT) present++;
    return {
      blockSize: m.blockSize,
      logicalSectorSize: m.logicalSectorSize,
      logReplayed: this.file instanceof ReplayedFile,
      physicalSectorSize: m.physicalSectorSize,
      differencing: m.hasParent,
      leaveBlocksAllocated: m.leaveBlocksAllocated,
      presentBlocks: present,
      dataWriteGuid: this.header.dataWriteGuid,
      ...(m.page83Data === null ? {} : { page83Data: m.page83Data }),
    };
  }

  /** Segments for `take` bytes of block `block` starting `within` it (guest offset `position`). */
  protected async blockSegments(block: number, position: number, within: number, take: number): Promise<Segment[]> {
    const state = this.bat.states[block] as number;
    const host = (this.bat.offsets[block] as number) + within;
    if (state === PAYLOAD_BLOCK_FULLY_PRESENT) return [{ offset: position, length: take, source: 'data', host }];
    if (state === PAYLOAD_BLOCK_NOT_PRESENT) {
      return [this.backing === null ? { offset: position, length: take, source: 'zero', layered: false } : { offset: position, length: take, source: 'parent' }];
    }
    if (state !== PAYLOAD_BLOCK_PARTIALLY_PRESENT) {
      // UNDEFINED, ZERO, UNMAPPED: zeros, which on a differencing disk hide the parent.
      return [{ offset: position, length: take, source: 'zero', layered: this.backing !== null }];
    }
    const bitmap = await this.bitmap(block);
    const firstSector = Math.floor(within / this.sectorSize);
    const lastSector = Math.floor((within + take - 1) / this.sectorSize);
    return sectorRuns(bitmap, firstSector, lastSector - firstSector + 1).map((run): Segment => {
      const from = Math.max(within, run.first * this.sectorSize);
      const to = Math.min(within + take, (run.first + run.count) * this.sectorSize);
      const guest = position + (from - within);
      return run.present
        ? { offset: guest, length: to - from, source: 'data', host: (this.bat.offsets[block] as number) + from }
        : { offset: guest, length: to - from, source: 'parent' };
    });
  }

  /** The part of its chunk's sector bitmap block that covers `block`, from the cache or the file. */
  private bitmap(block: number): Promise<Uint8Array> {
    let bitmap = this.bitmaps.get(block);
    if (bitmap === undefined) {
      const bytes = this.blockSize / this.sectorSize / 8;
      const chunk = Math.floor(block / this.bat.chunkRatio);
      const at = (this.bat.bitmapOffsets[chunk] as number) + (block % this.bat.chunkRatio) * bytes;
      bitmap = this.file.readAt(at, bytes);
      const fetched = bitmap;
      fetched.catch(() => {
        if (this.bitmaps.get(block) === fetched) this.bitmaps.delete(block);
      });
      while (this.bitmaps.size >= CACHED_BITMAPS) this.bitmaps.delete(this.bitmaps.keys().next().value as number);
    } else {
      this.bitmaps.delete(block); // re-inserted below: the most recently used is last
    }
    this.bitmaps.set(block, bitmap);
    return bitmap;
  }
}

/** Zeros a differencing disk states (hiding its parent) are this layer's; those of a disk without one have no layer. */
function classify(segment: Segment): SegmentKind {
  if (segment.source === 'data') return { kind: 'data', layer: 0 };
  if (segment.source === 'zero') return segment.layered ? { kind: 'zero', layer: 0 } : { kind: 'zero' };
  return 'backing';
}

function canMerge(a: Segment, b: Segment): boolean {
  if (a.source !== b.source) return false;
  if (a.source === 'data' && b.source === 'data') return a.host + a.length === b.host;
  if (a.source === 'zero' && b.source === 'zero') return a.layered === b.layered;
  return true;
}
