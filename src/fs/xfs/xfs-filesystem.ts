import type { BlockDevice } from '../../blockdev/index.js';
import { CofferError } from '../../errors/index.js';
import type { Filesystem, FsDirEntry, FsFileExtent, FsNode, FsPhysicalExtent, FsXattr } from '../filesystem.js';
import { fsCorrupt } from '../fs-errors.js';
import { decodeName, encodeName } from '../../names/index.js';
import { AttrForkReader } from './attr-fork.js';
import { DirectoryReader } from './directory.js';
import { firstExtentEndingAfter, readExtentMap, type MappedExtent } from './extent-map.js';
import { ForkFormat, parseInode, type XfsInode } from './inode.js';
import { LruCache } from './lru-cache.js';
import { MetadataReader } from './metadata-reader.js';
import type { XfsSuperblock } from './superblock.js';
import { readSymlinkTarget } from './symlink.js';

/** Parsed inodes kept (each well under 2 KiB). */
const INODE_CACHE_ENTRIES = 4096;
/** Extents kept across all cached block maps. */
const EXTENT_CACHE_WEIGHT = 1 << 20;
/** Largest piece of file data read from the device at once. */
const MAX_DATA_READ = 4 * 1024 * 1024;

/**
 * A read-only XFS v5 filesystem on a block device (see {@link xfsDriver}). Nodes are
 * identified by inode number; inodes and block maps are cached (bounded).
 */
export class XfsFilesystem implements Filesystem {
  readonly type = 'xfs' as const;
  readonly caseInsensitive: boolean;
  readonly label: string;
  readonly uuid: string;
  readonly size: number;
  readonly blockSize: number;
  private readonly reader: MetadataReader;
  private readonly directories: DirectoryReader;
  private readonly attrForks: AttrForkReader;
  private readonly inodes = new LruCache<bigint, XfsInode>(INODE_CACHE_ENTRIES);
  private readonly extentMaps = new LruCache<bigint, MappedExtent[]>(EXTENT_CACHE_WEIGHT);

  constructor(
    readonly device: BlockDevice,
    private readonly sb: XfsSuperblock,
  ) {
    this.reader = new MetadataReader(device, sb);
    this.directories = new DirectoryReader(this.reader);
    this.attrForks = new AttrForkReader(this.reader);
    this.caseInsensitive = sb.asciiCi;
    this.label = sb.label;
    this.uuid = sb.uuid;
    this.size = sb.dataBlocks * sb.blockSize;
    this.blockSize = sb.blockSize;
  }

  async root(): Promise<FsNode> {
    const inode = await this.inode(this.sb.rootIno);
    if (inode.type !== 'directory') throw fsCorrupt('xfs', `root inode ${inode.ino} is not a directory`);
    return toNode(inode);
  }

  async readdir(directory: FsNode): Promise<FsDirEntry[]> {
    const dir = await this.inodeOf(directory, 'directory');
    const raw = await this.directories.entries(dir, () => this.extents(dir));
    const out: FsDirEntry[] = [];
    for (const entry of raw) {
      const name = decodeName(entry.name);
      try {
        out.push({ name, node: toNode(await this.inode(entry.ino)) });
      } catch (error) {
        if (!(error instanceof CofferError)) throw error;
        out.push({ name, error });
      }
    }
    return out;
  }

  async lookup(directory: FsNode, name: string): Promise<FsNode | undefined> {
    const dir = await this.inodeOf(directory, 'directory');
    const ino = await this.directories.lookup(dir, encodeName(name), () => this.extents(dir));
    return ino === undefined ? undefined : toNode(await this.inode(ino));
  }

  async read(file: FsNode, offset: number, length: number): Promise<Uint8Array> {
    const inode = await this.inodeOf(file, 'file');
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) throw new RangeError(`bad read of ${length} bytes at ${offset}`);
    const end = Math.min(inode.size, offset + length);
    if (end <= offset) return new Uint8Array(0);
    const out = new Uint8Array(end - offset);
    if (inode.format === ForkFormat.Local) {
      if (inode.size > inode.dataFork.length) throw fsCorrupt('xfs', `inode ${inode.ino}: inline data longer than the inode`);
      out.set(inode.dataFork.subarray(offset, end));
      return out;
    }
    for await (const piece of this.written(inode, offset, end)) {
      for (let done = 0; done < piece.length; done += MAX_DATA_READ) {
        const n = Math.min(MAX_DATA_READ, piece.length - done);
        const at = piece.position - offset + done;
        await this.device.read(piece.deviceOffset + done, n, out.subarray(at, at + n));
      }
    }
    return out;
  }

  /**
   * Where the written bytes of `[offset, end)` of an extent-mapped inode lie on the device,
   * one piece per extent (holes and unwritten extents left out): the one mapping
   * {@link read} and {@link physicalExtents} share.
   */
  private async *written(inode: XfsInode, offset: number, end: number): AsyncGenerator<{ position: number; length: number; deviceOffset: number }> {
    const map = await this.extents(inode);
    const bs = this.blockSize;
    for (let i = firstExtentEndingAfter(map, Math.floor(offset / bs)); i < map.length; i++) {
      const e = map[i]!;
      const from = Math.max(offset, e.fileBlock * bs);
      const to = Math.min(end, (e.fileBlock + e.blocks) * bs);
      if (from >= end) break;
      if (to <= from || e.unwritten) continue;
      const at = (e.diskBlock - e.fileBlock) * bs + from;
      if (at + (to - from) > Math.min(this.size, this.device.size)) throw fsCorrupt('xfs', `inode ${inode.ino}: data beyond the device`);
      yield { position: from, length: to - from, deviceOffset: at };
    }
  }

  /**
   * The inode (`metadata`), then: inline content (`packed` in the inode: small files, short
   * directories and symlinks), or the written extents (a file's up to its size; a
   * directory's all of them, data, leaf and free-index blocks). B+tree blocks are not listed.
   */
  async *physicalExtents(node: FsNode): AsyncIterable<FsPhysicalExtent> {
    if (!/^\d{1,20}$/.test(node.id)) throw new CofferError('E_PATH_NOT_FOUND', `xfs: ${JSON.stringify(node.id)} is not an inode number`);
    const inode = await this.inode(BigInt(node.id));
    const inodeAt = this.reader.inodeOffset(inode.ino);
    const inodeBytes = this.sb.inodeSize;
    yield { kind: 'metadata', fileOffset: 0, fileLength: inode.size, deviceOffset: inodeAt, length: inodeBytes, what: `inode ${inode.ino}` };
    if (inode.format === ForkFormat.Local) {
      if (inode.size > 0) yield { kind: 'packed', fileOffset: 0, fileLength: inode.size, deviceOffset: inodeAt, length: inodeBytes };
      return;
    }
    if (inode.format !== ForkFormat.Extents && inode.format !== ForkFormat.Btree) return;
    const end = inode.type === 'directory' ? Number.MAX_SAFE_INTEGER : inode.size;
    for await (const { position, length, deviceOffset } of this.written(inode, 0, end)) {
      yield { kind: 'data', fileOffset: position, fileLength: length, deviceOffset, length };
    }
  }

  async *fileExtents(file: FsNode): AsyncIterable<FsFileExtent> {
    const inode = await this.inodeOf(file, 'file');
    if (inode.size === 0) return;
    if (inode.format === ForkFormat.Local) {
      yield { offset: 0, length: inode.size, kind: 'data' };
      return;
    }
    const bs = this.blockSize;
    let pending: FsFileExtent | undefined;
    let position = 0;
    const runs: FsFileExtent[] = [];
    const add = (length: number, kind: 'data' | 'zero'): void => {
      const clipped = Math.min(length, inode.size - position);
      if (clipped <= 0) return;
      if (pending !== undefined && pending.kind === kind) pending.length += clipped;
      else {
        if (pending !== undefined) runs.push(pending);
        pending = { offset: position, length: clipped, kind };
      }
      position += clipped;
    };
    for (const e of await this.extents(inode)) {
      if (position >= inode.size) break;
      add(e.fileBlock * bs - position, 'zero');
      add(e.blocks * bs - Math.max(0, position - e.fileBlock * bs), e.unwritten ? 'zero' : 'data');
    }
    add(inode.size - position, 'zero');
    if (pending !== undefined) runs.push(pending);
    yield* runs;
  }

  async readlink(link: FsNode): Promise<string> {
    const inode = await this.inodeOf(link, 'symlink');
    return decodeName(await readSymlinkTarget(inode, () => this.extents(inode), this.reader));
  }

  /**
   * The attributes of the inode's attribute fork (attr-fork.ts): `user.`, `trusted.`,
   * `security.` by namespace, ACLs as `system.posix_acl_access`/`_default` in Linux's xattr
   * form; [] for an inode without an attribute fork. Any type of node may have them.
   */
  async xattrs(node: FsNode): Promise<FsXattr[]> {
    if (!/^\d{1,20}$/.test(node.id)) throw new CofferError('E_PATH_NOT_FOUND', `xfs: ${JSON.stringify(node.id)} is not an inode number`);
    return this.attrForks.attributes(await this.inode(BigInt(node.id)));
  }

  private async inodeOf(node: FsNode, type: 'file' | 'directory' | 'symlink'): Promise<XfsInode> {
    if (!/^\d{1,20}$/.test(node.id)) throw new CofferError('E_PATH_NOT_FOUND', `xfs: ${JSON.stringify(node.id)} is not an inode number`);
    const inode = await this.inode(BigInt(node.id));
    if (inode.type !== type) throw new CofferError('E_PATH_NOT_FOUND', `xfs: inode ${node.id} is a ${inode.type}, not a ${type}`);
    return inode;
  }

  private async inode(ino: bigint): Promise<XfsInode> {
    const cached = this.inodes.get(ino);
    if (cached !== undefined) return cached;
    const inode = parseInode(await this.reader.readInodeBytes(ino), ino, this.sb);
    this.inodes.set(ino, inode);
    return inode;
  }

  private async extents(inode: XfsInode): Promise<MappedExtent[]> {
    const cached = this.extentMaps.get(inode.ino);
    if (cached !== undefined) return cached;
    const map = await readExtentMap(inode, this.reader);
    this.extentMaps.set(inode.ino, map, Math.max(1, map.length));
    return map;
  }
}

function toNode(inode: XfsInode): FsNode {
  return {
    id: inode.ino.toString(),
    type: inode.type,
    size: inode.size,
    mode: inode.mode,
    uid: inode.uid,
    gid: inode.gid,
    nlink: inode.nlink,
    mtimeMs: inode.mtimeMs,
    atimeMs: inode.atimeMs,
    ctimeMs: inode.ctimeMs,
    birthtimeMs: inode.birthtimeMs,
    ...(inode.rdev === undefined ? {} : { rdev: inode.rdev }),
  };
}
