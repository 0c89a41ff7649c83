/**
 * Where a one-pass VMDK writer puts grains, grain tables, directories, descriptor and header,
 * for each single-file layout (both described in vmdk-writer.ts): monolithicSparse with
 * preallocated tables and raw grains, streamOptimized with compressed grains behind markers
 * and the directory and footer at the end. The writer cuts the disk into grains and tables
 * in order; a layout decides where each lands in the file.
 */
import { promisify } from 'node:util';
import { deflate } from 'node:zlib';
import { FileAppender, type VectoredOutput } from '../file-appender.js';
import { encodeSparseHeader, SECTOR, SPARSE_FLAGS, type SparseHeaderFields } from './sparse-header.js';
import { encodeGrainMarker, encodeMetadataMarker, GRAIN_MARKER_SIZE, MARKER_TYPES } from './stream-optimized.js';

const deflateAsync = promisify(deflate);

export const GRAIN_SECTORS = 128;
export const GRAIN_SIZE = GRAIN_SECTORS * SECTOR;
export const GTES_PER_GT = 512;
const GT_SECTORS = (GTES_PER_GT * 4) / SECTOR;
const GT_SPAN = GTES_PER_GT * GRAIN_SIZE;
const DESCRIPTOR_OFFSET = 1;
const DESCRIPTOR_SECTORS = 20;
/** Hosted sparse extents store sector numbers in 32 bits. */
const MAX_FILE_SECTORS = 0xffff_ffff;

/** What a layout needs of the file: positioned writes (errors already translated) and growth. */
export interface LayoutOutput {
  writeAt(data: Uint8Array, offset: number): Promise<void>;
  /** Extends the file (with a hole) to at least `length` bytes. */
  ensureLength(length: number): Promise<void>;
}

/** A grain handed to a layout: its bytes (`borrowed` until the writer's next `release`) and its number. */
export interface GrainToStore {
  data: Uint8Array;
  index: number;
}

/** What differs between the subformats: where grains and tables go, and the final metadata. */
export interface GrainLayout {
  /** Where the layout appends (grains, and for streamOptimized everything else): the writer releases it before returning a caller's buffer. */
  readonly out: FileAppender;
  /**
   * Stores grains that are not all zeros, in disk order; returns the sector each one's grain
   * table entry holds. Their bytes may be kept by reference until `out` is released.
   */
  storeGrains(grains: readonly GrainToStore[]): Promise<number[]>;
  /** Stores a complete grain table (`used`: some entry is non-zero). */
  storeTable(table: Buffer, index: number, used: boolean): Promise<void>;
  /** Writes the directories, descriptor and header; the file is complete after it. */
  finish(descriptor: string): Promise<void>;
}

/** Preallocated directories and tables (both copies), raw grains appended after them. */
export class MonolithicSparseLayout implements GrainLayout {
  private readonly capacity: number;
  private readonly tables: number;
  private readonly dirSectors: number;
  private readonly rgdOffset = DESCRIPTOR_OFFSET + DESCRIPTOR_SECTORS;
  private readonly gdOffset: number;
  private readonly overHead: number;
  readonly out: FileAppender;

  constructor(
    private readonly file: LayoutOutput & VectoredOutput,
    size: number,
  ) {
    this.capacity = capacityOf(size);
    this.tables = Math.ceil(this.capacity / (GT_SPAN / SECTOR));
    this.dirSectors = Math.ceil((this.tables * 4) / SECTOR);
    this.gdOffset = this.rgdOffset + this.dirSectors + this.tables * GT_SECTORS;
    this.overHead = roundUp(this.gdOffset + this.dirSectors + this.tables * GT_SECTORS, GRAIN_SECTORS);
    this.out = new FileAppender(file, this.overHead * SECTOR);
  }

  /** Raw grains, appended by reference: consecutive ones reach the file in one write. */
  async storeGrains(grains: readonly GrainToStore[]): Promise<number[]> {
    const sectors: number[] = [];
    for (const grain of grains) {
      const sector = this.out.end / SECTOR;
      if (sector + GRAIN_SECTORS > MAX_FILE_SECTORS) throw new Error('the VMDK file would exceed the 2 TiB its tables can address');
      await this.out.borrow(grain.data);
      sectors.push(sector);
    }
    return sectors;
  }

  async storeTable(table: Buffer, index: number, used: boolean): Promise<void> {
    if (!used) return; // the preallocated table is a hole: all entries 0
    await this.file.writeAt(table, this.tableSector(this.rgdOffset, index) * SECTOR);
    await this.file.writeAt(table, this.tableSector(this.gdOffset, index) * SECTOR);
  }

  async finish(descriptor: string): Promise<void> {
    await this.out.flush();
    await this.file.ensureLength(this.out.end);
    for (const dirOffset of [this.rgdOffset, this.gdOffset]) {
      const directory = Buffer.alloc(this.dirSectors * SECTOR);
      for (let i = 0; i < this.tables; i++) directory.writeUInt32LE(this.tableSector(dirOffset, i), i * 4);
      await this.file.writeAt(directory, dirOffset * SECTOR);
    }
    await this.file.writeAt(descriptorSectors(descriptor), DESCRIPTOR_OFFSET * SECTOR);
    await this.file.writeAt(
      encodeSparseHeader({
        ...commonHeader(this.capacity),
        version: 1,
        flags: SPARSE_FLAGS.newlineTest | SPARSE_FLAGS.redundantGt,
        rgdOffset: this.rgdOffset,
        gdOffset: this.gdOffset,
        overHead: this.overHead,
        compressed: false,
      }),
      0,
    );
  }

  /** Where a directory's table `index` lies: right after the directory, in order. */
  private tableSector(dirOffset: number, index: number): number {
    return dirOffset + this.dirSectors + index * GT_SECTORS;
  }
}

/** Compressed grains behind markers, each table after its grains, the directory and footer last. */
export class StreamOptimizedLayout implements GrainLayout {
  private static readonly OVERHEAD = GRAIN_SECTORS;
  private readonly capacity: number;
  private readonly directory: Buffer;
  readonly out: FileAppender;

  constructor(
    private readonly file: LayoutOutput & VectoredOutput,
    size: number,
  ) {
    this.capacity = capacityOf(size);
    const tables = Math.ceil(this.capacity / (GT_SPAN / SECTOR));
    this.directory = Buffer.alloc(roundUp(tables * 4, SECTOR));
    this.out = new FileAppender(file, StreamOptimizedLayout.OVERHEAD * SECTOR);
  }

  /** Grains compressed all at once (libuv's threads work on them together), then appended in order. */
  async storeGrains(grains: readonly GrainToStore[]): Promise<number[]> {
    const compressed = await Promise.all(grains.map((grain) => deflateAsync(grain.data)));
    const sectors: number[] = [];
    for (const [i, grain] of grains.entries()) {
      const data = compressed[i] as Buffer;
      const record = Buffer.alloc(roundUp(GRAIN_MARKER_SIZE + data.length, SECTOR));
      encodeGrainMarker({ lba: grain.index * GRAIN_SECTORS, size: data.length }).copy(record, 0);
      data.copy(record, GRAIN_MARKER_SIZE);
      sectors.push(await this.append(record));
    }
    return sectors;
  }

  async storeTable(table: Buffer, index: number, used: boolean): Promise<void> {
    if (!used) return; // directory entry stays 0: every grain of the table is unallocated
    await this.append(encodeMetadataMarker(GT_SECTORS, MARKER_TYPES.grainTable));
    this.directory.writeUInt32LE(await this.append(table), index * 4);
  }

  async finish(descriptor: string): Promise<void> {
    const header: SparseHeaderFields = {
      ...commonHeader(this.capacity),
      version: 3,
      flags: SPARSE_FLAGS.newlineTest | SPARSE_FLAGS.compressed | SPARSE_FLAGS.markers,
      rgdOffset: 0,
      gdOffset: 'footer',
      overHead: StreamOptimizedLayout.OVERHEAD,
      compressed: true,
    };
    await this.append(encodeMetadataMarker(this.directory.length / SECTOR, MARKER_TYPES.grainDirectory));
    const gdOffset = await this.append(this.directory);
    await this.append(encodeMetadataMarker(1, MARKER_TYPES.footer));
    await this.append(encodeSparseHeader({ ...header, gdOffset }));
    await this.append(encodeMetadataMarker(0, MARKER_TYPES.endOfStream));
    await this.out.flush();
    await this.file.writeAt(descriptorSectors(descriptor), DESCRIPTOR_OFFSET * SECTOR);
    await this.file.writeAt(encodeSparseHeader(header), 0);
  }

  /** Writes `record` (whole sectors) at the end of the stream; returns its first sector. */
  private async append(record: Buffer): Promise<number> {
    const sector = this.out.end / SECTOR;
    if (sector + record.length / SECTOR > MAX_FILE_SECTORS) throw new Error('the VMDK file would exceed the 2 TiB its tables can address');
    await this.out.take(record);
    return sector;
  }
}

function commonHeader(capacity: number): Pick<SparseHeaderFields, 'capacity' | 'grainSize' | 'descriptorOffset' | 'descriptorSize' | 'gtesPerGt'> {
  return { capacity, grainSize: GRAIN_SECTORS, descriptorOffset: DESCRIPTOR_OFFSET, descriptorSize: DESCRIPTOR_SECTORS, gtesPerGt: GTES_PER_GT };
}

/** Sectors of the disk: the size rounded up to whole sectors. */
export function capacityOf(size: number): number {
  return Math.max(1, Math.ceil(size / SECTOR));
}

/** The descriptor padded with zeros to its reserved sectors. */
function descriptorSectors(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > DESCRIPTOR_SECTORS * SECTOR) throw new Error('the VMDK descriptor does not fit its sectors');
  const out = Buffer.alloc(DESCRIPTOR_SECTORS * SECTOR);
  bytes.copy(out);
  return out;
}

function roundUp(value: number, unit: number): number {
  return Math.ceil(value / unit) * unit;
}
