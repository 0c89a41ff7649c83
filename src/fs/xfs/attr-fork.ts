import type { FsXattr } from '../filesystem.js';
import { fsCorrupt, fsUnsupported } from '../fs-errors.js';
import { ATTR_LEAF_MAGIC, ATTR_NODE_MAGIC, daMagic, parseAttrLeaf, parseAttrNode, parseRemoteBlock, REMOTE_HEADER_SIZE, type AttrBlockPlace } from './attr-blocks.js';
import { attrFullName, ATTR_FLAG, type RawAttr } from './attr-entry.js';
import { parseShortformAttrs } from './attr-shortform.js';
import { findExtent, readForkExtentMap, type MappedExtent } from './extent-map.js';
import { ForkFormat, type XfsInode } from './inode.js';
import type { MetadataReader } from './metadata-reader.js';
import { XFS_ACL_NAMES, xfsAclToXattr } from './xfs-acl.js';

/**
 * The extended attributes of an XFS inode, from its attribute fork (inode.ts): short-form in
 * the inode (attr-shortform.ts), or blocks mapped by the fork's own block map (extents or
 * B+tree, extent-map.ts) holding one leaf or a tree of nodes and leaves, values too large
 * for a leaf in remote blocks (attr-blocks.ts).
 */

/** Deepest node tree XFS builds (XFS_DA_NODE_MAXDEPTH, the leaves included). */
const MAX_DEPTH = 5;
/**
 * Leaf and node blocks read for one inode (64 MiB of 4 KiB blocks: far more than the 64 KiB
 * of names Linux's listxattr can return needs), so a damaged tree costs bounded work.
 */
const MAX_TREE_BLOCKS = 16384;
/** Attributes and bytes of names and values given for one inode: a damaged tree pointing many entries at one large value stays bounded in memory. */
const MAX_ATTRS = 65536;
const MAX_TOTAL_BYTES = 64 * 1024 * 1024;
const TRUSTED = 'trusted.';

/** Reads attribute forks for one filesystem. */
export class AttrForkReader {
  constructor(private readonly reader: MetadataReader) {}

  /**
   * The attributes of `inode` in on-disk order, as Linux lists them: namespaces as name
   * prefixes, ACLs (`trusted.SGI_ACL_FILE`/`_DEFAULT`) as `system.posix_acl_access`/
   * `_default` in the xattr form (xfs-acl.ts), incomplete entries and parent pointers left
   * out. Throws `E_FS_CORRUPT` naming the inode for a damaged fork, block or value,
   * `E_FS_UNSUPPORTED` beyond the bounds above.
   */
  async attributes(inode: XfsInode): Promise<FsXattr[]> {
    const fork = inode.attrFork;
    if (fork === undefined) return [];
    const where = `inode ${inode.ino}`;
    let raw: RawAttr[];
    let map: MappedExtent[] = [];
    if (fork.format === ForkFormat.Local) {
      raw = parseShortformAttrs(fork.bytes, where);
    } else if (fork.format === ForkFormat.Extents || fork.format === ForkFormat.Btree) {
      if (fork.nextents === 0) return [];
      map = await readForkExtentMap(fork, inode.ino, this.reader, `${where}: attribute fork`);
      raw = await this.treeEntries(inode.ino, map, where);
    } else {
      throw fsCorrupt('xfs', `${where}: attribute fork format ${fork.format}`, { object: where });
    }
    const out: FsXattr[] = [];
    let total = 0;
    for (const entry of raw) {
      if ((entry.flags & ATTR_FLAG.INCOMPLETE) !== 0) continue;
      let name = attrFullName(entry, where);
      if (name === undefined) continue;
      if (out.length >= MAX_ATTRS) throw fsUnsupported('xfs', `${where}: more than ${MAX_ATTRS} extended attributes`, { object: where });
      let value = entry.value ?? await this.remoteValue(inode.ino, map, entry, where);
      const acl = name.startsWith(TRUSTED) ? XFS_ACL_NAMES.get(name.slice(TRUSTED.length)) : undefined;
      if (acl !== undefined) {
        value = xfsAclToXattr(value, `${where}: ${name}`);
        name = acl;
      }
      total += name.length + value.length;
      if (total > MAX_TOTAL_BYTES) throw fsUnsupported('xfs', `${where}: extended attributes of more than ${MAX_TOTAL_BYTES} bytes`, { object: where });
      out.push({ name, value });
    }
    return out;
  }

  /** The entries of the leaf at logical block 0, or of every leaf under the node there, in hash order. */
  private async treeEntries(ino: bigint, map: readonly MappedExtent[], where: string): Promise<RawAttr[]> {
    const root = await this.block(ino, map, 0, where);
    const magic = daMagic(root.bytes);
    if (magic === ATTR_LEAF_MAGIC) return parseAttrLeaf(root.bytes, root.place);
    if (magic !== ATTR_NODE_MAGIC) throw fsCorrupt('xfs', `${root.place.what}: bad magic 0x${magic.toString(16)}`, { object: where });
    const out: RawAttr[] = [];
    const visited = new Set<number>([0]);
    const walk = async (block: { bytes: Uint8Array; place: AttrBlockPlace }, expectedLevel?: number): Promise<void> => {
      const node = parseAttrNode(block.bytes, block.place);
      if (node.level < 1 || node.level >= MAX_DEPTH || (expectedLevel !== undefined && node.level !== expectedLevel)) {
        throw fsCorrupt('xfs', `${block.place.what}: a node at level ${node.level}${expectedLevel === undefined ? '' : `, expected ${expectedLevel}`}`, { object: where });
      }
      for (const child of node.children) {
        if (visited.has(child)) throw fsCorrupt('xfs', `${where}: attribute block ${child} is reached twice`, { object: where });
        if (visited.size >= MAX_TREE_BLOCKS) throw fsUnsupported('xfs', `${where}: an attribute tree of more than ${MAX_TREE_BLOCKS} blocks`, { object: where });
        visited.add(child);
        const next = await this.block(ino, map, child, where);
        if (node.level === 1) out.push(...parseAttrLeaf(next.bytes, next.place));
        else await walk(next, node.level - 1);
        if (out.length > MAX_ATTRS) throw fsUnsupported('xfs', `${where}: more than ${MAX_ATTRS} extended attributes`, { object: where });
      }
    };
    await walk(root);
    return out;
  }

  /** A remote value: its blocks in order, each holding the next piece. */
  private async remoteValue(ino: bigint, map: readonly MappedExtent[], entry: RawAttr, where: string): Promise<Uint8Array> {
    const { block: first, length } = entry.remote as { block: number; length: number };
    const perBlock = this.reader.sb.blockSize - REMOTE_HEADER_SIZE;
    const value = new Uint8Array(length);
    for (let done = 0, block = first; done < length; block++) {
      const n = Math.min(perBlock, length - done);
      const { bytes, place } = await this.block(ino, map, block, where);
      value.set(parseRemoteBlock(bytes, place, done, n), done);
      done += n;
    }
    return value;
  }

  /** Logical block `logical` of the attribute fork, with what it must say about itself. */
  private async block(ino: bigint, map: readonly MappedExtent[], logical: number, where: string): Promise<{ bytes: Uint8Array; place: AttrBlockPlace }> {
    const what = `${where}: attribute block ${logical}`;
    const e = findExtent(map, logical);
    if (e === undefined || e.unwritten) throw fsCorrupt('xfs', `${what} is not mapped`, { object: where });
    const linear = e.diskBlock + (logical - e.fileBlock);
    const sb = this.reader.sb;
    return { bytes: await this.reader.readLinear(linear, 1), place: { ino, daddr: linear * (sb.blockSize / 512), what, where } };
  }
}
