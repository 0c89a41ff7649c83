/**
 * VMware's ESX sparse extent ("COWD", a `VMFSSPARSE` extent of a `vmfsSparse` descriptor):
 * the delta disks of ESX snapshots on VMFS 3 and 5 (disks under 2 TiB). Read only, as QEMU
 * reads it (block/vmdk.c: VMDK3Header, vmdk_open_vmfs_sparse, get_cluster_offset; checked
 * against qemu-img 7.2 on hand-built files), with more checks (every offset against the file).
 *
 * Every integer is a little-endian u32; offsets and sizes are in 512-byte sectors.
 *
 * Header, from byte 0 (QEMU reads the first 44 bytes; ESX's header goes on to 2 KiB with the
 * parent's file name, the disk's name and description, which Coffer does not use: the parent
 * is named by the descriptor, as for every delta):
 * ```
 *   0 magic "COWD"          4 version              8 flags
 *  12 capacity (sectors)   16 grain size (sectors; ESX: 1)
 *  20 grain directory offset (sectors)             24 grain directory entries
 *  28 next free sector     32 cylinders  36 heads  40 sectors per track
 * ```
 * Grain directory entry: the sector of a grain table, 0 = none (its 4096 grains unallocated).
 * Grain table: 4096 entries, each the sector of a grain, 0 = unallocated (the parent's bytes,
 * or zeros). There are no zero grains and no compression in this format.
 */
import type { ImageFile } from '../image-file.js';
import { BoundedCache } from './bounded-cache.js';
import { SECTOR } from './sparse-header.js';
import type { SparseRun } from './sparse-extent.js';

export const COWD_MAGIC = 'COWD';
const HEADER_BYTES = 44;
const GT_ENTRIES = 4096;
/** QEMU's bounds: grains of at most 2^21 sectors (1 GiB), directories of at most 32 Mi entries. */
const MAX_GRAIN_SECTORS = 0x20_0000;
const MAX_GD_ENTRIES = 32 * 1024 * 1024;
const CACHED_GRAIN_TABLES = 16;

/** True when `head` starts with the COWD magic. */
export function isCowdHeader(head: Uint8Array): boolean {
  return head.length >= 4 && Buffer.from(head.buffer, head.byteOffset, 4).toString('latin1') === COWD_MAGIC;
}

/** The header's fields Coffer uses, in bytes. */
export interface CowdHeader {
  capacityBytes: number;
  grainBytes: number;
  gdOffset: number;
  gdEntries: number;
}

/** Parses and checks the header (its first 44 bytes). */
export function parseCowdHeader(bytes: Buffer, file: ImageFile): CowdHeader {
  if (bytes.length < HEADER_BYTES || !isCowdHeader(bytes)) throw file.invalid('not an ESX sparse (COWD) extent: no COWD header');
  const capacitySectors = bytes.readUInt32LE(12);
  const grainSectors = bytes.readUInt32LE(16);
  const gdSector = bytes.readUInt32LE(20);
  const gdEntries = bytes.readUInt32LE(24);
  if (grainSectors === 0 || grainSectors > MAX_GRAIN_SECTORS) throw file.invalid(`the COWD grain size of ${grainSectors} sectors is out of range (1..${MAX_GRAIN_SECTORS})`);
  if (gdEntries > MAX_GD_ENTRIES) throw file.invalid(`the COWD grain directory of ${gdEntries} entries is larger than 32 Mi entries`);
  const header = { capacityBytes: capacitySectors * SECTOR, grainBytes: grainSectors * SECTOR, gdOffset: gdSector * SECTOR, gdEntries };
  if (gdEntries * GT_ENTRIES * header.grainBytes < header.capacityBytes) {
    throw file.invalid(`the COWD grain directory (${gdEntries} entries of ${GT_ENTRIES} grains of ${header.grainBytes} bytes) covers less than the extent's ${header.capacityBytes} bytes`);
  }
  if (gdSector === 0 || header.gdOffset + gdEntries * 4 > file.size) {
    throw file.invalid(`the COWD grain directory at sector ${gdSector} (${gdEntries} entries) lies outside the file (${file.size} bytes)`, header.gdOffset);
  }
  return header;
}

/**
 * One COWD extent file: the grain directory (read whole at open: 4 bytes per 4096 grains, at
 * most 128 MiB for an absurd header, refused above) and grain tables (16 KiB each, cached),
 * mapping the extent's bytes to unallocated or data at a host offset.
 */
export class CowdExtent {
  readonly bytes: number;
  private readonly tables = new BoundedCache<number, Promise<Buffer | null>>(CACHED_GRAIN_TABLES);
  private readonly gtSpan: number;

  private constructor(
    readonly file: ImageFile,
    readonly header: CowdHeader,
    private readonly directory: Buffer,
  ) {
    this.bytes = header.capacityBytes;
    this.gtSpan = GT_ENTRIES * header.grainBytes;
  }

  static async open(file: ImageFile): Promise<CowdExtent> {
    const header = parseCowdHeader(await file.readAt(0, Math.min(file.size, HEADER_BYTES)), file);
    // Only the entries the capacity needs: the rest cannot be reached.
    const needed = Math.ceil(header.capacityBytes / (GT_ENTRIES * header.grainBytes));
    const directory = needed === 0 ? Buffer.alloc(0) : await file.readAt(header.gdOffset, needed * 4);
    return new CowdExtent(file, header, directory);
  }

  /** What the extent's bytes `[from, to)` are, in order; a whole absent grain table comes as one run. */
  async *runs(from: number, to: number): AsyncIterable<SparseRun> {
    const { grainBytes } = this.header;
    for (let position = from; position < to; ) {
      const tableIndex = Math.floor(position / this.gtSpan);
      const table = await this.table(tableIndex);
      if (table === null) {
        const end = Math.min(to, (tableIndex + 1) * this.gtSpan);
        yield { offset: position, length: end - position, kind: 'unallocated' };
        position = end;
        continue;
      }
      const grain = Math.floor(position / grainBytes);
      const within = position - grain * grainBytes;
      const length = Math.min(to - position, grainBytes - within);
      const sector = table.readUInt32LE((grain % GT_ENTRIES) * 4);
      if (sector === 0) {
        yield { offset: position, length, kind: 'unallocated' };
      } else {
        const host = sector * SECTOR;
        if (host + grainBytes > this.file.size) {
          throw this.file.invalid(`COWD grain ${grain} lies at bytes ${host}..${host + grainBytes}, past the end of the file (${this.file.size} bytes)`, host);
        }
        yield { offset: position, length, kind: 'data', host: host + within };
      }
      position += length;
    }
  }

  /** Grain table `index` (null when the directory has none), its offset checked. */
  private table(index: number): Promise<Buffer | null> {
    return this.tables.obtain(index, async () => {
      const sector = this.directory.readUInt32LE(index * 4);
      if (sector === 0) return null;
      const host = sector * SECTOR;
      if (host + GT_ENTRIES * 4 > this.file.size) {
        throw this.file.invalid(`COWD grain directory entry ${index} points to a grain table at byte ${host}, past the end of the file (${this.file.size} bytes)`, host);
      }
      return this.file.readAt(host, GT_ENTRIES * 4);
    });
  }
}
