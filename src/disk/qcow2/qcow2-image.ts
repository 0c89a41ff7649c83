import type { Decompressor } from 'zstd-napi';
import { assertReadInBounds, type Extent, type Placement } from '../../blockdev/index.js';
import { CofferError } from '../../errors/index.js';
import { fillZeros } from '../../native/index.js';
import { backingPlacements, readFromBacking } from '../backing.js';
import { DISK_FORMATS, type BackingOpener, type DiskFormat, type DiskImage, type InternalSnapshot, type OpenImageOptions } from '../disk-image.js';
import type { ImageFile } from '../image-file.js';
import { fillSegments, segmentExtents, unitSegments, type SegmentKind } from '../segments.js';
import { ClusterDecompressor, type DecompressPiece } from './cluster-decompressor.js';
import { decompressCluster } from './compressed-cluster.js';
import { readQcow2Header, type Qcow2Header } from './qcow2-header.js';
import { decodeL2Entry, decodeStandardL2Entry, l2TableOffset, type ClusterMapping } from './qcow2-l2.js';
import { readQcow2Bitmaps, type Qcow2Bitmap } from './qcow2-bitmaps.js';
import { readQcow2Snapshots } from './qcow2-snapshots.js';

/** L2 tables kept in memory: 32 × (cluster size) — 2 MiB at 64 KiB clusters. */
const CACHED_L2_TABLES = 32;
/** Decompressed clusters kept for reads that touch one cluster several times. */
const CACHED_CLUSTERS = 8;

/**
 * Compressed clusters in one read from which they are decoded on worker threads together;
 * fewer go through the cache and libuv's pool (a small read touching one cluster again and
 * again is served from the cache).
 */
const MIN_BATCH = 4;
/** Compressed clusters whose stored bytes are at most this far apart are read together… */
const RUN_GAP = 64 * 1024;
/** …in reads of at most this many bytes. */
const MAX_RUN = 16 * 1024 * 1024;

/** Where a run of guest bytes comes from. */
type Segment =
  | { offset: number; length: number; source: 'data'; host: number }
  | { offset: number; length: number; source: 'zero' }
  | { offset: number; length: number; source: 'backing' }
  | { offset: number; length: number; source: 'compressed'; host: number; stored: number; within: number };

type CompressedSegment = Extract<Segment, { source: 'compressed' }>;

/**
 * Opens a qcow2 image (versions 2 and 3) with its backing chain, at its current state or at
 * one of its internal snapshots. Takes ownership of `file`.
 */
export async function openQcow2(file: ImageFile, openBacking: BackingOpener, options: OpenImageOptions = {}): Promise<DiskImage> {
  const header = await readQcow2Header(file);
  const snapshots = await readQcow2Snapshots(file, header.snapshotsOffset, header.snapshotCount);
  let view = { l1TableOffset: header.l1TableOffset, l1Size: header.l1Size, size: header.size };
  let snapshotRead: InternalSnapshot | undefined;
  if (options.snapshot !== undefined) {
    const chosen = snapshots.find((s) => s.name === options.snapshot) ?? snapshots.find((s) => s.id === options.snapshot);
    if (chosen === undefined) {
      throw new CofferError('E_USAGE', `${file.path} has no internal snapshot ${JSON.stringify(options.snapshot)} (it has: ${snapshots.map((s) => s.name).join(', ') || 'none'})`, {
        subject: { path: file.path },
      });
    }
    view = { l1TableOffset: chosen.l1TableOffset, l1Size: chosen.l1Size, size: chosen.diskSize ?? header.size };
    snapshotRead = { id: chosen.id, name: chosen.name, date: chosen.date, size: chosen.diskSize };
    const l2Entries = header.clusterSize / (header.extendedL2 ? 16 : 8);
    if (view.l1Size < Math.ceil(view.size / (header.clusterSize * l2Entries)) || view.l1Size * 8 > 32 * 1024 * 1024) {
      throw file.invalid(`the L1 table of snapshot ${chosen.name} does not cover its disk`);
    }
    if (view.l1Size > 0 && view.l1TableOffset % header.clusterSize !== 0) throw file.invalid(`the L1 table of snapshot ${chosen.name} is misaligned`);
  }
  const l1 = await file.readAt(view.l1TableOffset, view.l1Size * 8);
  const backing = header.backingFile === null ? null : await openBacking(header.backingFile, file.path, backingFormatOf(file, header.backingFormat));
  const internalSnapshots = snapshots.map((s) => ({ id: s.id, name: s.name, date: s.date, size: s.diskSize }));
  const bitmaps = await readQcow2Bitmaps(file, header.bitmapDirectory, header.bitmapCount);
  return new Qcow2Image(file, { ...header, size: view.size }, l1, backing, internalSnapshots, bitmaps, snapshotRead);
}

/**
 * The format a qcow2 records for its backing file (the backing format header extension,
 * `qemu-img create -F`), which is then not probed: a raw backing file whose guest wrote an
 * image header at its start stays raw, as QEMU reads it. None recorded: probed, as QEMU did
 * for images made before the extension. A format Coffer does not read is
 * `E_UNSUPPORTED_FORMAT`.
 */
function backingFormatOf(file: ImageFile, recorded: string | null): DiskFormat | undefined {
  if (recorded === null) return undefined;
  const known = DISK_FORMATS.find((format) => format === recorded);
  if (known === undefined) throw file.unsupported(`a backing file in the ${JSON.stringify(recorded)} format`);
  return known;
}

/**
 * A qcow2 image as a block device: guest ranges are mapped through the L1 and L2 tables to
 * host data, zeros, compressed clusters or the backing image; consecutive clusters stored
 * one after the other are read with one file read.
 */
class Qcow2Image implements DiskImage {
  readonly format = 'qcow2' as const;
  readonly size: number;
  private readonly clusterSize: number;
  private readonly l2Entries: number;
  private readonly entryBytes: number;
  private readonly l2Cache = new Map<number, Promise<Buffer | null>>();
  /** The tables of {@link l2Cache} that have been read, for mapping without waiting. */
  private readonly l2Loaded = new Map<number, Buffer | null>();
  private readonly clusterCache = new Map<number, Buffer>();
  /** zstd's decoder for small reads, loaded with the first compressed cluster read here (most images have none). */
  private zstd: Promise<Decompressor> | undefined;
  private readonly decompressor = new ClusterDecompressor();
  private closed = false;

  constructor(
    private readonly file: ImageFile,
    readonly header: Qcow2Header,
    private readonly l1: Buffer,
    readonly backing: DiskImage | null,
    readonly internalSnapshots: readonly InternalSnapshot[],
    private readonly bitmaps: readonly Qcow2Bitmap[],
    readonly snapshotRead?: InternalSnapshot,
  ) {
    this.size = header.size;
    this.clusterSize = header.clusterSize;
    this.entryBytes = header.extendedL2 ? 16 : 8;
    this.l2Entries = this.clusterSize / this.entryBytes;
  }

  get path(): string {
    return this.file.path;
  }

  get details(): Record<string, string | number | boolean> {
    const h = this.header;
    return {
      version: h.version,
      clusterSize: h.clusterSize,
      compression: h.compression,
      extendedL2: h.extendedL2,
      dirty: h.dirty,
      internalSnapshots: h.snapshotCount,
      persistentBitmaps: this.bitmaps
        .map((b) => `${b.name} (${b.granularity / 1024} KiB${b.auto ? ', tracking' : ''}${b.inUse ? ', in use' : ''})`)
        .join('; '),
      ...(h.backingFormat === null ? {} : { backingFormat: h.backingFormat }),
    };
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    assertReadInBounds(this.size, offset, length);
    const target = into === undefined ? new Uint8Array(length) : into.subarray(0, length);
    const compressed: CompressedSegment[] = [];
    await fillSegments(target, offset, this.segments(offset, length), async (segment, slice) => {
      switch (segment.source) {
        case 'zero':
          fillZeros(slice);
          break;
        case 'data':
          await this.readHost(segment.host, slice);
          break;
        case 'backing':
          await this.readBacking(segment.offset, slice);
          break;
        case 'compressed': {
          // Decoded together after the walk, unless it is cached.
          const cluster = this.clusterCache.get(segment.host);
          if (cluster === undefined) compressed.push(segment);
          else slice.set(cluster.subarray(segment.within, segment.within + segment.length));
          break;
        }
      }
    });
    if (compressed.length >= MIN_BATCH) await this.decompressBatch(compressed, target, offset);
    else {
      for (const segment of compressed) {
        const cluster = await this.compressedCluster(segment.host, segment.stored);
        target.set(cluster.subarray(segment.within, segment.within + segment.length), segment.offset - offset);
      }
    }
    return target;
  }

  async *extents(offset = 0, length = this.size - offset): AsyncIterable<Extent> {
    assertReadInBounds(this.size, offset, length);
    yield* segmentExtents(this.segments(offset, length), { backing: this.backing, classify });
  }

  /** Host data where it lies in the file, zeros, the backing image's placements; compressed clusters must be read. */
  async *placements(offset: number, length: number): AsyncIterable<Placement> {
    assertReadInBounds(this.size, offset, length);
    for await (const segment of this.segments(offset, length)) {
      const range = { offset: segment.offset, length: segment.length };
      switch (segment.source) {
        case 'zero':
          yield { ...range, kind: 'zero' };
          break;
        case 'compressed':
          yield { ...range, kind: 'read' };
          break;
        case 'backing':
          yield* backingPlacements(this.backing, segment.offset, segment.length);
          break;
        case 'data': {
          // As readHost: the part of the last cluster past the end of the file reads as zeros.
          const available = Math.max(0, Math.min(segment.length, this.file.size - segment.host));
          if (available > 0) yield { offset: segment.offset, length: available, ...this.file.placeAt(segment.host, available) };
          if (available < segment.length) yield { offset: segment.offset + available, length: segment.length - available, kind: 'zero' };
          break;
        }
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.decompressor.close();
    await this.file.close();
    await this.backing?.close();
  }

  /** The guest range as segments, adjacent ones of the same source (and contiguous host data) merged. */
  private segments(offset: number, length: number): AsyncIterable<Segment> {
    const end = offset + length;
    const map = (l1Index: number, table: Buffer | null, cluster: number, position: number, within: number, take: number): Segment[] => {
      // No L2 table: every cluster of this L1 entry is unallocated, one segment for all of
      // them (a 1 TiB thin image is 2,048 such entries, not 16 million clusters to map).
      if (table === null) return [{ offset: position, length: Math.min(end, (l1Index + 1) * this.l2Entries * this.clusterSize) - position, source: 'backing' }];
      return this.split(this.decode(cluster, table), position, within, take);
    };
    return unitSegments(offset, length, {
      unitSize: this.clusterSize,
      map: (cluster, position, within, take) => {
        const l1Index = Math.floor(cluster / this.l2Entries);
        const table = this.l2Loaded.get(l1Index);
        if (table !== undefined) return map(l1Index, table, cluster, position, within, take);
        return this.l2Table(l1Index).then((loaded) => map(l1Index, loaded, cluster, position, within, take));
      },
      canMerge,
    });
  }

  /** Segments for `take` bytes of one cluster starting `within` it. */
  private split(mapping: ClusterMapping, position: number, within: number, take: number): Segment[] {
    switch (mapping.kind) {
      case 'unallocated':
        return [{ offset: position, length: take, source: 'backing' }];
      case 'zero':
        return [{ offset: position, length: take, source: 'zero' }];
      case 'data':
        return [{ offset: position, length: take, source: 'data', host: mapping.host + within }];
      case 'compressed':
        return [{ offset: position, length: take, source: 'compressed', host: mapping.host, stored: mapping.length, within }];
      case 'subclusters': {
        const sub = this.clusterSize / 32;
        const out: Segment[] = [];
        for (let at = within; at < within + take; ) {
          const index = Math.floor(at / sub);
          const n = Math.min(within + take - at, (index + 1) * sub - at);
          const bit = 2 ** index;
          const guest = position + (at - within);
          if (Math.floor(mapping.allocated / bit) % 2 === 1) out.push({ offset: guest, length: n, source: 'data', host: mapping.host + at });
          else if (Math.floor(mapping.zero / bit) % 2 === 1) out.push({ offset: guest, length: n, source: 'zero' });
          else out.push({ offset: guest, length: n, source: 'backing' });
          at += n;
        }
        return out;
      }
    }
  }

  /** What guest cluster `cluster` holds, from its L2 table (null: none), host offsets checked. */
  private decode(cluster: number, table: Buffer | null): ClusterMapping {
    if (table === null) return { kind: 'unallocated' };
    const at = (cluster % this.l2Entries) * this.entryBytes;
    const mapping =
      (this.header.extendedL2 ? null : decodeStandardL2Entry(table.readUInt32BE(at), table.readUInt32BE(at + 4))) ??
      decodeL2Entry(table.readBigUInt64BE(at), this.header.extendedL2 ? table.readBigUInt64BE(at + 8) : undefined, this.header.clusterBits);
    if (mapping.kind === 'data' || mapping.kind === 'subclusters') {
      if (mapping.host % this.clusterSize !== 0) throw this.file.invalid(`guest cluster ${cluster} points to host offset ${mapping.host}, not on a cluster boundary`);
      if (mapping.host >= this.file.size) {
        throw this.file.invalid(`guest cluster ${cluster} points to host offset ${mapping.host}, past the end of the file (${this.file.size} bytes): the image is truncated or its tables are corrupt`);
      }
      if (mapping.kind === 'subclusters' && mapping.host === 0 && mapping.allocated !== 0) {
        throw this.file.invalid(`guest cluster ${cluster} has allocated subclusters but no host cluster`);
      }
    } else if (mapping.kind === 'compressed' && (mapping.host >= this.file.size || mapping.length > 2 * this.clusterSize + 512)) {
      throw this.file.invalid(`compressed guest cluster ${cluster} at host offset ${mapping.host} (${mapping.length} bytes) is outside the file or too large`);
    }
    return mapping;
  }

  private l2Table(l1Index: number): Promise<Buffer | null> {
    let table = this.l2Cache.get(l1Index);
    if (table === undefined) {
      const offset = l2TableOffset(this.l1.readBigUInt64BE(l1Index * 8));
      if (offset === 0) table = Promise.resolve(null);
      else if (offset % this.clusterSize !== 0 || offset + this.clusterSize > this.file.size) {
        table = Promise.reject(this.file.invalid(`L1 entry ${l1Index} points to an L2 table at ${offset}, outside the file or misaligned`));
      } else {
        table = this.file.readAt(offset, this.clusterSize);
      }
      const loading = table;
      loading.then(
        (loaded) => {
          if (this.l2Cache.get(l1Index) === loading) this.l2Loaded.set(l1Index, loaded);
        },
        () => this.l2Cache.delete(l1Index),
      );
      this.l2Cache.set(l1Index, table);
      while (this.l2Cache.size > CACHED_L2_TABLES) {
        const oldest = this.l2Cache.keys().next().value as number;
        this.l2Cache.delete(oldest);
        this.l2Loaded.delete(oldest);
      }
    }
    return table;
  }

  /** Host data; the part of the last cluster past the end of the file reads as zeros (as in QEMU). */
  private async readHost(host: number, slice: Uint8Array): Promise<void> {
    const available = Math.max(0, Math.min(slice.length, this.file.size - host));
    if (available > 0) await this.file.readAt(host, available, slice);
    fillZeros(slice, available);
  }

  private readBacking(offset: number, slice: Uint8Array): Promise<void> {
    return readFromBacking(this.backing, offset, slice);
  }

  /**
   * The compressed clusters of one read, decoded on worker threads in one task: their stored
   * bytes are read in a few large reads (compressed clusters lie packed one after the other)
   * into shared memory, and the workers write each cluster's wanted part into `target`
   * (through a shared copy when `target` is not in shared memory).
   */
  private async decompressBatch(segments: readonly CompressedSegment[], target: Uint8Array, offset: number): Promise<void> {
    const runs: { start: number; end: number; at: number }[] = [];
    const placed = segments.map((segment) => {
      const stored = Math.min(segment.stored, this.file.size - segment.host);
      const end = segment.host + stored;
      let run = runs[runs.length - 1];
      if (run === undefined || segment.host < run.start || segment.host > run.end + RUN_GAP || Math.max(run.end, end) - run.start > MAX_RUN) {
        run = { start: segment.host, end, at: run === undefined ? 0 : run.at + (run.end - run.start) };
        runs.push(run);
      } else {
        run.end = Math.max(run.end, end);
      }
      return { segment, run, stored };
    });
    const last = runs[runs.length - 1] as (typeof runs)[number];
    const input = new Uint8Array(new SharedArrayBuffer(last.at + (last.end - last.start)));
    await Promise.all(runs.map((run) => this.file.readAt(run.start, run.end - run.start, input.subarray(run.at, run.at + (run.end - run.start)))));
    const shared = target.buffer instanceof SharedArrayBuffer;
    const output = shared ? target : new Uint8Array(new SharedArrayBuffer(target.length));
    const pieces: DecompressPiece[] = placed.map(({ segment, run, stored }) => ({
      at: run.at + (segment.host - run.start),
      stored,
      within: segment.within,
      length: segment.length,
      to: segment.offset - offset,
    }));
    const failed = await this.decompressor.run({ algorithm: this.header.compression, clusterSize: this.clusterSize, input, pieces, output });
    if (failed >= 0) {
      const host = (segments[failed] as CompressedSegment).host;
      throw this.file.invalid(`the compressed cluster at host offset ${host} does not decompress to one cluster`, host);
    }
    if (!shared) for (const piece of pieces) target.set(output.subarray(piece.to, piece.to + piece.length), piece.to);
  }

  private async compressedCluster(host: number, stored: number): Promise<Buffer> {
    const cached = this.clusterCache.get(host);
    if (cached !== undefined) return cached;
    const data = await this.file.readAt(host, Math.min(stored, this.file.size - host));
    this.zstd ??= import('zstd-napi').then((zstd) => new zstd.Decompressor());
    const cluster = await decompressCluster(data, this.header.compression, this.clusterSize, await this.zstd);
    if (cluster === null) throw this.file.invalid(`the compressed cluster at host offset ${host} does not decompress to one cluster`, host);
    this.clusterCache.set(host, cluster);
    while (this.clusterCache.size > CACHED_CLUSTERS) this.clusterCache.delete(this.clusterCache.keys().next().value as number);
    return cluster;
  }
}

function classify(segment: Segment): SegmentKind {
  if (segment.source === 'data' || segment.source === 'compressed') return { kind: 'data', layer: 0 };
  return segment.source === 'zero' ? { kind: 'zero', layer: 0 } : 'backing';
}

function canMerge(a: Segment, b: Segment): boolean {
  if (a.source !== b.source) return false;
  if (a.source === 'data' && b.source === 'data') return a.host + a.length === b.host;
  return a.source === 'zero' || a.source === 'backing';
}
