import { fsCorrupt } from '../fs-errors.js';
import { AttributeType } from './attribute.js';
import { parseIndexBlock, parseIndexRoot, type IndexEntry } from './index-node.js';
import type { Inode, NtfsVolume } from './ntfs-volume.js';
import type { UpcaseTable } from './upcase.js';

/** B+trees of a sane volume are a handful of levels deep; deeper means a loop. */
const MAX_DEPTH = 32;
const MAX_BITMAP_BYTES = 1024 * 1024;
const I30 = '$I30';

/**
 * A directory's $I30 index: walks every entry in order, or finds one name by descending the
 * B+tree with the volume's upcase collation. Index blocks are read through the metadata
 * cache; each walk visits a block at most once and only blocks that $BITMAP marks in use.
 */
export class DirectoryIndex {
  private constructor(
    private readonly volume: NtfsVolume,
    private readonly inode: Inode,
    private readonly blockSize: number,
    private readonly rootEntries: IndexEntry[],
    private readonly bitmap: Uint8Array | undefined,
  ) {}

  static async open(volume: NtfsVolume, inode: Inode): Promise<DirectoryIndex> {
    const what = `directory ${inode.number}`;
    const root = inode.attributes.find((a) => a.type === AttributeType.INDEX_ROOT && a.name === I30);
    if (root === undefined || !root.resident) throw fsCorrupt('ntfs', `${what}: no resident $INDEX_ROOT`, { object: String(inode.number) });
    const parsed = parseIndexRoot(root.value, what);
    const bitmapAttr = inode.attributes.filter((a) => a.type === AttributeType.BITMAP && a.name === I30);
    let bitmap: Uint8Array | undefined;
    if (bitmapAttr.length > 0) {
      const stream = volume.stream(bitmapAttr, `${what}: $BITMAP`);
      bitmap = await stream.read(0, Math.min(stream.size, MAX_BITMAP_BYTES));
    }
    return new DirectoryIndex(volume, inode, parsed.blockSize, parsed.entries, bitmap);
  }

  /** Every entry with a key, in collation order. */
  async entries(): Promise<IndexEntry[]> {
    const out: IndexEntry[] = [];
    const visited = new Set<number>();
    const walk = async (entries: IndexEntry[], depth: number): Promise<void> => {
      for (const entry of entries) {
        if (entry.child !== undefined) {
          if (depth >= MAX_DEPTH) throw fsCorrupt('ntfs', `directory ${this.inode.number}: index deeper than ${MAX_DEPTH}`);
          if (visited.has(entry.child)) throw fsCorrupt('ntfs', `directory ${this.inode.number}: index block ${entry.child} reached twice`);
          visited.add(entry.child);
          await walk(await this.block(entry.child), depth + 1);
        }
        if (entry.key !== undefined) out.push(entry);
      }
    };
    await walk(this.rootEntries, 0);
    return out;
  }

  /**
   * The entries whose names equal `units` ignoring case (usually one; a POSIX-namespace
   * directory may hold names differing only in case), found by descending the tree.
   */
  async find(units: Uint16Array, upcase: UpcaseTable): Promise<IndexEntry[]> {
    let entries = this.rootEntries;
    for (let depth = 0; depth <= MAX_DEPTH; depth++) {
      let next: number | undefined;
      let found = false;
      const matches: IndexEntry[] = [];
      for (const entry of entries) {
        if (entry.key !== undefined) {
          const order = upcase.compare(units, entry.key.units);
          if (order === 0) {
            matches.push(entry);
            found = true;
            continue;
          }
          if (order > 0) continue;
        }
        if (!found) next = entry.child;
        break;
      }
      if (matches.length > 0 || next === undefined) return matches;
      entries = await this.block(next);
    }
    throw fsCorrupt('ntfs', `directory ${this.inode.number}: index deeper than ${MAX_DEPTH}`);
  }

  /** The entries of the index block at `vcn` of $INDEX_ALLOCATION. */
  private async block(vcn: number): Promise<IndexEntry[]> {
    const what = `directory ${this.inode.number}: index block ${vcn}`;
    const cs = this.volume.boot.clusterSize;
    // VCNs count clusters, or 512-byte units when index blocks are smaller than a cluster.
    const offset = vcn * (this.blockSize >= cs ? cs : 512);
    const bit = Math.floor(offset / this.blockSize);
    if (offset % this.blockSize !== 0) throw fsCorrupt('ntfs', `${what}: not at a block boundary`);
    if (this.bitmap !== undefined && ((this.bitmap[bit >> 3] ?? 0) & (1 << (bit & 7))) === 0) throw fsCorrupt('ntfs', `${what}: not in use in $BITMAP`);
    const extents = this.inode.attributes.filter((a) => a.type === AttributeType.INDEX_ALLOCATION && a.name === I30);
    if (extents.length === 0) throw fsCorrupt('ntfs', `${what}: no $INDEX_ALLOCATION`);
    const stream = this.volume.stream(extents, `directory ${this.inode.number}: $INDEX_ALLOCATION`);
    if (offset + this.blockSize > stream.size) throw fsCorrupt('ntfs', `${what}: beyond $INDEX_ALLOCATION`);
    const bytes = await stream.read(offset, this.blockSize);
    return parseIndexBlock(bytes, vcn, what);
  }
}
