/**
 * The layout of a VMDK disk: the extents its descriptor lists, one after the other in the
 * virtual disk, each opened and checked against its file. A monolithic sparse or
 * stream-optimized file is one sparse extent holding its own descriptor; every other layout
 * is a descriptor file naming extent files in its folder.
 */
import { dirname, resolve } from 'node:path';
import { ImageFile } from '../image-file.js';
import type { ExtentLine, VmdkDescriptor } from './descriptor.js';
import { MAX_CAPACITY_SECTORS, SECTOR, isSparseHeader } from './sparse-header.js';
import { CowdExtent, isCowdHeader } from './cowd-extent.js';
import { SeSparseExtent } from './sesparse-extent.js';
import { SparseExtent } from './sparse-extent.js';

/** A run of the virtual disk, `[start, start + length)` in bytes, and what stores it. */
export type Piece =
  | { start: number; length: number; kind: 'flat'; file: ImageFile; base: number }
  | { start: number; length: number; kind: 'sparse'; extent: SparseExtent }
  | { start: number; length: number; kind: 'sesparse'; extent: SeSparseExtent }
  | { start: number; length: number; kind: 'cowd'; extent: CowdExtent }
  | { start: number; length: number; kind: 'zero' };

/** Layouts whose extents Coffer reads (flat, hosted sparse, ESXi's flat variants, and its COWD and seSparse snapshots). */
const READABLE_CREATE_TYPES = new Set([
  'monolithicSparse',
  'streamOptimized',
  'monolithicFlat',
  'twoGbMaxExtentSparse',
  'twoGbMaxExtentFlat',
  'vmfs',
  'vmfsThin',
  'vmfsPreallocated',
  'vmfsEagerZeroedThick',
  'vmfsSparse',
  'seSparse',
]);

/**
 * Opens the extent files `descriptor` (read from `descriptorFile`) names, in its folder.
 * On failure, closes what it opened. Throws `E_UNSUPPORTED_FORMAT` for layouts and extent
 * types Coffer does not read, `E_IMAGE_INVALID` for extents that contradict their files.
 */
export async function openDescriptorLayout(descriptorFile: ImageFile, descriptor: VmdkDescriptor): Promise<Piece[]> {
  const createType = descriptor.createType;
  if (createType === null) throw descriptorFile.invalid('the VMDK descriptor has no createType');
  if (!READABLE_CREATE_TYPES.has(createType)) throw descriptorFile.unsupported(`the VMDK layout ${JSON.stringify(createType)}`);
  if (descriptor.extents.length === 0) throw descriptorFile.invalid('the VMDK descriptor lists no extents');
  const totalSectors = descriptor.extents.reduce((sum, line) => sum + line.sectors, 0);
  if (totalSectors > MAX_CAPACITY_SECTORS) throw descriptorFile.invalid(`the extents add up to ${totalSectors} sectors, more than 64 TiB`);

  const folder = dirname(descriptorFile.path);
  const pieces: Piece[] = [];
  try {
    let start = 0;
    for (const line of descriptor.extents) {
      pieces.push(await openExtent(descriptorFile, folder, line, start));
      start += line.sectors * SECTOR;
    }
    return pieces;
  } catch (error) {
    await closePieces(pieces);
    throw error;
  }
}

async function openExtent(descriptorFile: ImageFile, folder: string, line: ExtentLine, start: number): Promise<Piece> {
  const length = line.sectors * SECTOR;
  if (line.access === 'NOACCESS') throw descriptorFile.unsupported('a VMDK extent marked NOACCESS');
  switch (line.type) {
    case 'ZERO':
      return { start, length, kind: 'zero' };
    case 'FLAT':
    case 'VMFS': {
      const file = await ImageFile.open(resolve(folder, line.fileName as string));
      const base = line.offset * SECTOR;
      if (base + length > file.size) {
        await file.close();
        throw file.invalid(`the flat extent needs bytes ${base}..${base + length} (descriptor ${descriptorFile.path}) but the file has ${file.size}`);
      }
      return { start, length, kind: 'flat', file, base };
    }
    case 'SPARSE':
    case 'VMFSSPARSE': {
      const file = await ImageFile.open(resolve(folder, line.fileName as string));
      try {
        const head = await file.readAt(0, Math.min(file.size, 4));
        if (isCowdHeader(head)) {
          // ESX's snapshot deltas on VMFS 3/5 (cowd-extent.ts).
          const extent = await CowdExtent.open(file);
          if (extent.bytes < length) throw file.invalid(`the COWD extent holds ${extent.bytes / SECTOR} sectors, the descriptor ${descriptorFile.path} says ${line.sectors}`);
          return { start, length, kind: 'cowd', extent };
        }
        if (!isSparseHeader(head)) throw file.invalid(`descriptor ${descriptorFile.path} names it as a sparse extent, but it has no KDMV header`);
        const extent = await SparseExtent.open(file, start / SECTOR);
        if (extent.header.capacity < line.sectors) {
          throw file.invalid(`the sparse extent holds ${extent.header.capacity} sectors, the descriptor ${descriptorFile.path} says ${line.sectors}`);
        }
        return { start, length, kind: 'sparse', extent };
      } catch (error) {
        await file.close();
        throw error;
      }
    }
    case 'SESPARSE': {
      const file = await ImageFile.open(resolve(folder, line.fileName as string));
      try {
        const extent = await SeSparseExtent.open(file);
        if (extent.bytes < length) throw file.invalid(`the seSparse extent holds ${extent.bytes / SECTOR} sectors, the descriptor ${descriptorFile.path} says ${line.sectors}`);
        return { start, length, kind: 'sesparse', extent };
      } catch (error) {
        await file.close();
        throw error;
      }
    }
    case 'VMFSRDM':
    case 'VMFSRAW':
      throw descriptorFile.unsupported(`VMDK ${line.type} extents`);
  }
}

/** Closes every file the pieces hold; idempotent. */
export async function closePieces(pieces: readonly Piece[]): Promise<void> {
  for (const piece of pieces) {
    if (piece.kind === 'flat') await piece.file.close();
    else if (piece.kind === 'sparse' || piece.kind === 'sesparse' || piece.kind === 'cowd') await piece.extent.file.close();
  }
}
