import type { BlockDevice } from '../../blockdev/index.js';
import type { FsFileExtent, FsPhysicalExtent } from '../filesystem.js';
import { fsCorrupt, fsUnsupported } from '../fs-errors.js';
import { ATTRIBUTE_COMPRESSED, ATTRIBUTE_ENCRYPTED, type Attribute, type NonResidentAttribute } from './attribute.js';
import { decompressLznt1 } from './lznt1.js';
import { decodeRunlist, MAX_RUNS, type Run } from './runlist.js';

/** Where an attribute's clusters are read from: the device, or the metadata cache. */
export type ByteSource = Pick<BlockDevice, 'read'>;

/** The largest compression unit accepted: 16 clusters of 64 KiB. */
const MAX_UNIT_BYTES = 1 << 20;
/** Decompressed units kept for reads that continue in the same unit. */
const UNIT_CACHE = 8;

/**
 * The runs of a non-resident attribute from its extents (any order): they must follow each
 * other from VCN 0 with no gap. Returns the runs, the extent at VCN 0 (which holds the
 * sizes), and the first VCN not mapped.
 */
export function assembleRuns(extents: Attribute[], totalClusters: number, what: string): { runs: Run[]; base: NonResidentAttribute; nextVcn: number } {
  const sorted = [...extents].sort((a, b) => (a.resident || b.resident ? 0 : a.lowestVcn - b.lowestVcn)) as NonResidentAttribute[];
  const base = sorted[0];
  if (base === undefined || sorted.some((e) => e.resident) || base.lowestVcn !== 0) throw fsCorrupt('ntfs', `${what}: extents do not start at VCN 0`);
  const runs: Run[] = [];
  let nextVcn = 0;
  for (const extent of sorted) {
    if (extent.lowestVcn !== nextVcn) throw fsCorrupt('ntfs', `${what}: extent starts at VCN ${extent.lowestVcn}, expected ${nextVcn}`);
    const decoded = decodeRunlist(extent.mappingPairs, extent.lowestVcn, totalClusters, what);
    for (const run of decoded) runs.push(run);
    if (runs.length > MAX_RUNS) throw fsCorrupt('ntfs', `${what}: too many runs`);
    const last = decoded[decoded.length - 1];
    nextVcn = last === undefined ? extent.lowestVcn : last.vcn + last.length;
    if (extent.highestVcn !== -1 && decoded.length > 0 && nextVcn !== extent.highestVcn + 1) {
      throw fsCorrupt('ntfs', `${what}: runlist ends at VCN ${nextVcn - 1}, header says ${extent.highestVcn}`);
    }
  }
  return { runs, base, nextVcn };
}

/**
 * The content of one attribute (a file's unnamed or named $DATA, a directory's
 * $INDEX_ALLOCATION, an $ATTRIBUTE_LIST…), from its extents (several when an
 * $ATTRIBUTE_LIST spreads it over records). Reads are clipped to the data size; bytes past
 * the initialized size, sparse runs and sparse compression units read as zeros; compressed
 * units are decompressed one at a time (LZNT1).
 */
export class AttributeStream {
  private readonly unitCache = new Map<number, Promise<Uint8Array>>();

  private constructor(
    private readonly device: ByteSource,
    private readonly clusterSize: number,
    readonly size: number,
    private readonly initializedSize: number,
    private readonly resident: Uint8Array | undefined,
    private readonly runs: readonly Run[],
    /** Clusters per compression unit; 0 when not compressed. */
    private readonly unitClusters: number,
    private readonly what: string,
  ) {}

  /**
   * The stream of an attribute given all its extents (any order). Throws `E_FS_CORRUPT`
   * when extents are missing, overlap or disagree, `E_FS_UNSUPPORTED` for encrypted ones.
   */
  static fromExtents(device: ByteSource, geometry: { clusterSize: number; totalClusters: number }, extents: Attribute[], what: string): AttributeStream {
    const first = extents[0];
    if (first === undefined) throw fsCorrupt('ntfs', `${what}: no such attribute`);
    if ((first.flags & ATTRIBUTE_ENCRYPTED) !== 0) throw fsUnsupported('ntfs', `${what}: EFS-encrypted content cannot be read`);
    const { clusterSize, totalClusters } = geometry;
    if (first.resident) {
      if (extents.length !== 1) throw fsCorrupt('ntfs', `${what}: resident attribute with several extents`);
      return new AttributeStream(device, clusterSize, first.value.length, first.value.length, first.value, [], 0, what);
    }
    const { runs, base, nextVcn } = assembleRuns(extents, totalClusters, what);
    const { dataSize, allocatedSize } = base;
    const initializedSize = Math.min(base.initializedSize, dataSize);
    if (dataSize > allocatedSize || nextVcn * clusterSize < Math.min(allocatedSize, dataSize)) {
      throw fsCorrupt('ntfs', `${what}: ${dataSize} bytes of data but ${nextVcn} clusters mapped`);
    }
    let unitClusters = 0;
    if ((base.flags & ATTRIBUTE_COMPRESSED) !== 0 && base.compressionUnit !== 0) {
      unitClusters = 2 ** base.compressionUnit;
      if (base.compressionUnit > 16 || unitClusters * clusterSize > MAX_UNIT_BYTES) throw fsUnsupported('ntfs', `${what}: compression unit of ${unitClusters} clusters`);
    }
    return new AttributeStream(device, clusterSize, dataSize, initializedSize, undefined, runs, unitClusters, what);
  }

  /** Bytes `[offset, offset + length)` clipped to the size. */
  async read(offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) throw new RangeError(`bad read ${offset}+${length}`);
    const end = Math.min(this.size, offset + length);
    if (end <= offset) return new Uint8Array(0);
    if (this.resident !== undefined) return this.resident.slice(offset, end);
    const out = new Uint8Array(end - offset);
    const dataEnd = Math.min(end, this.initializedSize);
    if (dataEnd <= offset) return out;
    if (this.unitClusters === 0) await this.readPlain(offset, dataEnd, out);
    else await this.readCompressed(offset, dataEnd, out);
    return out;
  }

  /** Data and zero ranges covering `[0, size)`, adjacent ranges of one kind merged. */
  async *extents(): AsyncIterable<FsFileExtent> {
    let pending: FsFileExtent | undefined;
    const emit = function* (offset: number, length: number, kind: 'data' | 'zero'): Generator<FsFileExtent> {
      if (length <= 0) return;
      if (pending !== undefined && pending.kind === kind && pending.offset + pending.length === offset) {
        pending.length += length;
        return;
      }
      if (pending !== undefined) yield pending;
      pending = { offset, length, kind };
    };
    const limit = this.resident !== undefined ? this.size : this.initializedSize;
    if (this.resident !== undefined) {
      yield* emit(0, this.size, 'data');
    } else if (this.unitClusters === 0) {
      for (const run of this.runs) {
        const start = run.vcn * this.clusterSize;
        if (start >= limit) break;
        const stop = Math.min(limit, start + run.length * this.clusterSize);
        yield* emit(start, stop - start, run.lcn === null ? 'zero' : 'data');
      }
    } else {
      const unitBytes = this.unitClusters * this.clusterSize;
      for (let unit = 0; unit * unitBytes < limit; ) {
        const start = unit * unitBytes;
        const sparseUnits = this.sparseUnitsFrom(unit);
        const count = Math.max(1, sparseUnits);
        yield* emit(start, Math.min(limit, start + count * unitBytes) - start, sparseUnits > 0 ? 'zero' : 'data');
        unit += count;
      }
    }
    yield* emit(limit, this.size - limit, 'zero');
    if (pending !== undefined) yield pending;
  }

  /**
   * Where the attribute's bytes lie on the volume (non-resident only: a resident value lies in
   * its MFT record, which this stream does not know): `data` for plain runs up to the
   * initialized size, `packed` for the clusters of each compressed unit (they decode into the
   * whole unit). Sparse runs are left out. Reads nothing.
   */
  *physicalExtents(): Generator<FsPhysicalExtent> {
    if (this.resident !== undefined) return;
    const limit = Math.min(this.size, this.initializedSize);
    if (this.unitClusters === 0) {
      for (const piece of this.plainPieces(0, limit)) {
        if (piece.deviceOffset !== null) yield { kind: 'data', fileOffset: piece.position, fileLength: piece.length, deviceOffset: piece.deviceOffset, length: piece.length };
      }
      return;
    }
    const cs = this.clusterSize;
    const unitBytes = this.unitClusters * cs;
    for (let unit = 0; unit * unitBytes < limit; unit++) {
      const { pieces, allocated } = this.unitPieces(unit);
      const fileOffset = unit * unitBytes;
      const fileLength = Math.min(limit, fileOffset + unitBytes) - fileOffset;
      const kind = allocated === this.unitClusters ? 'data' : 'packed'; // a full unit is stored as is
      let within = 0;
      for (const piece of pieces) {
        const length = kind === 'data' ? Math.min(piece.count * cs, fileLength - within) : piece.count * cs;
        if (length > 0) yield { kind, fileOffset: kind === 'data' ? fileOffset + within : fileOffset, fileLength: kind === 'data' ? length : fileLength, deviceOffset: piece.lcn * cs, length };
        within += piece.count * cs;
      }
    }
  }

  /** Where bytes `[offset, end)` of an uncompressed attribute lie: pieces within one run each (null: sparse). */
  private *plainPieces(offset: number, end: number): Generator<{ position: number; length: number; deviceOffset: number | null }> {
    const cs = this.clusterSize;
    let position = offset;
    let index = this.runIndex(Math.floor(position / cs));
    while (position < end) {
      const run = this.runs[index];
      if (run === undefined || run.vcn * cs > position) throw fsCorrupt('ntfs', `${this.what}: no run maps byte ${position}`);
      const runEnd = Math.min(end, (run.vcn + run.length) * cs);
      const deviceOffset = run.lcn === null ? null : run.lcn * cs + (position - run.vcn * cs);
      yield { position, length: runEnd - position, deviceOffset };
      position = runEnd;
      index++;
    }
  }

  private async readPlain(offset: number, end: number, out: Uint8Array): Promise<void> {
    for (const { position, length, deviceOffset } of this.plainPieces(offset, end)) {
      if (deviceOffset !== null) await this.device.read(deviceOffset, length, out.subarray(position - offset, position - offset + length));
    }
  }

  private async readCompressed(offset: number, end: number, out: Uint8Array): Promise<void> {
    const unitBytes = this.unitClusters * this.clusterSize;
    for (let unit = Math.floor(offset / unitBytes); unit * unitBytes < end; unit++) {
      const unitStart = unit * unitBytes;
      const from = Math.max(offset, unitStart);
      const to = Math.min(end, unitStart + unitBytes);
      const bytes = await this.unit(unit);
      out.set(bytes.subarray(from - unitStart, to - unitStart), from - offset);
    }
  }

  /** One compression unit's bytes: zeros, raw clusters, or decompressed LZNT1. */
  private unit(unit: number): Promise<Uint8Array> {
    const cached = this.unitCache.get(unit);
    if (cached !== undefined) return cached;
    const promise = this.loadUnit(unit);
    promise.catch(() => this.unitCache.delete(unit));
    this.unitCache.set(unit, promise);
    while (this.unitCache.size > UNIT_CACHE) this.unitCache.delete(this.unitCache.keys().next().value as number);
    return promise;
  }

  private async loadUnit(unit: number): Promise<Uint8Array> {
    const cs = this.clusterSize;
    const unitBytes = this.unitClusters * cs;
    const { pieces, allocated } = this.unitPieces(unit);
    const raw = new Uint8Array(allocated * cs);
    let at = 0;
    for (const piece of pieces) {
      await this.device.read(piece.lcn * cs, piece.count * cs, raw.subarray(at, at + piece.count * cs));
      at += piece.count * cs;
    }
    if (allocated === this.unitClusters) return raw; // stored uncompressed
    const out = new Uint8Array(unitBytes);
    if (allocated > 0) decompressLznt1(raw, out, `${this.what}: compression unit ${unit}`);
    return out;
  }

  /** The allocated clusters at the start of compression unit `unit`, in VCN order, and how many. */
  private unitPieces(unit: number): { pieces: { lcn: number; count: number }[]; allocated: number } {
    const firstVcn = unit * this.unitClusters;
    const lastVcn = firstVcn + this.unitClusters;
    // The allocated clusters at the start of the unit, in VCN order.
    const pieces: { lcn: number; count: number }[] = [];
    let allocated = 0;
    let sparseSeen = false;
    for (let i = this.runIndex(firstVcn); i < this.runs.length; i++) {
      const run = this.runs[i]!;
      if (run.vcn >= lastVcn) break;
      const from = Math.max(firstVcn, run.vcn);
      const to = Math.min(lastVcn, run.vcn + run.length);
      if (run.lcn === null) {
        sparseSeen = true;
        continue;
      }
      if (sparseSeen) throw fsCorrupt('ntfs', `${this.what}: compression unit ${unit} has data after its sparse tail`);
      pieces.push({ lcn: run.lcn + (from - run.vcn), count: to - from });
      allocated += to - from;
    }
    return { pieces, allocated };
  }

  /** How many whole compression units from `unit` on are entirely sparse (0 if `unit` holds data). */
  private sparseUnitsFrom(unit: number): number {
    const firstVcn = unit * this.unitClusters;
    const index = this.runIndex(firstVcn);
    const run = this.runs[index];
    if (run === undefined || run.lcn !== null || run.vcn > firstVcn) return 0;
    return Math.floor((run.vcn + run.length - firstVcn) / this.unitClusters);
  }

  /** The index of the run holding `vcn`, or of the first run after it. */
  private runIndex(vcn: number): number {
    let lo = 0;
    let hi = this.runs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const run = this.runs[mid]!;
      if (run.vcn + run.length <= vcn) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
