import type { BlockDevice } from '../../blockdev/index.js';
import { CofferError, isCofferError } from '../../errors/index.js';
import type { Filesystem, FsDirEntry, FsFileExtent, FsNode, FsPhysicalExtent, FsType, FsXattr } from '../filesystem.js';
import { fsCorrupt, fsUnsupported } from '../fs-errors.js';
import { decodeName, encodeName } from '../../names/index.js';
import { coalesce, type BlockRun } from './block-map.js';
import { foldedName } from './casefold.js';
import type { BlockReader } from './block-reader.js';
import { dropLeadingDots, parseDirRegion, type RawDirEntry } from './dir-entries.js';
import { ext4AclToXattr } from './ext-acl.js';
import { ExtNode } from './ext-node.js';
import { extentRuns } from './extent-tree.js';
import type { GroupDescriptorTable } from './group-descriptor-table.js';
import { htreeCandidates } from './htree.js';
import { indirectRuns } from './indirect-blocks.js';
import { inlineContent, inlineDataTail } from './inline-data.js';
import { FLAGS, iBlock, I_BLOCK_SIZE, parseInode, ROOT_INODE, type ExtInode } from './inode.js';
import { COMPAT, FLAG_UNSIGNED_HASH, INCOMPAT, RO_COMPAT, type Superblock } from './superblock.js';
import { parseInodeXattrs, parseXattrBlock, type RawXattr } from './xattr-entries.js';

/** Directories larger than this many blocks are refused as damaged (4 GiB of 4 KiB blocks). */
const MAX_DIRECTORY_BLOCKS = 1 << 20;
/** A symlink target is at most a path (PATH_MAX 4096) and always fits one block. */
const MAX_LINK_BYTES = 65536;


/**
 * A read-only ext2/ext3/ext4 filesystem (see ext-driver.ts for how it is found). All reads
 * go through one {@link BlockReader}: metadata cached and bounded, data read straight into
 * the caller's buffer.
 */
export class ExtFilesystem implements Filesystem {
  readonly label: string;
  readonly uuid: string;
  readonly size: number;
  readonly blockSize: number;
  readonly caseInsensitive = false;

  constructor(
    readonly device: BlockDevice,
    readonly type: FsType,
    private readonly sb: Superblock,
    private readonly blocks: BlockReader,
    private readonly descriptors: GroupDescriptorTable,
    private readonly superblockNotice?: string,
  ) {
    this.label = sb.label;
    this.uuid = sb.uuid;
    this.size = sb.blocksCount * sb.blockSize;
    this.blockSize = sb.blockSize;
  }

  /** The damage read around: a backup superblock, backup group descriptors (more may be found as groups are first read). */
  get notice(): string | undefined {
    const parts = [this.superblockNotice, this.descriptors.notice].filter((p) => p !== undefined);
    return parts.length === 0 ? undefined : parts.join('; ');
  }

  root(): Promise<FsNode> {
    return this.node(ROOT_INODE);
  }

  /**
   * Reads the root directory's inode, or throws `E_FS_CORRUPT` saying why it does not read
   * and where its record lies, rather than a bare "inode 2 is not in use".
   */
  async checkRoot(): Promise<void> {
    let where = 'inode 2';
    try {
      const { block, at } = await this.inodeLocation(ROOT_INODE);
      where = `inode 2, at byte ${at} of block ${block} in the inode table of group 0`;
      const root = await this.readInode(ROOT_INODE);
      if (root.type !== 'directory') throw fsCorrupt(this.type, `it is a ${root.type}, not a directory`);
    } catch (error) {
      if (!isCofferError(error, 'E_FS_CORRUPT')) throw error;
      const why = error.message.replace(/^ext[234]?: /, '');
      throw fsCorrupt(this.type, `the root directory (${where}) does not read: ${why}`, { object: 'inode 2' });
    }
  }

  /** Reads inode `number`. Throws `E_FS_CORRUPT` for numbers out of range or free inodes. */
  async readInode(number: number): Promise<ExtInode> {
    const sb = this.sb;
    if (!Number.isSafeInteger(number) || number < 1 || number > sb.inodesCount) {
      throw fsCorrupt(this.type, `inode ${number} is out of range (1..${sb.inodesCount})`, { object: `inode ${number}` });
    }
    const { block: tableBlock, at } = await this.inodeLocation(number);
    const block = await this.blocks.block(tableBlock, `inode ${number}`);
    return parseInode(sb, number, block.subarray(at, at + sb.inodeSize));
  }

  /** The inode table block holding inode `number` (in range) and its byte offset in that block. */
  private async inodeLocation(number: number): Promise<{ block: number; at: number }> {
    const sb = this.sb;
    const group = Math.floor((number - 1) / sb.inodesPerGroup);
    const index = (number - 1) % sb.inodesPerGroup;
    const descriptor = await this.descriptors.descriptor(group);
    if (!descriptor.inodesInitialized) throw fsCorrupt(this.type, `inode ${number} is in a group never initialised`, { object: `inode ${number}` });
    const byteOffset = index * sb.inodeSize;
    return { block: descriptor.inodeTable + Math.floor(byteOffset / sb.blockSize), at: byteOffset % sb.blockSize };
  }

  private async node(number: number): Promise<ExtNode> {
    return new ExtNode(this, await this.readInode(number));
  }

  /** The inode behind a node given by a caller (ours, or re-read by its id). */
  private async inodeOf(node: FsNode): Promise<ExtInode> {
    if (node instanceof ExtNode && node.owner === this) return node.inode;
    if (!/^[0-9]{1,10}$/.test(node.id)) throw new CofferError('E_PATH_NOT_FOUND', `${node.id} is not an inode number`);
    return this.readInode(Number(node.id));
  }

  /** The block runs of `[start, end)` (in blocks) of a file or directory that is not inline. */
  private runs(inode: ExtInode, start: number, end: number): AsyncGenerator<BlockRun> {
    if ((inode.flags & FLAGS.INLINE_DATA) !== 0) throw new Error('inline inodes have no block map'); // a bug: callers check
    const source = (inode.flags & FLAGS.EXTENTS) !== 0
      ? extentRuns(iBlock(inode), this.blocks, inode.number, start, end)
      : indirectRuns(iBlock(inode), this.blocks, inode.number, start, end);
    return coalesce(source, start, end);
  }

  private assertReadable(inode: ExtInode): void {
    // The `encrypt` feature only allows fscrypt: what is not encrypted reads as usual, an
    // encrypted inode (its content, a directory's names) is refused on its own.
    if ((inode.flags & FLAGS.ENCRYPT) !== 0) throw fsUnsupported(this.type, `inode ${inode.number} is encrypted (fscrypt): its key is not in the backup`, { object: `inode ${inode.number}` });
  }

  async read(file: FsNode, offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new RangeError(`bad read of ${length} bytes at ${offset}`);
    }
    const inode = await this.inodeOf(file);
    if (inode.type !== 'file') throw fsUnsupported(this.type, `inode ${inode.number} is a ${inode.type}, not a file`, { object: `inode ${inode.number}` });
    this.assertReadable(inode);
    const end = Math.min(inode.size, offset + length);
    if (end <= offset) return new Uint8Array(0);
    if ((inode.flags & FLAGS.INLINE_DATA) !== 0) return inlineContent(inode).slice(offset, end);
    const bs = this.blockSize;
    const out = new Uint8Array(end - offset);
    for await (const run of this.runs(inode, Math.floor(offset / bs), Math.ceil(end / bs))) {
      if (run.physical === null) continue;
      const from = Math.max(offset, run.logical * bs);
      const to = Math.min(end, (run.logical + run.count) * bs);
      await this.blocks.readInto(run.physical, run.count, from - run.logical * bs, out.subarray(from - offset, to - offset), `inode ${inode.number}: data`);
    }
    return out;
  }

  async *fileExtents(file: FsNode): AsyncIterable<FsFileExtent> {
    const inode = await this.inodeOf(file);
    if (inode.size === 0) return;
    if ((inode.flags & FLAGS.INLINE_DATA) !== 0) {
      yield { offset: 0, length: inode.size, kind: 'data' };
      return;
    }
    const bs = this.blockSize;
    let pending: FsFileExtent | undefined;
    for await (const run of this.runs(inode, 0, Math.ceil(inode.size / bs))) {
      const kind = run.physical === null ? 'zero' : 'data';
      const offset = run.logical * bs;
      const length = Math.min(inode.size, (run.logical + run.count) * bs) - offset;
      if (pending !== undefined && pending.kind === kind) pending.length += length;
      else {
        if (pending !== undefined) yield pending;
        pending = { offset, length, kind };
      }
    }
    if (pending !== undefined) yield pending;
  }

  async readlink(link: FsNode): Promise<string> {
    const inode = await this.inodeOf(link);
    const where = { object: `inode ${inode.number}` };
    if (inode.type !== 'symlink') throw fsUnsupported(this.type, `inode ${inode.number} is a ${inode.type}, not a symlink`, where);
    this.assertReadable(inode);
    if (inode.size > Math.min(MAX_LINK_BYTES, this.blockSize)) throw fsCorrupt(this.type, `symlink inode ${inode.number} claims ${inode.size} bytes`, where);
    if ((inode.flags & FLAGS.INLINE_DATA) !== 0) return decodeName(inlineContent(inode));
    if (this.isFastSymlink(inode)) {
      if (inode.size > I_BLOCK_SIZE) throw fsCorrupt(this.type, `fast symlink inode ${inode.number} claims ${inode.size} bytes`, where);
      return decodeName(iBlock(inode).subarray(0, inode.size));
    }
    const bytes = new Uint8Array(inode.size);
    for await (const run of this.runs(inode, 0, Math.ceil(inode.size / this.blockSize))) {
      if (run.physical === null) continue;
      const from = run.logical * this.blockSize;
      const to = Math.min(inode.size, from + run.count * this.blockSize);
      await this.blocks.readInto(run.physical, run.count, 0, bytes.subarray(from, to), `symlink inode ${inode.number}`);
    }
    return decodeName(bytes);
  }

  /** A symlink whose target is stored in i_block itself (no block is allocated to it). */
  private isFastSymlink(inode: ExtInode): boolean {
    const eaBytes = inode.fileAcl !== 0 ? this.blockSize : 0;
    return inode.type === 'symlink' && (inode.flags & FLAGS.EXTENTS) === 0 && inode.allocatedBytes - eaBytes <= 0;
  }

  /**
   * The inode itself (`metadata`), then: inline content (`packed`, inside the inode), or the
   * data blocks of a file, directory or slow symlink from the same block map {@link read}
   * uses. Extent-tree and indirect blocks are not listed.
   */
  async *physicalExtents(node: FsNode): AsyncIterable<FsPhysicalExtent> {
    const inode = await this.inodeOf(node);
    const { block, at } = await this.inodeLocation(inode.number);
    const inodeAt = block * this.blockSize + at;
    const size = inode.size;
    yield { kind: 'metadata', fileOffset: 0, fileLength: size, deviceOffset: inodeAt, length: this.sb.inodeSize, what: `inode ${inode.number}` };
    if (size === 0 || !(inode.type === 'file' || inode.type === 'directory' || inode.type === 'symlink')) return;
    if ((inode.flags & FLAGS.INLINE_DATA) !== 0) {
      yield { kind: 'packed', fileOffset: 0, fileLength: size, deviceOffset: inodeAt, length: this.sb.inodeSize };
      return;
    }
    if (this.isFastSymlink(inode)) return; // the target is inside the inode, already listed
    const bs = this.blockSize;
    for await (const run of this.runs(inode, 0, Math.ceil(size / bs))) {
      if (run.physical === null) continue;
      const fileOffset = run.logical * bs;
      const length = Math.min(size, (run.logical + run.count) * bs) - fileOffset;
      yield { kind: 'data', fileOffset, fileLength: length, deviceOffset: run.physical * bs, length };
    }
  }

  /**
   * The in-inode attributes, then those of the attribute block (xattr-entries.ts), as Linux
   * lists them: ACLs converted from ext4's format (ext-acl.ts), values in other inodes
   * (ea_inode) read from there, `system.data` (inline data) and internal indexes left out.
   */
  async xattrs(node: FsNode): Promise<FsXattr[]> {
    const inode = await this.inodeOf(node);
    const where = `inode ${inode.number}`;
    const raw: RawXattr[] = parseInodeXattrs(inode.raw.subarray(inode.usedSize), where);
    if (inode.fileAcl !== 0) {
      const block = await this.blocks.block(inode.fileAcl, `${where}: extended attribute block`);
      const seed = (this.sb.featureRoCompat & RO_COMPAT.METADATA_CSUM) !== 0 ? this.sb.checksumSeed : undefined;
      raw.push(...parseXattrBlock(block, inode.fileAcl, where, seed));
    }
    const out: FsXattr[] = [];
    for (const entry of raw) {
      if (entry.name === undefined || entry.name === 'system.data') continue;
      let value = entry.value ?? await this.valueInode(entry, where);
      if (entry.index === 2 || entry.index === 3) value = ext4AclToXattr(value, `${where}: ${entry.name}`);
      out.push({ name: entry.name, value });
    }
    return out;
  }

  /** A value stored as the content of another inode (ea_inode: that inode has EA_INODE_FL and the value's size). */
  private async valueInode(entry: RawXattr, where: string): Promise<Uint8Array> {
    const { inode: number, size } = entry.valueInode as { inode: number; size: number };
    const holder = await this.readInode(number);
    if ((holder.flags & FLAGS.EA_INODE) === 0 || holder.type !== 'file' || holder.size !== size) {
      throw fsCorrupt(this.type, `${where}: the value of ${entry.name ?? 'an extended attribute'} is said to be in inode ${number}, which does not hold a ${size}-byte value`, { object: where });
    }
    return this.read(new ExtNode(this, holder), 0, size);
  }

  async readdir(directory: FsNode): Promise<FsDirEntry[]> {
    const inode = await this.directoryInode(directory);
    const out: FsDirEntry[] = [];
    for await (const region of this.dirRegions(inode)) {
      for (const raw of region.entries) out.push(await this.entry(raw));
      if (region.damage !== undefined) out.push({ name: '', error: region.damage });
    }
    return out;
  }

  async lookup(directory: FsNode, name: string): Promise<FsNode | undefined> {
    const inode = await this.directoryInode(directory);
    const wanted = encodeName(name);
    if (wanted.length === 0 || wanted.length > 255) return undefined;
    const match = (entries: RawDirEntry[]): RawDirEntry | undefined =>
      entries.find((e) => e.name.length === wanted.length && e.name.every((b, i) => b === wanted[i]));
    const candidates = await this.htreeBlocks(inode, wanted);
    if (candidates !== undefined) {
      for (const logical of candidates) {
        const block = await this.dirBlock(inode, logical);
        if (block === undefined) continue;
        const found = match(parseDirRegion(block, this.dirOptions()).entries);
        if (found !== undefined) return this.node(found.inode);
      }
      return undefined;
    }
    // A casefolded directory (chattr +F) finds a name whatever its case, as Linux does
    // (casefold.ts): the exact name first, else the first entry whose folded name matches.
    const folded = (inode.flags & FLAGS.CASEFOLD) !== 0 ? foldedName(name) : undefined;
    let alike: RawDirEntry | undefined;
    for await (const region of this.dirRegions(inode)) {
      const found = match(region.entries);
      if (found !== undefined) return this.node(found.inode);
      if (folded !== undefined && alike === undefined) alike = region.entries.find((e) => e.name.length > 0 && foldedName(decodeName(e.name)) === folded);
    }
    return alike === undefined ? undefined : this.node(alike.inode);
  }

  private async directoryInode(node: FsNode): Promise<ExtInode> {
    const inode = await this.inodeOf(node);
    if (inode.type !== 'directory') throw new CofferError('E_PATH_NOT_FOUND', `inode ${inode.number} is not a directory`, { subject: { object: `inode ${inode.number}` } });
    this.assertReadable(inode);
    return inode;
  }

  private dirOptions(): { blockSize: number; fileType: boolean } {
    return { blockSize: this.blockSize, fileType: (this.sb.featureIncompat & INCOMPAT.FILETYPE) !== 0 };
  }

  /** The leaf blocks the htree names for `name`, or undefined when the directory has no usable index. */
  private async htreeBlocks(inode: ExtInode, name: Uint8Array): Promise<number[] | undefined> {
    const indexed = (inode.flags & FLAGS.INDEX) !== 0 && (inode.flags & (FLAGS.INLINE_DATA | FLAGS.CASEFOLD)) === 0
      && (this.sb.featureCompat & COMPAT.DIR_INDEX) !== 0;
    if (!indexed) return undefined;
    const blockCount = Math.ceil(inode.size / this.blockSize);
    try {
      return await htreeCandidates(async (logical) => {
        const block = await this.dirBlock(inode, logical);
        if (block === undefined) throw fsCorrupt(this.type, `directory inode ${inode.number}: htree block ${logical} is a hole`);
        return block;
      }, name, { seed: this.sb.hashSeed, unsignedHash: (this.sb.flags & FLAG_UNSIGNED_HASH) !== 0, directory: inode.number, blockCount });
    } catch (error) {
      if (isCofferError(error, 'E_FS_CORRUPT')) return undefined; // a damaged index: the linear scan still finds names
      throw error;
    }
  }

  /** Logical block `logical` of a directory (cached), or undefined for a hole. */
  private async dirBlock(inode: ExtInode, logical: number): Promise<Uint8Array | undefined> {
    for await (const run of this.runs(inode, logical, logical + 1)) {
      return run.physical === null ? undefined : this.blocks.block(run.physical, `directory inode ${inode.number}`);
    }
    return undefined;
  }

  /** The directory's entries, region by region (inline area, or block by block). */
  private async *dirRegions(inode: ExtInode): AsyncGenerator<{ entries: RawDirEntry[]; damage?: CofferError }> {
    const options = this.dirOptions();
    const where = `directory inode ${inode.number}`;
    const damaged = (region: string, d: { offset: number; reason: string }): CofferError =>
      fsCorrupt(this.type, `${where}: ${region} at byte ${d.offset}: ${d.reason}`, { object: where });
    if ((inode.flags & FLAGS.INLINE_DATA) !== 0) {
      // i_block: the parent's inode number (4 bytes), then entries; more entries in system.data.
      const head = parseDirRegion(iBlock(inode).subarray(4), options);
      yield { entries: head.entries, ...(head.damage ? { damage: damaged('inline entries', head.damage) } : {}) };
      const tail = inlineDataTail(inode);
      if (tail.length > 0) {
        const more = parseDirRegion(tail, options);
        yield { entries: more.entries, ...(more.damage ? { damage: damaged('inline entries', more.damage) } : {}) };
      }
      return;
    }
    const blockCount = Math.ceil(inode.size / this.blockSize);
    if (blockCount > MAX_DIRECTORY_BLOCKS) throw fsCorrupt(this.type, `${where} claims ${inode.size} bytes`, { object: where });
    for await (const run of this.runs(inode, 0, blockCount)) {
      if (run.physical === null) continue;
      for (let i = 0; i < run.count; i++) {
        const logical = run.logical + i;
        const block = await this.blocks.block(run.physical + i, where);
        const parsed = parseDirRegion(block, options);
        const entries = logical === 0 ? dropLeadingDots(parsed.entries) : parsed.entries;
        yield { entries, ...(parsed.damage ? { damage: damaged(`block ${logical}`, parsed.damage) } : {}) };
      }
    }
  }

  private async entry(raw: RawDirEntry): Promise<FsDirEntry> {
    const name = decodeName(raw.name);
    try {
      return { name, node: await this.node(raw.inode) };
    } catch (error) {
      if (error instanceof CofferError) return { name, error };
      throw error;
    }
  }
}
