/**
 * Hand-built VMware seSparse extents for tests: qemu-img reads seSparse but cannot write it,
 * and no VMware tool runs here. The layout (src/disk/vmdk/sesparse-extent.ts documents the
 * format) is the smallest QEMU 7.2 accepts: header at sector 0, volatile header at 1, grain
 * directory at sector 8, grain tables from sector 16, grains from sector 128 + 64 per table.
 * qemu-img is the oracle the tests compare with.
 */
import { open, writeFile } from 'node:fs/promises';

const SECTOR = 512;
const GRAIN = 4096;
const GT_ENTRIES = 4096;
const GT_SPAN = GT_ENTRIES * GRAIN;

/** What each 4 KiB grain of the extent holds. */
export type SeSparseGrain = { kind: 'data'; fill: number; index?: number } | { kind: 'zero' } | { kind: 'unmapped' } | { kind: 'unallocated' };

/** Options of {@link buildSeSparse}. */
export interface SeSparseOptions {
  /** The extent's size in bytes (a multiple of 4 KiB). */
  size: number;
  /** Grains by number; those not listed are unallocated. A data grain's `index` places it in the grain area (default: next free). */
  grains: ReadonlyMap<number, SeSparseGrain>;
  /** Sets the volatile header's replay-journal field (a dirty extent). */
  dirtyJournal?: boolean;
  /** Raw grain table entries written over the computed ones (hostile tests). */
  rawEntries?: ReadonlyMap<number, bigint>;
}

/** Grain table entry of an allocated grain at `index` in the grain area (QEMU's bit swizzle, inverted). */
export function allocatedEntry(index: number): bigint {
  const i = BigInt(index);
  return 0x3000_0000_0000_0000n | ((i & 0xfffn) << 48n) | (i >> 12n);
}

/** Writes the extent file; returns its grains' bytes as the guest sees them (zeros where unallocated). */
export async function buildSeSparse(path: string, options: SeSparseOptions): Promise<Buffer> {
  const tables = Math.ceil(options.size / GT_SPAN);
  const gdSectors = Math.max(1, Math.ceil((tables * 8) / SECTOR));
  const gtOffsetSectors = 8 + gdSectors + 8;
  const grainsOffsetSectors = gtOffsetSectors + tables * 64;
  const header = Buffer.alloc(SECTOR);
  const put = (at: number, value: bigint | number) => header.writeBigUInt64LE(BigInt(value), at);
  put(0, 0xcafebaben);
  put(8, 0x0000_0002_0000_0001n);
  put(16, options.size / SECTOR);
  put(24, 8);
  put(32, 64);
  put(80, 1); // volatile header
  put(88, 1);
  put(96, 2); // journal header and journal: never replayed
  put(104, 1);
  put(112, 3);
  put(120, 5);
  put(128, 8); // grain directory
  put(136, gdSectors);
  put(144, gtOffsetSectors);
  put(152, tables * 64);
  put(192, grainsOffsetSectors);
  const volatile = Buffer.alloc(SECTOR);
  volatile.writeBigUInt64LE(0xcafecafen, 0);
  volatile.writeBigUInt64LE(1n, 8);
  volatile.writeBigUInt64LE(options.dirtyJournal ? 1n : 0n, 24);

  const directory = Buffer.alloc(gdSectors * SECTOR);
  const gtArea = Buffer.alloc(tables * GT_ENTRIES * 8);
  const guest = Buffer.alloc(options.size);
  const grains: { index: number; bytes: Buffer }[] = [];
  let nextIndex = 0;
  const used = new Set([...options.grains.values()].flatMap((g) => (g.kind === 'data' && g.index !== undefined ? [g.index] : [])));
  for (const [grain, content] of [...options.grains].sort((a, b) => a[0] - b[0])) {
    if (grain * GRAIN >= options.size) throw new RangeError(`grain ${grain} is past the extent`);
    const table = Math.floor(grain / GT_ENTRIES);
    directory.writeBigUInt64LE(0x1000_0000_0000_0000n | BigInt(table), table * 8);
    const at = (table * GT_ENTRIES + (grain % GT_ENTRIES)) * 8;
    if (content.kind === 'data') {
      while (content.index === undefined && used.has(nextIndex)) nextIndex++;
      const index = content.index ?? nextIndex++;
      gtArea.writeBigUInt64LE(allocatedEntry(index), at);
      const bytes = Buffer.alloc(GRAIN, content.fill);
      grains.push({ index, bytes });
      bytes.copy(guest, grain * GRAIN);
    } else if (content.kind === 'zero') gtArea.writeBigUInt64LE(0x2000_0000_0000_0000n, at);
    else if (content.kind === 'unmapped') gtArea.writeBigUInt64LE(0x1000_0000_0000_0000n, at);
  }
  for (const [grain, entry] of options.rawEntries ?? []) {
    const table = Math.floor(grain / GT_ENTRIES);
    directory.writeBigUInt64LE(0x1000_0000_0000_0000n | BigInt(table), table * 8);
    gtArea.writeBigUInt64LE(entry, (table * GT_ENTRIES + (grain % GT_ENTRIES)) * 8);
  }
  const grainsOffset = grainsOffsetSectors * SECTOR;
  const end = grains.reduce((max, g) => Math.max(max, grainsOffset + (g.index + 1) * GRAIN), grainsOffset);
  const file = Buffer.alloc(grainsOffset);
  header.copy(file, 0);
  volatile.copy(file, SECTOR);
  directory.copy(file, 8 * SECTOR);
  gtArea.copy(file, gtOffsetSectors * SECTOR);
  await writeFile(path, file);
  // Grains far out (a high index) leave the file sparse between.
  const handle = await open(path, 'r+');
  try {
    for (const g of grains) await handle.write(g.bytes, 0, GRAIN, grainsOffset + g.index * GRAIN);
    await handle.truncate(end);
  } finally {
    await handle.close();
  }
  return guest;
}

/** The descriptor of a one-extent seSparse disk (optionally a delta over `parent` with its CID). */
export function seSparseDescriptor(extentFile: string, size: number, parent?: { file: string; cid: string }): string {
  return [
    '# Disk DescriptorFile',
    'version=1',
    'CID=5e5e5e5e',
    `parentCID=${parent?.cid ?? 'ffffffff'}`,
    'createType="seSparse"',
    ...(parent ? [`parentFileNameHint="${parent.file}"`] : []),
    '',
    '# Extent description',
    `RW ${size / SECTOR} SESPARSE "${extentFile}"`,
    '',
    '# The Disk Data Base',
    '#DDB',
    'ddb.virtualHWVersion = "14"',
    '',
  ].join('\n');
}
