import type { BlockDevice } from '../../blockdev/index.js';
import { fsCorrupt } from '../fs-errors.js';
import { AttributeType, type Attribute } from './attribute.js';
import { parseAttributeList } from './attribute-list.js';
import { assembleRuns, AttributeStream } from './attribute-stream.js';
import { parseBootSector, type BootSector } from './boot-sector.js';
import { MetadataCache } from './metadata-cache.js';
import { parseMftRecord, type MftRecord } from './mft-record.js';
import type { Run } from './runlist.js';

/** Well-known MFT record numbers. */
export const MftNumber = { MFT: 0, VOLUME: 3, ROOT: 5, UPCASE: 10, FIRST_USER: 16 } as const;

/** Bounds on what a hostile volume can make one call do. */
const MAX_ATTRIBUTE_LIST_BYTES = 4 * 1024 * 1024;
const MAX_EXTENSION_RECORDS = 4096;
const INODE_CACHE = 2048;

/**
 * A file as its MFT records describe it: the base record's attributes plus those of its
 * extension records, gathered through the $ATTRIBUTE_LIST.
 */
export interface Inode {
  number: number;
  sequence: number;
  directory: boolean;
  attributes: Attribute[];
}

/**
 * The volume's core: boot sector, the $MFT's own runlist (read from record 0, following
 * its attribute list when $MFT is fragmented enough to need one), and MFT records and
 * inodes by number, cached.
 */
export class NtfsVolume {
  private readonly inodes = new Map<number, Promise<Inode>>();

  private constructor(
    readonly device: BlockDevice,
    readonly boot: BootSector,
    readonly metadata: MetadataCache,
    private mftRuns: readonly Run[],
    private recordCount: number,
  ) {}

  static async open(device: BlockDevice): Promise<NtfsVolume> {
    if (device.size < 512) throw fsCorrupt('ntfs', 'device smaller than a boot sector');
    const boot = parseBootSector(await device.read(0, 512));
    if (boot.volumeSize > device.size) {
      // The backup boot sector lies just past the volume (mkntfs counts one sector less).
      throw fsCorrupt('ntfs', `volume of ${boot.volumeSize} bytes on a device of ${device.size}`);
    }
    const metadata = new MetadataCache(device);
    const recordSize = boot.mftRecordSize;
    // Bootstrap: record 0 lies at the $MFT's first cluster; a damaged one is read from $MFTMirr.
    const mftOffset = boot.mftLcn * boot.clusterSize;
    const bootstrapRuns: Run[] = [{ vcn: 0, lcn: boot.mftLcn, length: Math.max(1, Math.ceil(recordSize / boot.clusterSize)) }];
    const volume = new NtfsVolume(device, boot, metadata, bootstrapRuns, 1);
    let record0: MftRecord;
    try {
      record0 = parseMftRecord(await volume.readAt(mftOffset, recordSize), 0);
    } catch {
      record0 = parseMftRecord(await volume.readAt(boot.mftMirrLcn * boot.clusterSize, recordSize), 0);
    }
    if (!record0.inUse) throw fsCorrupt('ntfs', '$MFT record is not in use');
    const extents = record0.attributes.filter((a) => a.type === AttributeType.DATA && a.name === '');
    const list = record0.attributes.find((a) => a.type === AttributeType.ATTRIBUTE_LIST);
    if (list !== undefined) {
      // $MFT's own extension records are found through the part of the runlist known so far.
      const entries = parseAttributeList(await volume.stream([list], '$MFT attribute list').read(0, MAX_ATTRIBUTE_LIST_BYTES), '$MFT attribute list');
      const more = entries.filter((e) => e.type === AttributeType.DATA && e.name === '' && e.record !== 0).sort((a, b) => a.lowestVcn - b.lowestVcn);
      if (more.length > MAX_EXTENSION_RECORDS) throw fsCorrupt('ntfs', '$MFT: too many extension records');
      for (const entry of more) {
        const known = assembleRuns(extents, boot.totalClusters, '$MFT');
        volume.mftRuns = known.runs;
        volume.recordCount = Math.floor((known.nextVcn * boot.clusterSize) / recordSize);
        const record = await volume.readRecord(entry.record);
        const extent = record.attributes.find((a) => a.type === AttributeType.DATA && a.name === '' && !a.resident && a.lowestVcn === entry.lowestVcn);
        if (extent === undefined) throw fsCorrupt('ntfs', `$MFT: extension record ${entry.record} lacks the $DATA extent at VCN ${entry.lowestVcn}`);
        extents.push(extent);
      }
    }
    const mftData = volume.stream(extents, '$MFT'); // checks sizes against the runs
    volume.mftRuns = assembleRuns(extents, boot.totalClusters, '$MFT').runs;
    volume.recordCount = Math.floor(mftData.size / recordSize);
    if (volume.recordCount <= MftNumber.FIRST_USER) throw fsCorrupt('ntfs', `$MFT holds only ${volume.recordCount} records`);
    return volume;
  }

  /** Metadata bytes at a device offset, through the cache (a fresh copy). */
  readAt(offset: number, length: number): Promise<Uint8Array> {
    if (offset < 0 || offset + length > this.device.size) throw fsCorrupt('ntfs', `metadata at ${offset} (+${length}) beyond the device`);
    return this.metadata.read(offset, length);
  }

  /** The content of an attribute, from its extents; `metadata` reads it through the cache. */
  stream(extents: Attribute[], what: string, via: 'device' | 'metadata' = 'metadata'): AttributeStream {
    return AttributeStream.fromExtents(via === 'device' ? this.device : this.metadata, this.boot, extents, what);
  }

  /** One MFT record, parsed (fixups checked). */
  async readRecord(number: number): Promise<MftRecord> {
    const bytes = new Uint8Array(this.boot.mftRecordSize);
    let done = 0;
    for (const piece of this.recordLocation(number)) {
      bytes.set(await this.readAt(piece.offset, piece.length), done);
      done += piece.length;
    }
    return parseMftRecord(bytes, number);
  }

  /** Where MFT record `number` lies on the device: one piece, or more when it spans $MFT runs. */
  recordLocation(number: number): { offset: number; length: number }[] {
    if (!Number.isSafeInteger(number) || number < 0 || number >= this.recordCount) throw fsCorrupt('ntfs', `MFT record ${number} beyond the $MFT (${this.recordCount} records)`);
    const size = this.boot.mftRecordSize;
    const cs = this.boot.clusterSize;
    const pieces: { offset: number; length: number }[] = [];
    for (let done = 0; done < size; ) {
      const byte = number * size + done;
      const vcn = Math.floor(byte / cs);
      const run = this.mftRuns.find((r) => r.vcn <= vcn && vcn < r.vcn + r.length);
      if (run === undefined || run.lcn === null) throw fsCorrupt('ntfs', `MFT record ${number} is not mapped by the $MFT runlist`);
      const n = Math.min(size - done, (run.vcn + run.length) * cs - byte);
      pieces.push({ offset: run.lcn * cs + (byte - run.vcn * cs), length: n });
      done += n;
    }
    return pieces;
  }

  /** A file's base record and its extension records' attributes, cached. */
  inode(number: number): Promise<Inode> {
    const cached = this.inodes.get(number);
    if (cached !== undefined) return cached;
    const promise = this.loadInode(number);
    promise.catch(() => this.inodes.delete(number));
    this.inodes.set(number, promise);
    while (this.inodes.size > INODE_CACHE) this.inodes.delete(this.inodes.keys().next().value as number);
    return promise;
  }

  private async loadInode(number: number): Promise<Inode> {
    const record = await this.readRecord(number);
    if (!record.inUse) throw fsCorrupt('ntfs', `MFT record ${number} is not in use`, { object: String(number) });
    if (record.base !== undefined) throw fsCorrupt('ntfs', `MFT record ${number} is an extension of record ${record.base.record}`, { object: String(number) });
    const attributes = [...record.attributes];
    const list = record.attributes.filter((a) => a.type === AttributeType.ATTRIBUTE_LIST);
    if (list.length > 0) {
      const stream = this.stream(list, `MFT record ${number}: attribute list`);
      if (stream.size > MAX_ATTRIBUTE_LIST_BYTES) throw fsCorrupt('ntfs', `MFT record ${number}: attribute list of ${stream.size} bytes`);
      const entries = parseAttributeList(await stream.read(0, stream.size), `MFT record ${number}: attribute list`);
      const others = [...new Set(entries.map((e) => e.record).filter((r) => r !== number))];
      if (others.length > MAX_EXTENSION_RECORDS) throw fsCorrupt('ntfs', `MFT record ${number}: too many extension records`);
      for (const other of others) {
        const extension = await this.readRecord(other);
        if (!extension.inUse || extension.base?.record !== number) {
          throw fsCorrupt('ntfs', `MFT record ${number}: extension record ${other} does not belong to it`, { object: String(number) });
        }
        attributes.push(...extension.attributes);
      }
    }
    return { number, sequence: record.sequence, directory: record.directory, attributes };
  }
}
