/**
 * Writes a single-file VMDK in one pass, as the restore feeds the disk in order: 64 KiB
 * grains, 512 entries per grain table (32 MiB of disk each), an embedded descriptor, grains
 * that are all zeros left unallocated. Two subformats:
 *
 * monolithicSparse (VMware Workstation's and qemu-img's default; version 1, flags: newline
 * test, redundant grain directory), laid out as qemu-img and VMware lay it out:
 * ```
 * sector 0        header (written last: it makes the image valid)
 * sectors 1..20   descriptor
 * 21              redundant grain directory, then its grain tables (4 sectors each)
 * then            grain directory, then its grain tables, all preallocated
 * overHead        (rounded up to a grain) grains, appended in disk order
 * ```
 * Both copies of a grain table are written when its 32 MiB are complete.
 *
 * streamOptimized (what VMware imports, inside OVA/OVF; version 3, flags: newline test,
 * compressed grains, markers; header gdOffset 0xFFFFFFFFFFFFFFFF):
 * ```
 * sector 0        header; descriptor at 1..20; first grain at sector 128
 * grains          per non-zero grain: grain marker (LBA, length) + zlib stream, padded to 512
 * per table       after its grains, if it has any: GT marker sector + 4 sectors of table
 * then            GD marker + grain directory (entry 0 for tables omitted), footer marker +
 *                 footer (the header with the real gdOffset), end-of-stream marker
 * ```
 * Marker layouts are in stream-optimized.ts, the header's in sparse-header.ts. Compression
 * runs on libuv's thread pool (zlib's async API), off the main thread.
 *
 * Sizes: capacity counts whole sectors, so an odd size is rounded up to the next 512 bytes,
 * the added bytes zero. Hosted sparse extents address sectors in 32 bits, so disks up to
 * 2 TiB are accepted. The descriptor's geometry is IDE's (16 heads, 63 sectors, at most
 * 16383 cylinders) with adapterType "ide" and virtualHWVersion "4", qemu-img's defaults,
 * which every VMware product and guest reads.
 */
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { CofferError } from '../../errors/index.js';
import { SequentialCalls } from '../sequential-calls.js';
import { OutputFile } from '../output-file.js';
import { isAllZero, UnitCutter, type UnitStore } from '../unit-cutter.js';
import type { DiskTarget } from '../raw-target.js';
import { capacityOf, GRAIN_SIZE, GTES_PER_GT, MonolithicSparseLayout, StreamOptimizedLayout, type GrainLayout, type GrainToStore } from './sparse-layout-writer.js';

/** The two single-file layouts written; see the module comment. */
export type VmdkSubformat = 'streamOptimized' | 'monolithicSparse';

/** Options of {@link openVmdkTarget}. */
export interface VmdkTargetOptions {
  /** Replace an existing file (otherwise refused). */
  overwrite: boolean;
  subformat: VmdkSubformat;
}

/** Hosted sparse extents address sectors in 32 bits: 2 TiB. */
export const VMDK_MAX_SIZE = 2 * 1024 ** 4;

/**
 * Creates a VMDK of `size` bytes at `path` to restore into (refuses to replace a file unless
 * `overwrite`). Throws `E_TARGET_UNWRITABLE` when the file cannot be created or the disk is
 * larger than 2 TiB.
 * @example const target = await openVmdkTarget('disk.vmdk', size, { overwrite: false, subformat: 'streamOptimized' });
 */
export async function openVmdkTarget(path: string, size: number, options: VmdkTargetOptions): Promise<DiskTarget> {
  if (size > VMDK_MAX_SIZE) {
    throw new CofferError('E_TARGET_UNWRITABLE', `cannot write ${path}: a sparse VMDK holds at most 2 TiB, the disk has ${size} bytes`, { subject: { path } });
  }
  const file = await OutputFile.create(path, { overwrite: options.overwrite });
  const layout = options.subformat === 'streamOptimized' ? new StreamOptimizedLayout(file, size) : new MonolithicSparseLayout(file, size);
  return new VmdkWriter(file, size, { layout, subformat: options.subformat });
}

/** Cuts the disk into grains and grain tables, in order, and hands them to the layout. */
class VmdkWriter implements DiskTarget {
  readonly zeroed = false;
  readonly sequential = true;
  private readonly grains = new UnitCutter(GRAIN_SIZE);
  private grainIndex = 0;
  private table = Buffer.alloc(GTES_PER_GT * 4);
  private tableIndex = 0;
  private tableUsed = false;
  private readonly calls: SequentialCalls;

  private readonly layout: GrainLayout;
  private readonly subformat: VmdkSubformat;

  constructor(
    private readonly file: OutputFile,
    private readonly size: number,
    how: { layout: GrainLayout; subformat: VmdkSubformat },
  ) {
    this.layout = how.layout;
    this.subformat = how.subformat;
    this.calls = new SequentialCalls('VMDK target', size, () => this.layout.out.release());
  }

  get path(): string {
    return this.file.path;
  }

  /**
   * Whole grains of `data` go to the layout straight from it (see unit-cutter.ts), a table's
   * worth at a time (the layout compresses them together or gathers them into one write).
   */
  write(offset: number, data: Uint8Array): Promise<void> {
    return this.calls.write(offset, data.length, () => this.grains.write(data, this.store));
  }

  /** Whole zero grains only advance the tables; a partial grain's share is stored as zeros. */
  skipZeros(offset: number, length: number): Promise<void> {
    return this.calls.skipZeros(offset, length, () =>
      this.grains.skipZeros(length, {
        store: this.store,
        skip: async (grains) => {
          for (let i = 0; i < grains; i++) {
            await this.enterTable(Math.floor(this.grainIndex / GTES_PER_GT));
            this.grainIndex += 1;
          }
        },
      }),
    );
  }

  async finish(): Promise<void> {
    await this.file.finish(async () => {
      await this.calls.ended();
      await this.grains.finish(this.store);
      await this.flushTable();
      await this.layout.finish(descriptorText(basename(this.path), { createType: this.subformat, capacity: capacityOf(this.size) }));
    });
  }

  abort(): Promise<void> {
    return this.file.abort();
  }

  /**
   * Consecutive grains from `grainIndex` on: the non-zero ones of each grain table go to the
   * layout together, then the table is closed when the next one starts. The cutter's own
   * buffer (not borrowed) is copied: a layout may keep grains until its appender is released.
   */
  private readonly store: UnitStore = async (grains, borrowed) => {
    let batch: GrainToStore[] = [];
    const store = async () => {
      if (batch.length === 0) return;
      const sectors = await this.layout.storeGrains(batch);
      batch.forEach((grain, i) => this.table.writeUInt32LE(sectors[i] as number, (grain.index % GTES_PER_GT) * 4));
      this.tableUsed = true;
      batch = [];
    };
    for (const data of grains) {
      const tableIndex = Math.floor(this.grainIndex / GTES_PER_GT);
      if (tableIndex !== this.tableIndex) {
        await store();
        await this.enterTable(tableIndex);
      }
      if (!isAllZero(data)) batch.push({ data: borrowed ? data : Uint8Array.prototype.slice.call(data), index: this.grainIndex });
      this.grainIndex += 1;
    }
    await store();
  };

  /** Moves to grain table `index`, storing the current one. */
  private async enterTable(index: number): Promise<void> {
    if (index === this.tableIndex) return;
    await this.flushTable();
    this.tableIndex = index;
  }

  private async flushTable(): Promise<void> {
    await this.layout.storeTable(this.table, this.tableIndex, this.tableUsed);
    this.table = Buffer.alloc(GTES_PER_GT * 4);
    this.tableUsed = false;
  }
}

/**
 * The embedded descriptor (layout in descriptor.ts): a fresh random CID, no parent, one
 * sparse extent naming the file itself, and IDE geometry.
 */
function descriptorText(fileName: string, { createType, capacity }: { createType: VmdkSubformat; capacity: number }): string {
  const heads = 16;
  const sectors = 63;
  const cylinders = Math.min(16383, Math.ceil(capacity / (heads * sectors)));
  return [
    '# Disk DescriptorFile',
    'version=1',
    'encoding="UTF-8"',
    `CID=${randomBytes(4).toString('hex')}`,
    'parentCID=ffffffff',
    `createType="${createType}"`,
    '',
    '# Extent description',
    `RW ${capacity} SPARSE "${fileName.replace(/"/g, '_')}"`,
    '',
    '# The Disk Data Base',
    '#DDB',
    '',
    'ddb.virtualHWVersion = "4"',
    `ddb.geometry.cylinders = "${cylinders}"`,
    `ddb.geometry.heads = "${heads}"`,
    `ddb.geometry.sectors = "${sectors}"`,
    'ddb.adapterType = "ide"',
    '',
  ].join('\n');
}
