/**
 * VMware's seSparse extent (ESXi 6.5+ snapshots on VMFS 6, and every snapshot of a disk over
 * 2 TiB): read only, as QEMU reads it (block/vmdk.c, vmdk_open_se_sparse and
 * get_cluster_offset; checked against qemu-img 7.2 on hand-built files). VMware documents no
 * format; every field QEMU checks is checked here, and more (the file's size).
 *
 * On disk, every integer is a little-endian u64; offsets and sizes are in 512-byte sectors.
 *
 * Constant header, bytes 0-511:
 * ```
 *   0 magic 0xcafebabe         8 version 0x0000000200000001   16 capacity (sectors)
 *  24 grain size (8: 4 KiB)   32 grain table size (64: 4096 entries)
 *  40 flags (0)               48-79 reserved1..4 (0)
 *  80 volatile header offset  88 volatile header size
 *  96-127 journal header offset/size, journal offset/size (unused: never replayed)
 * 128 grain directory offset 136 grain directory size (64 entries per sector)
 * 144 grain tables offset    152 grain tables size
 * 160-191 free bitmap and backmap offsets/sizes (unused)
 * 192 grains offset          200 grains size       208-511 padding (0)
 * ```
 * Volatile header, at its offset: magic 0xcafecafe at 0, free GT number at 8, next
 * transaction at 16, replay-journal at 24 (must be 0: a dirty journal is refused, as QEMU
 * does), padding 32-511 (0).
 *
 * Grain directory entry (one per 16 MiB of the extent): 0 = no grain table (unallocated);
 * else the upper 32 bits must be 0x10000000 and the low 32 bits are the table's index:
 * table at sector `grain tables offset + index × 64`.
 *
 * Grain table entry (one per 4 KiB grain), by its top nibble: 0 = unallocated (the whole
 * entry must be 0: the parent's bytes, or zeros); 1 (SCSI-unmapped) or 2 (zero) = zeros of
 * this layer, never the parent's; 3 = allocated, grain index `bits 59-48 | bits 47-0 << 12`
 * (the low 12 bits of the index sit high), the grain at sector `grains offset + index × 8`;
 * 4-15 = invalid.
 */
import type { ImageFile } from '../image-file.js';
import { BoundedCache } from './bounded-cache.js';
import { SECTOR } from './sparse-header.js';
import type { SparseRun } from './sparse-extent.js';

const CONST_MAGIC = 0xcafebaben;
const VOLATILE_MAGIC = 0xcafecafen;
const VERSION = 0x0000_0002_0000_0001n;
const GRAIN_SECTORS = 8;
const GRAIN_BYTES = GRAIN_SECTORS * SECTOR;
const GT_SECTORS = 64;
const GT_ENTRIES = (GT_SECTORS * SECTOR) / 8;
/** Bytes of the extent one grain table covers: 4096 grains of 4 KiB. */
const GT_SPAN = GT_ENTRIES * GRAIN_BYTES;
/** QEMU refuses grain directories of more than 32 Mi entries (512 TiB). */
const MAX_GD_ENTRIES = 32 * 1024 * 1024;
const CACHED_GRAIN_TABLES = 16;

/** The constant header's fields Coffer uses, in bytes. */
export interface SeSparseHeader {
  capacityBytes: number;
  volatileOffset: number;
  gdOffset: number;
  gdEntries: number;
  gtOffset: number;
  grainsOffset: number;
}

/** Parses and checks the constant header (the first 512 bytes) and returns where things are. */
export function parseSeSparseHeader(bytes: Buffer, file: ImageFile): SeSparseHeader {
  if (bytes.length < SECTOR) throw file.invalid('the seSparse extent is shorter than its 512-byte header');
  const u64 = (at: number) => bytes.readBigUInt64LE(at);
  if (u64(0) !== CONST_MAGIC) throw file.invalid(`the seSparse header magic is 0x${u64(0).toString(16)}, not 0xcafebabe`);
  if (u64(8) !== VERSION) throw file.unsupported(`seSparse version 0x${u64(8).toString(16).padStart(16, '0')}`);
  if (u64(24) !== BigInt(GRAIN_SECTORS)) throw file.unsupported(`seSparse grains of ${u64(24)} sectors (only 8 are known)`);
  if (u64(32) !== BigInt(GT_SECTORS)) throw file.unsupported(`seSparse grain tables of ${u64(32)} sectors (only 64 are known)`);
  if (u64(40) !== 0n) throw file.unsupported(`seSparse flags 0x${u64(40).toString(16)}`);
  for (let at = 48; at < 80; at += 8) if (u64(at) !== 0n) throw file.unsupported('seSparse reserved header fields that are set');
  if (!bytes.subarray(208, 512).every((b) => b === 0)) throw file.unsupported('a seSparse header with non-zero padding');
  const sectors = (at: number, name: string): number => {
    const value = u64(at);
    if (value > BigInt(Math.floor(Number.MAX_SAFE_INTEGER / SECTOR))) throw file.invalid(`the seSparse ${name} ${value} is out of range`);
    return Number(value) * SECTOR;
  };
  const gdEntriesBig = u64(136) * 64n; // 64 entries of 8 bytes per sector
  if (gdEntriesBig > BigInt(MAX_GD_ENTRIES)) throw file.invalid('the seSparse grain directory is larger than 32 Mi entries');
  const gdEntries = Number(gdEntriesBig);
  const header = {
    capacityBytes: sectors(16, 'capacity'),
    volatileOffset: sectors(80, 'volatile header offset'),
    gdOffset: sectors(128, 'grain directory offset'),
    gdEntries,
    gtOffset: sectors(144, 'grain tables offset'),
    grainsOffset: sectors(192, 'grains offset'),
  };
  if (header.gdEntries * GT_SPAN < header.capacityBytes) {
    throw file.invalid(`the seSparse grain directory (${header.gdEntries} entries) covers less than the extent's ${header.capacityBytes} bytes`);
  }
  if (header.gdOffset + header.gdEntries * 8 > file.size) throw file.invalid(`the seSparse grain directory at byte ${header.gdOffset} lies past the end of the file (${file.size} bytes)`, header.gdOffset);
  return header;
}

/** Checks the volatile header: its magic, a journal that needs no replay, zero padding. */
export function checkSeSparseVolatileHeader(bytes: Buffer, file: ImageFile, at: number): void {
  if (bytes.length < SECTOR || bytes.readBigUInt64LE(0) !== VOLATILE_MAGIC) throw file.invalid(`no seSparse volatile header at byte ${at}`, at);
  if (bytes.readBigUInt64LE(24) !== 0n) throw file.unsupported('a seSparse extent whose journal must be replayed (the disk was not closed cleanly: consolidate or open it in ESXi first)');
  if (!bytes.subarray(32, 512).every((b) => b === 0)) throw file.unsupported('a seSparse volatile header with non-zero padding');
}

/**
 * One seSparse extent file: the grain directory (read whole at open, at most 256 MiB for a
 * 512 TiB extent, 8 bytes per 16 MiB) and grain tables (32 KiB each, cached), mapping the
 * extent's bytes to unallocated, zero, or data at a host offset. Every offset read from the
 * file is checked against its size before it is used.
 */
export class SeSparseExtent {
  readonly bytes: number;
  private readonly tables = new BoundedCache<number, Promise<Buffer | null>>(CACHED_GRAIN_TABLES);

  private constructor(
    readonly file: ImageFile,
    readonly header: SeSparseHeader,
    private readonly directory: Buffer,
  ) {
    this.bytes = header.capacityBytes;
  }

  static async open(file: ImageFile): Promise<SeSparseExtent> {
    const header = parseSeSparseHeader(await file.readAt(0, Math.min(file.size, SECTOR)), file);
    if (header.volatileOffset + SECTOR > file.size) throw file.invalid(`the seSparse volatile header at byte ${header.volatileOffset} lies past the end of the file`, header.volatileOffset);
    checkSeSparseVolatileHeader(await file.readAt(header.volatileOffset, SECTOR), file, header.volatileOffset);
    // Only the entries the capacity needs are read: the rest cannot be reached.
    const needed = Math.ceil(header.capacityBytes / GT_SPAN);
    const directory = needed === 0 ? Buffer.alloc(0) : await file.readAt(header.gdOffset, needed * 8);
    return new SeSparseExtent(file, header, directory);
  }

  /** What the extent's bytes `[from, to)` are, in order; a whole absent grain table comes as one run. */
  async *runs(from: number, to: number): AsyncIterable<SparseRun> {
    for (let position = from; position < to; ) {
      const tableIndex = Math.floor(position / GT_SPAN);
      const table = await this.table(tableIndex);
      if (table === null) {
        const end = Math.min(to, (tableIndex + 1) * GT_SPAN);
        yield { offset: position, length: end - position, kind: 'unallocated' };
        position = end;
        continue;
      }
      const grain = Math.floor(position / GRAIN_BYTES);
      const within = position - grain * GRAIN_BYTES;
      const length = Math.min(to - position, GRAIN_BYTES - within);
      const entry = table.readBigUInt64LE((grain % GT_ENTRIES) * 8);
      const kind = Number(entry >> 60n);
      if (kind === 0) {
        if (entry !== 0n) throw this.file.invalid(`seSparse grain ${grain} has the invalid entry 0x${entry.toString(16)}`);
        yield { offset: position, length, kind: 'unallocated' };
      } else if (kind === 1 || kind === 2) {
        yield { offset: position, length, kind: 'zero' };
      } else if (kind === 3) {
        const index = ((entry & 0x0fff_0000_0000_0000n) >> 48n) | ((entry & 0x0000_ffff_ffff_ffffn) << 12n);
        const host = BigInt(this.header.grainsOffset) + index * BigInt(GRAIN_BYTES);
        if (host === 0n) {
          // Sector 0 is the header: QEMU takes such a grain as unallocated, and so does Coffer.
          yield { offset: position, length, kind: 'unallocated' };
          position += length;
          continue;
        }
        if (host + BigInt(GRAIN_BYTES) > BigInt(this.file.size)) {
          // QEMU reads zeros past the end; a grain the file does not hold is damage here.
          throw this.file.invalid(`seSparse grain ${grain} lies at bytes ${host}..${host + BigInt(GRAIN_BYTES)}, past the end of the file (${this.file.size} bytes)`);
        }
        yield { offset: position, length, kind: 'data', host: Number(host) + within };
      } else {
        throw this.file.invalid(`seSparse grain ${grain} has the invalid entry 0x${entry.toString(16)}`);
      }
      position += length;
    }
  }

  /** Grain table `index` (null when the directory has none), its offset checked. */
  private table(index: number): Promise<Buffer | null> {
    return this.tables.obtain(index, async () => {
      const entry = this.directory.readBigUInt64LE(index * 8);
      if (entry === 0n) return null;
      if (entry >> 32n !== 0x1000_0000n) throw this.file.invalid(`seSparse grain directory entry ${index} is 0x${entry.toString(16)}, neither empty nor a grain table`);
      const host = this.header.gtOffset + Number(entry & 0xffff_ffffn) * GT_SECTORS * SECTOR;
      if (host === 0) return null; // the header's place: QEMU takes it as no table
      if (host + GT_ENTRIES * 8 > this.file.size) {
        throw this.file.invalid(`seSparse grain directory entry ${index} points to a grain table at byte ${host}, past the end of the file (${this.file.size} bytes)`, host);
      }
      return this.file.readAt(host, GT_ENTRIES * 8);
    });
  }
}
