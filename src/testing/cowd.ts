/**
 * Hand-built ESX sparse ("COWD", VMFS sparse) extents for tests: qemu-img reads them but cannot
 * write them. The layout is the one QEMU reads (block/vmdk.c, VMDK3Header and
 * vmdk_open_vmfs_sparse), every integer little-endian:
 *
 * - header, sector 0: magic `COWD` at 0, version at 4 (1), flags at 8 (3), capacity in sectors
 *   at 12, grain size in sectors at 16, grain directory offset in sectors at 20 (4), grain
 *   directory entries at 24, next free sector at 28; the rest of the 2 KiB is zeros here;
 * - grain directory: u32 sector offsets of grain tables (0: none), one per 4096 grains;
 * - grain table: 4096 u32 sector offsets of grains (0: unallocated, the parent's bytes).
 */
import { writeFile } from 'node:fs/promises';

const SECTOR = 512;
const GT_ENTRIES = 4096;

export interface CowdOptions {
  /** The extent's size in sectors. */
  sectors: number;
  /** Grain size in sectors (ESX: 1). */
  grainSectors: number;
  /** The grains that hold data, by grain index: each filled with its byte. */
  grains: ReadonlyMap<number, number>;
}

/** Writes the extent to `path` and returns the bytes it reads as (unallocated grains as zeros). */
export async function buildCowd(path: string, options: CowdOptions): Promise<Buffer> {
  const { sectors, grainSectors, grains } = options;
  const gdEntries = Math.ceil(sectors / (GT_ENTRIES * grainSectors));
  const gdSector = 4;
  const gdSectors = Math.ceil((gdEntries * 4) / SECTOR);
  const tables = [...new Set([...grains.keys()].map((g) => Math.floor(g / GT_ENTRIES)))].sort((a, b) => a - b);
  const gtSectors = (GT_ENTRIES * 4) / SECTOR;
  let next = gdSector + gdSectors;
  const tableAt = new Map<number, number>();
  for (const t of tables) {
    tableAt.set(t, next);
    next += gtSectors;
  }
  const grainAt = new Map<number, number>();
  for (const g of [...grains.keys()].sort((a, b) => a - b)) {
    grainAt.set(g, next);
    next += grainSectors;
  }
  const image = Buffer.alloc(next * SECTOR);
  image.write('COWD', 0, 'latin1');
  image.writeUInt32LE(1, 4);
  image.writeUInt32LE(3, 8);
  image.writeUInt32LE(sectors, 12);
  image.writeUInt32LE(grainSectors, 16);
  image.writeUInt32LE(gdSector, 20);
  image.writeUInt32LE(gdEntries, 24);
  image.writeUInt32LE(next, 28);
  for (const [t, at] of tableAt) image.writeUInt32LE(at, gdSector * SECTOR + t * 4);
  const expected = Buffer.alloc(sectors * SECTOR);
  for (const [g, fill] of grains) {
    const table = tableAt.get(Math.floor(g / GT_ENTRIES)) as number;
    const at = grainAt.get(g) as number;
    image.writeUInt32LE(at, table * SECTOR + (g % GT_ENTRIES) * 4);
    image.fill(fill, at * SECTOR, (at + grainSectors) * SECTOR);
    expected.fill(fill, g * grainSectors * SECTOR, Math.min(expected.length, (g + 1) * grainSectors * SECTOR));
  }
  await writeFile(path, image);
  return expected;
}

/** The `vmfsSparse` descriptor ESX writes for a snapshot delta: one VMFSSPARSE extent, and its parent when given. */
export function cowdDescriptor(extentFile: string, sectors: number, parent?: { file: string; cid: string }): string {
  return [
    '# Disk DescriptorFile',
    'version=1',
    'encoding="UTF-8"',
    'CID=c0d0c0d0',
    `parentCID=${parent?.cid ?? 'ffffffff'}`,
    'createType="vmfsSparse"',
    ...(parent ? [`parentFileNameHint="${parent.file}"`] : []),
    '',
    '# Extent description',
    `RW ${sectors} VMFSSPARSE "${extentFile}"`,
    '',
    '# The Disk Data Base',
    '#DDB',
    'ddb.virtualHWVersion = "8"',
    '',
  ].join('\n');
}
