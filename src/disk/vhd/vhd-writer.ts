/**
 * Writes a VHD (QEMU: "vpc") in one pass, as the restore feeds the disk in order. Two
 * subformats:
 *
 * Dynamic (sparse; 2 MiB blocks, as qemu-img and Hyper-V write them):
 * ```
 * 0                 copy of the footer (written last: it makes the image valid)
 * 512               dynamic header (1024 bytes), table offset 1536
 * 1536              BAT: ceil(size / 2 MiB) big-endian u32 entries, padded to 512 bytes
 * then              each block holding a non-zero byte, in disk order: its sector bitmap
 *                   (512 bytes, all ones: every sector is in the block) then 2 MiB of data
 * end − 512         the footer
 * ```
 * Fixed: the disk's bytes (zero ranges left as holes of a sparse file), then the footer.
 *
 * Sizes. The footer's current size counts whole sectors: an odd size is rounded up to the
 * next 512 bytes, the added bytes zero (as the qcow2 writer does). The CHS geometry is the
 * VHD specification's (appendix "CHS calculation"), which rarely multiplies out to the size
 * exactly; QEMU takes C×H×S as the size unless the creator application is one it knows to
 * mean "current size" (vhd-footer.ts), so the creator is written as "qem2", what qemu-img
 * itself writes with `force_size`. Hyper-V, VirtualBox and Coffer read the current size.
 * Whole blocks go to the file straight from the caller's buffer, bitmap and data in one
 * `pwritev` with their neighbours (file-appender.ts). Memory: one 2 MiB block, the blocks
 * copied while waiting for a write (at most 8 MiB) and the BAT (4 bytes per 2 MiB of disk).
 */
import { randomBytes } from 'node:crypto';
import { CofferError } from '../../errors/index.js';
import { FileAppender } from '../file-appender.js';
import { OutputFile } from '../output-file.js';
import { SequentialCalls } from '../sequential-calls.js';
import { isAllZero, UnitCutter, type UnitStore } from '../unit-cutter.js';
import type { DiskTarget } from '../raw-target.js';
import { BAT_UNALLOCATED, encodeVhdDynamicHeader, VHD_DYNAMIC_HEADER_SIZE } from './vhd-dynamic-header.js';
import { encodeVhdFooter, VHD_EPOCH_UNIX_SECONDS, VHD_FOOTER_SIZE, VHD_MAX_SIZE, VHD_SECTOR, type VhdFooter } from './vhd-footer.js';

/** The two kinds of VHD written: sparse blocks, or the disk as is followed by the footer. */
export type VhdSubformat = 'dynamic' | 'fixed';

/** Options of {@link openVhdTarget}. */
export interface VhdTargetOptions {
  /** Replace an existing file (otherwise refused). */
  overwrite: boolean;
  subformat: VhdSubformat;
  /** The clock for the footer's time stamp; defaults to the system clock. */
  now?: () => Date;
}

const BLOCK_SIZE = 2 * 1024 * 1024;
const BITMAP_SIZE = Math.ceil(BLOCK_SIZE / VHD_SECTOR / 8 / VHD_SECTOR) * VHD_SECTOR;
const HEADER_OFFSET = VHD_FOOTER_SIZE;
const TABLE_OFFSET = HEADER_OFFSET + VHD_DYNAMIC_HEADER_SIZE;
/** Written in the footer: qemu-img's own "current size is the size" creator, and its version. */
const CREATOR_APP = 'qem2';
const CREATOR_VERSION = 0x0005_0003;
const CREATOR_OS = 'Wi2k';
const FEATURES_RESERVED = 2;
const FORMAT_VERSION = 0x0001_0000;
/** Zero ranges of a fixed disk smaller than this are written rather than skipped. */
const FIXED_HOLE_GRAIN = 64 * 1024;

/**
 * Creates a VHD of `size` bytes at `path` to restore into (refuses to replace a file unless
 * `overwrite`). Throws `E_TARGET_UNWRITABLE` when the file cannot be created or the size
 * exceeds the format's 2040 GiB.
 * @example const target = await openVhdTarget('disk.vhd', size, { overwrite: false, subformat: 'dynamic' });
 */
export async function openVhdTarget(path: string, size: number, options: VhdTargetOptions): Promise<DiskTarget> {
  const virtualSize = Math.ceil(size / VHD_SECTOR) * VHD_SECTOR;
  if (virtualSize > VHD_MAX_SIZE) {
    throw new CofferError('E_TARGET_UNWRITABLE', `cannot write ${path}: a VHD holds at most 2040 GiB, the disk has ${size} bytes`, { subject: { path } });
  }
  const file = await OutputFile.create(path, { overwrite: options.overwrite });
  const footer = footerFor(virtualSize, options.subformat, (options.now ?? (() => new Date()))());
  return options.subformat === 'fixed' ? new FixedVhdWriter(file, size, footer) : new DynamicVhdWriter(file, size, footer);
}

/** The footer of a new disk of `virtualSize` bytes (a multiple of 512). */
function footerFor(virtualSize: number, subformat: VhdSubformat, now: Date): Omit<VhdFooter, 'checksum'> {
  return {
    diskType: subformat,
    features: FEATURES_RESERVED,
    version: FORMAT_VERSION,
    dataOffset: subformat === 'fixed' ? null : HEADER_OFFSET,
    timestamp: Math.max(0, Math.floor(now.getTime() / 1000) - VHD_EPOCH_UNIX_SECONDS) >>> 0,
    creatorApp: CREATOR_APP,
    creatorVersion: CREATOR_VERSION,
    creatorOs: CREATOR_OS,
    originalSize: virtualSize,
    currentSize: virtualSize,
    geometry: vhdGeometry(virtualSize / VHD_SECTOR),
    uniqueId: randomBytes(16).toString('hex'),
    savedState: false,
  };
}

/**
 * The CHS geometry the VHD specification assigns to a disk of `totalSectors` sectors
 * (appendix "CHS calculation"): at most 65535 × 16 × 255, C×H×S ≤ the sectors.
 */
export function vhdGeometry(totalSectors: number): VhdFooter['geometry'] {
  const sectors = Math.min(totalSectors, 65535 * 16 * 255);
  let sectorsPerTrack: number;
  let heads: number;
  let cylinderTimesHeads: number;
  if (sectors >= 65535 * 16 * 63) {
    sectorsPerTrack = 255;
    heads = 16;
    cylinderTimesHeads = Math.floor(sectors / sectorsPerTrack);
  } else {
    sectorsPerTrack = 17;
    cylinderTimesHeads = Math.floor(sectors / sectorsPerTrack);
    heads = Math.max(4, Math.floor((cylinderTimesHeads + 1023) / 1024));
    if (cylinderTimesHeads >= heads * 1024 || heads > 16) {
      sectorsPerTrack = 31;
      heads = 16;
      cylinderTimesHeads = Math.floor(sectors / sectorsPerTrack);
    }
    if (cylinderTimesHeads >= heads * 1024) {
      sectorsPerTrack = 63;
      heads = 16;
      cylinderTimesHeads = Math.floor(sectors / sectorsPerTrack);
    }
  }
  return { cylinders: Math.floor(cylinderTimesHeads / heads), heads, sectorsPerTrack };
}

/** A fixed VHD: data at its own offsets (zero ranges skipped, left as holes), footer at the end. */
class FixedVhdWriter implements DiskTarget {
  readonly zeroed = false;
  readonly sequential = true;
  private readonly out: FileAppender;
  private readonly calls: SequentialCalls;

  constructor(
    private readonly file: OutputFile,
    size: number,
    private readonly footer: Omit<VhdFooter, 'checksum'>,
  ) {
    this.out = new FileAppender(file, 0);
    this.calls = new SequentialCalls('VHD target', size, () => this.out.release());
  }

  get path(): string {
    return this.file.path;
  }

  /** The next call may come before this one's bytes are written (in-order.ts). */
  write(offset: number, data: Uint8Array): Promise<void> {
    return this.calls.write(offset, data.length, async () => void (await this.out.borrowSparse(data, FIXED_HOLE_GRAIN)));
  }

  skipZeros(offset: number, length: number): Promise<void> {
    return this.calls.skipZeros(offset, length, () => this.out.skip(length));
  }

  async finish(): Promise<void> {
    await this.file.finish(async () => {
      await this.calls.ended();
      await this.out.flush();
      await this.file.writeAt(encodeVhdFooter(this.footer), this.footer.currentSize);
    });
  }

  abort(): Promise<void> {
    return this.file.abort();
  }
}

/** A dynamic VHD, blocks appended in disk order as each completes; see the module comment. */
class DynamicVhdWriter implements DiskTarget {
  readonly zeroed = false;
  readonly sequential = true;
  private readonly bat: Uint32Array;
  private readonly blocks = new UnitCutter(BLOCK_SIZE);
  private readonly out: FileAppender;
  private blockIndex = 0;
  private readonly calls: SequentialCalls;

  constructor(
    private readonly file: OutputFile,
    size: number,
    private readonly footer: Omit<VhdFooter, 'checksum'>,
  ) {
    this.bat = new Uint32Array(Math.max(1, Math.ceil(footer.currentSize / BLOCK_SIZE))).fill(BAT_UNALLOCATED);
    this.out = new FileAppender(file, TABLE_OFFSET + roundUp(this.bat.length * 4, VHD_SECTOR));
    this.calls = new SequentialCalls('VHD target', size, () => this.out.release());
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

  /**
   * Whole blocks of `data` are stored straight from it (see unit-cutter.ts), with their
   * neighbours in one write; the next call may come before this one's bytes are written.
   */
  write(offset: number, data: Uint8Array): Promise<void> {
    return this.calls.write(offset, data.length, () => this.blocks.write(data, this.store));
  }

  /** The last block, the footer at the end, the BAT, the header, then the footer's copy at 0. */
  async finish(): Promise<void> {
    await this.file.finish(async () => {
      await this.calls.ended();
      await this.blocks.finish(this.store);
      const footer = encodeVhdFooter(this.footer);
      await this.out.take(footer);
      await this.out.flush();
      const table = Buffer.alloc(roundUp(this.bat.length * 4, VHD_SECTOR), 0xff);
      this.bat.forEach((sector, i) => table.writeUInt32BE(sector, i * 4));
      await this.file.writeAt(table, TABLE_OFFSET);
      await this.file.writeAt(encodeVhdDynamicHeader({ tableOffset: TABLE_OFFSET, maxTableEntries: this.bat.length, blockSize: BLOCK_SIZE }), HEADER_OFFSET);
      await this.file.writeAt(footer, 0);
    });
  }

  abort(): Promise<void> {
    return this.file.abort();
  }

  /** Appends each block (bitmap, then data) unless it is all zeros (`borrowed`: see UnitCutter). */
  private readonly store: UnitStore = async (blocks, borrowed) => {
    for (const block of blocks) {
      if (!isAllZero(block)) {
        const at = this.out.end;
        if (at / VHD_SECTOR >= BAT_UNALLOCATED) throw new Error('VHD file would exceed what its table can address');
        await this.out.take(ALL_PRESENT_BITMAP);
        if (borrowed) await this.out.borrow(block);
        else await this.out.copy(block);
        this.bat[this.blockIndex] = at / VHD_SECTOR;
      }
      this.blockIndex += 1;
    }
  };
}

/** Every sector of the block is present in it. */
const ALL_PRESENT_BITMAP = Buffer.alloc(BITMAP_SIZE, 0xff);

function roundUp(value: number, unit: number): number {
  return Math.ceil(value / unit) * unit;
}
