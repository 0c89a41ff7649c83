import { fsCorrupt } from '../fs-errors.js';
import { hashCandidates, xfsNameHash } from './dir-hash-index.js';
import { parseDataBlock } from './dir-data-block.js';
import { parseShortformDir, type RawDirEntry } from './dir-shortform.js';
import { findExtent, type MappedExtent } from './extent-map.js';
import { ForkFormat, type XfsInode } from './inode.js';
import type { MetadataReader } from './metadata-reader.js';

/**
 * The four shapes of an XFS directory, read the same way: short-form (entries in the
 * inode), block (one directory block holding entries and their hash index), leaf (data
 * blocks, one hash index block at 32 GiB), node (data blocks, a B+tree of hash index blocks
 * at 32 GiB, free-space blocks at 64 GiB). Listing scans the data blocks (below 32 GiB);
 * lookup descends the hash index where there is one.
 */
const LEAF_SPACE_BYTES = 2 ** 35;

/** Directory reading for one filesystem. */
export class DirectoryReader {
  constructor(private readonly reader: MetadataReader) {}

  /** The raw entries of a directory (without `.` and `..`), in on-disk order. */
  async entries(dir: XfsInode, extents: () => Promise<MappedExtent[]>): Promise<RawDirEntry[]> {
    const sb = this.reader.sb;
    if (dir.format === ForkFormat.Local) return parseShortformDir(dir.dataFork, dir.size, sb.hasFtype, `directory ${dir.ino}`);
    const map = await extents();
    const out: RawDirEntry[] = [];
    const perBlock = sb.dirBlockSize / sb.blockSize;
    const dataEnd = Math.min(dir.size, LEAF_SPACE_BYTES) / sb.blockSize;
    let next = 0;
    for (const e of map) {
      let block = Math.max(next, Math.floor(e.fileBlock / perBlock) * perBlock);
      for (; block < e.fileBlock + e.blocks && block < dataEnd; block += perBlock) {
        const bytes = await this.readDirBlock(dir, map, block);
        for (const entry of parseDataBlock(bytes, dir.ino, sb.hasFtype, `directory ${dir.ino} block ${block}`)) {
          if (!isDotOrDotDot(entry.name)) out.push(entry);
        }
      }
      next = block;
    }
    return out;
  }

  /** The inode number `name` (UTF-8 bytes) names in `dir`, using the hash index where there is one. */
  async lookup(dir: XfsInode, name: Uint8Array, extents: () => Promise<MappedExtent[]>): Promise<bigint | undefined> {
    const sb = this.reader.sb;
    const indexBlock = LEAF_SPACE_BYTES / sb.blockSize;
    if (dir.format !== ForkFormat.Local && !sb.asciiCi) {
      const map = await extents();
      if (findExtent(map, indexBlock) !== undefined) {
        const addresses = await hashCandidates(xfsNameHash(name), indexBlock, (block) => this.readDirBlock(dir, map, block), dir.ino);
        for (const address of addresses) {
          const block = Math.floor(address / sb.dirBlockSize) * (sb.dirBlockSize / sb.blockSize);
          const offset = address % sb.dirBlockSize;
          const entries = parseDataBlock(await this.readDirBlock(dir, map, block), dir.ino, sb.hasFtype, `directory ${dir.ino} block ${block}`);
          const hit = entries.find((e) => e.offset === offset);
          if (hit === undefined) throw fsCorrupt('xfs', `directory ${dir.ino}: hash index points to no entry at ${address}`);
          if (Buffer.compare(hit.name, name) === 0) return hit.ino;
        }
        return undefined;
      }
    }
    const all = await this.entries(dir, extents);
    return all.find((e) => Buffer.compare(e.name, name) === 0)?.ino;
  }

  /** One directory block (`dirBlockSize` bytes) at logical filesystem block `block`; every block of it must be mapped. */
  private async readDirBlock(dir: XfsInode, map: readonly MappedExtent[], block: number): Promise<Uint8Array> {
    const sb = this.reader.sb;
    const perBlock = sb.dirBlockSize / sb.blockSize;
    const out = new Uint8Array(sb.dirBlockSize);
    for (let i = 0; i < perBlock; ) {
      const e = findExtent(map, block + i);
      if (e === undefined) throw fsCorrupt('xfs', `directory ${dir.ino}: block ${block + i} is not mapped`);
      const n = Math.min(perBlock - i, e.fileBlock + e.blocks - (block + i));
      out.set(await this.reader.readLinear(e.diskBlock + (block + i - e.fileBlock), n), i * sb.blockSize);
      i += n;
    }
    return out;
  }
}

function isDotOrDotDot(name: Uint8Array): boolean {
  return name[0] === 0x2e && (name.length === 1 || (name.length === 2 && name[1] === 0x2e));
}
