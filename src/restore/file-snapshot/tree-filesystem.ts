import type { BlockDevice, Extent } from '../../blockdev/index.js';
import type { Filesystem, FsDirEntry, FsFileExtent, FsNode, FsXattr } from '../../fs/index.js';
import { entryXattrs, getFileTree, type Repository, type Snapshot, type TreeEntry } from '../../repo/index.js';
import { ChunkReader } from './chunk-reader.js';

/** A node of a file snapshot: the FsNode the browse verbs use, with its tree entry. */
interface TreeNode extends FsNode {
  readonly entry: TreeEntry | undefined;
  readonly tree: string | undefined;
}

/** A file snapshot stands on no device: this one is empty. */
const NO_DEVICE: BlockDevice = {
  size: 0,
  read: async () => new Uint8Array(0),
  extents: async function* (): AsyncGenerator<Extent> {},
  close: async () => {},
};

/**
 * A file snapshot seen as a read-only {@link Filesystem}, so `coffer files` answers `ls`,
 * `cat`, `get` and `find` on it with the code and output it uses for a filesystem inside an
 * image snapshot. Reads one tree per directory listed and only the chunks of what is read.
 */
export class TreeFilesystem implements Filesystem {
  readonly type = 'coffer-files' as const;
  readonly label = '';
  readonly uuid = '';
  /**
   * The bytes of all its files (the snapshot's logical bytes): the bound `filePieces` holds a
   * file's data to. 0 here made every `get` of a file with data fail ("claims more data than
   * the filesystem holds").
   */
  readonly size: number;
  readonly blockSize = 1;
  readonly caseInsensitive = false;
  readonly device = NO_DEVICE;
  private readonly chunks: ChunkReader;

  constructor(
    private readonly repo: Repository,
    private readonly snapshot: Snapshot & { files: NonNullable<Snapshot['files']> },
  ) {
    this.chunks = new ChunkReader(repo);
    this.size = snapshot.stats.bytesLogical;
  }

  /** Chunks fetched so far, and their stored bytes. */
  fetched(): { chunks: number; bytes: number } {
    return { ...this.chunks.fetched };
  }

  async root(): Promise<FsNode> {
    const nan = Number.NaN;
    const node: TreeNode = { id: '/', type: 'directory', size: 0, mode: 0o755, uid: 0, gid: 0, nlink: 1, mtimeMs: nan, atimeMs: nan, ctimeMs: nan, birthtimeMs: nan, entry: undefined, tree: this.snapshot.files.tree };
    return node;
  }

  async readdir(directory: FsNode): Promise<FsDirEntry[]> {
    const parent = directory as TreeNode;
    if (parent.tree === undefined) return [];
    const tree = await getFileTree(this.repo, parent.tree);
    const base = parent.id === '/' ? '' : parent.id;
    return tree.entries.map((entry) => ({ name: entry.name, node: nodeOf(entry, `${base}/${entry.name}`) }));
  }

  async lookup(directory: FsNode, name: string): Promise<FsNode | undefined> {
    return (await this.readdir(directory)).find((e) => e.name === name)?.node;
  }

  async read(file: FsNode, offset: number, length: number): Promise<Uint8Array> {
    const entry = (file as TreeNode).entry;
    const end = Math.min(file.size, offset + length);
    if (entry?.content === undefined || offset >= end) return new Uint8Array(0);
    const out = new Uint8Array(end - offset);
    let at = 0;
    for (const [what, size] of entry.content) {
      const from = Math.max(offset, at);
      const to = Math.min(end, at + size);
      if (from < to && what !== 'hole' && what !== 'zero') {
        const data = await this.chunks.read(what);
        out.set(data.subarray(from - at, to - at), from - offset);
      }
      at += size;
      if (at >= end) break;
    }
    return out;
  }

  async *fileExtents(file: FsNode): AsyncIterable<FsFileExtent> {
    let offset = 0;
    for (const [what, length] of (file as TreeNode).entry?.content ?? []) {
      yield { offset, length, kind: what === 'hole' || what === 'zero' ? 'zero' : 'data' };
      offset += length;
    }
  }

  async readlink(link: FsNode): Promise<string> {
    return (link as TreeNode).entry?.target ?? '';
  }

  /**
   * The attributes the backup read from the host (llistxattr/lgetxattr), as its tree entry
   * holds them: names decoded as FsXattr's are (the tree keeps a name's bytes as entry names
   * are kept), values as setxattr takes them (POSIX ACLs in Linux's xattr form, as the host
   * gave them). The root of a file snapshot is no host folder (it holds the paths backed up
   * with the folders above them): it has none.
   */
  async xattrs(node: FsNode): Promise<FsXattr[]> {
    const entry = (node as TreeNode).entry;
    return entry === undefined ? [] : entryXattrs(entry);
  }
}

function nodeOf(entry: TreeEntry, path: string): TreeNode {
  const ms = (ns: string) => Number(BigInt(ns) / 1_000_000n);
  return {
    // Names of one inode share an id (extraction links them); others are named by path.
    id: entry.hardlink !== undefined ? `hardlink:${entry.hardlink}` : path,
    type: entry.type,
    size: entry.type === 'symlink' ? Buffer.byteLength(entry.target ?? '') : entry.size,
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    ...(entry.user !== undefined ? { user: entry.user } : {}),
    ...(entry.group !== undefined ? { group: entry.group } : {}),
    nlink: entry.links,
    mtimeMs: ms(entry.mtime),
    atimeMs: ms(entry.atime),
    ctimeMs: ms(entry.ctime),
    birthtimeMs: Number.NaN,
    ...(entry.rdev !== undefined ? { rdev: { major: entry.rdev[0], minor: entry.rdev[1] } } : {}),
    entry,
    tree: entry.tree,
  };
}
