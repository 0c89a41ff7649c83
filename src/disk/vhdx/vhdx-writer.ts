/**
 * Writes a dynamic VHDX (MS-VHDX v1.0, what Hyper-V and Azure Stack take) in one pass, as the
 * restore feeds the disk in order: each block holding a non-zero byte is appended as it
 * completes, all-zero blocks stay out of the file, and the table, metadata, region tables and
 * headers are written at the end. The structures are encoded beside their parsers
 * (vhdx-header.ts, vhdx-region-table.ts, vhdx-metadata.ts, vhdx-bat.ts).
 *
 * ```
 * 0          file type identifier, creator "Coffer" (written last: it makes the file a VHDX)
 * 64 KiB     header 1, sequence number 0 } identical but for the sequence number: header 2
 * 128 KiB    header 2, sequence number 1 } is current; log GUID zero (nothing to replay)
 * 192 KiB    region table 1 } BAT and metadata regions, both required
 * 256 KiB    region table 2 }
 * 1 MiB      the log, 1 MiB, empty (a hole): MS-VHDX and QEMU want one even when clean
 * 2 MiB      metadata region, 1 MiB: the table and the five required items
 * 3 MiB      BAT region: one entry per block (plus a sector bitmap entry, NOT_PRESENT, after
 *            every chunk ratio entries), rounded up to 1 MiB
 * then       the blocks holding data, in disk order, 1 MiB-aligned, FULLY_PRESENT
 * ```
 * Blocks not in the file are NOT_PRESENT, which on a disk without a parent reads as zeros
 * (Hyper-V's own new dynamic disks have an all-zero table; qemu-img's ZERO state is, in its
 * own words, "non-standard"). The file ends at a 1 MiB boundary; inside a block, zero 64 KiB
 * pieces are left as holes of the (sparse) file.
 *
 * Block size: 2 MiB (the dynamic VHD writer's block), doubled for disks over 2 TiB so the table
 * stays at most 2^20 blocks (8 MiB in memory). Hyper-V's default is 32 MiB and qemu-img's 8 to
 * 32 MiB by size; small blocks keep the file close to the data of a restored Linux guest, whose
 * file system metadata is spread over the disk (Microsoft's Linux-on-Hyper-V guidance asks for
 * 1 MiB blocks for that reason), at a table that is still small. Any power of two from 1 to
 * 256 MiB is valid to every reader.
 *
 * Sizes. The virtual size counts whole 512-byte logical sectors: an odd size is rounded up,
 * the added bytes zero. Physical sector size 4096 (Hyper-V's default for VHDX). At most 64 TiB.
 * Memory: one block and 9 bytes per block of the disk.
 */
import { randomUUID } from 'node:crypto';
import { CofferError } from '../../errors/index.js';
import { FileAppender } from '../file-appender.js';
import { OutputFile } from '../output-file.js';
import { SequentialCalls } from '../sequential-calls.js';
import { isAllZero, UnitCutter, type UnitStore } from '../unit-cutter.js';
import type { DiskTarget } from '../raw-target.js';
import { batGeometry, BAT_ENTRY_SIZE, encodeVhdxBat, PAYLOAD_BLOCK_FULLY_PRESENT, PAYLOAD_BLOCK_NOT_PRESENT, type BatLayout } from './vhdx-bat.js';
import { NIL_GUID } from './vhdx-guid.js';
import { encodeVhdxFileIdentifier, encodeVhdxHeader, MiB, VHDX_HEADER_OFFSETS, VHDX_HEADER_SECTION_SIZE, type VhdxHeader } from './vhdx-header.js';
import { encodeVhdxMetadata, VHDX_MAX_SIZE, type NewVhdxMetadata } from './vhdx-metadata.js';
import { encodeVhdxRegionTable, VHDX_REGION_TABLE_OFFSETS, type VhdxRegions } from './vhdx-region-table.js';

/** Options of {@link openVhdxTarget}. */
export interface VhdxTargetOptions {
  /** Replace an existing file (otherwise refused). */
  overwrite: boolean;
}

const LOGICAL_SECTOR = 512;
const PHYSICAL_SECTOR = 4096;
const MIN_BLOCK_SIZE = 2 * MiB;
const MAX_BLOCK_SIZE = 256 * MiB;
/** Past this many blocks the block size doubles (see the module comment). */
const MAX_PAYLOAD_BLOCKS = 2 ** 20;
const LOG_OFFSET = VHDX_HEADER_SECTION_SIZE;
const LOG_LENGTH = MiB;
const METADATA_OFFSET = LOG_OFFSET + LOG_LENGTH;
const METADATA_LENGTH = MiB;
const BAT_OFFSET = METADATA_OFFSET + METADATA_LENGTH;
const CREATOR = 'Coffer';
/** Zero ranges inside a stored block smaller than this are written rather than left as holes. */
const HOLE_GRAIN = 64 * 1024;

/**
 * Creates a dynamic VHDX of `size` bytes at `path` to restore into (refuses to replace a file
 * unless `overwrite`). Throws `E_TARGET_UNWRITABLE` when the file cannot be created or the
 * size exceeds the format's 64 TiB; writes and `finish` throw `E_NO_SPACE` or
 * `E_TARGET_UNWRITABLE`.
 * @example const target = await openVhdxTarget('disk.vhdx', size, { overwrite: false });
 */
export async function openVhdxTarget(path: string, size: number, options: VhdxTargetOptions): Promise<DiskTarget> {
  const virtualSize = Math.ceil(size / LOGICAL_SECTOR) * LOGICAL_SECTOR;
  if (virtualSize > VHDX_MAX_SIZE) {
    throw new CofferError('E_TARGET_UNWRITABLE', `cannot write ${path}: a VHDX holds at most 64 TiB, the disk has ${size} bytes`, { subject: { path } });
  }
  const file = await OutputFile.create(path, { overwrite: options.overwrite });
  return new VhdxWriter(file, size, virtualSize);
}

/** The block size written for a disk of `virtualSize` bytes (see the module comment). */
export function vhdxBlockSize(virtualSize: number): number {
  let blockSize = MIN_BLOCK_SIZE;
  while (blockSize < MAX_BLOCK_SIZE && Math.ceil(virtualSize / blockSize) > MAX_PAYLOAD_BLOCKS) blockSize *= 2;
  return blockSize;
}

/** A dynamic VHDX, blocks appended in disk order as each completes; see the module comment. */
class VhdxWriter implements DiskTarget {
  readonly zeroed = false;
  readonly sequential = true;
  private readonly layout: BatLayout;
  private readonly batLength: number;
  private readonly states: Uint8Array;
  private readonly offsets: Float64Array;
  private readonly blocks: UnitCutter;
  private readonly out: FileAppender;
  private blockIndex = 0;
  private readonly calls: SequentialCalls;

  constructor(
    private readonly file: OutputFile,
    size: number,
    virtualSize: number,
  ) {
    const blockSize = vhdxBlockSize(virtualSize);
    this.layout = { blockSize, logicalSectorSize: LOGICAL_SECTOR, virtualSize, hasParent: false };
    const { payloadBlocks, entries } = batGeometry(this.layout);
    this.batLength = Math.max(MiB, roundUp(entries * BAT_ENTRY_SIZE, MiB));
    this.states = new Uint8Array(payloadBlocks).fill(PAYLOAD_BLOCK_NOT_PRESENT);
    this.offsets = new Float64Array(payloadBlocks);
    this.blocks = new UnitCutter(blockSize);
    this.out = new FileAppender(file, BAT_OFFSET + this.batLength);
    this.calls = new SequentialCalls('VHDX target', size, () => this.out.release());
  }

  get path(): string {
    return this.file.path;
  }

  /** Whole zero blocks are only skipped (left unallocated); a partial block's share is stored as zeros. */
  skipZeros(offset: number, length: number): Promise<void> {
    return this.calls.skipZeros(offset, length, () =>
      this.blocks.skipZeros(length, { store: this.store, skip: async (blocks) => void (this.blockIndex += blocks) }),
    );
  }

  /** Whole blocks of `data` are stored straight from it (see unit-cutter.ts), with their neighbours in one write. */
  write(offset: number, data: Uint8Array): Promise<void> {
    return this.calls.write(offset, data.length, () => this.blocks.write(data, this.store));
  }

  /** The last block, the file's length, the BAT, metadata, region tables, headers, then the identifier. */
  async finish(): Promise<void> {
    await this.file.finish(async () => {
      await this.calls.ended();
      await this.blocks.finish(this.store);
      await this.out.flush();
      await this.file.truncate(this.out.end);
      await this.file.writeAt(encodeVhdxBat({ states: this.states, offsets: this.offsets }, this.layout), BAT_OFFSET);
      const metadata: NewVhdxMetadata = {
        blockSize: this.layout.blockSize,
        leaveBlocksAllocated: false,
        virtualSize: this.layout.virtualSize,
        logicalSectorSize: LOGICAL_SECTOR,
        physicalSectorSize: PHYSICAL_SECTOR,
        page83Data: randomUUID(),
      };
      await this.file.writeAt(encodeVhdxMetadata(metadata), METADATA_OFFSET);
      const regions: VhdxRegions = {
        bat: { fileOffset: BAT_OFFSET, length: this.batLength },
        metadata: { fileOffset: METADATA_OFFSET, length: METADATA_LENGTH },
      };
      const table = encodeVhdxRegionTable(regions);
      for (const at of VHDX_REGION_TABLE_OFFSETS) await this.file.writeAt(table, at);
      const header: VhdxHeader = {
        sequenceNumber: 0n,
        fileWriteGuid: randomUUID(),
        dataWriteGuid: randomUUID(),
        logGuid: NIL_GUID,
        logVersion: 0,
        version: 1,
        logOffset: LOG_OFFSET,
        logLength: LOG_LENGTH,
      };
      for (const [i, at] of VHDX_HEADER_OFFSETS.entries()) await this.file.writeAt(encodeVhdxHeader({ ...header, sequenceNumber: BigInt(i) }), at);
      // Everything the identifier vouches for is on disk before it is written.
      await this.file.sync();
      await this.file.writeAt(encodeVhdxFileIdentifier(CREATOR), 0);
    });
  }

  abort(): Promise<void> {
    return this.file.abort();
  }

  /**
   * Appends each block that holds a non-zero byte (only the part inside the virtual size),
   * its zero 64 KiB pieces left as holes (`borrowed`: see UnitCutter; otherwise copied).
   */
  private readonly store: UnitStore = async (blocks, borrowed) => {
    const { blockSize, virtualSize } = this.layout;
    for (const block of blocks) {
      const used = block.subarray(0, Math.min(blockSize, virtualSize - this.blockIndex * blockSize));
      if (!isAllZero(used)) {
        const at = await this.out.borrowSparse(borrowed ? used : Uint8Array.prototype.slice.call(used), HOLE_GRAIN);
        await this.out.skip(blockSize - used.length);
        this.states[this.blockIndex] = PAYLOAD_BLOCK_FULLY_PRESENT;
        this.offsets[this.blockIndex] = at;
      }
      this.blockIndex += 1;
    }
  };
}

function roundUp(value: number, unit: number): number {
  return Math.ceil(value / unit) * unit;
}
