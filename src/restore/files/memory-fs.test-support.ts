/**
 * A filesystem held in memory, for tests of what is built on the Filesystem contract (path
 * resolution, walks, extraction) with trees no real tool can make: names with `/`, `..` or
 * NUL, directory loops, entries that fail. Real filesystems are tested by their own readers'
 * tests against real images.
 */
import { CofferError } from '../../errors/index.js';
import type { BlockDevice } from '../../blockdev/index.js';
import type { Filesystem, FsDirEntry, FsNode, FsXattr } from '../../fs/index.js';

export interface MemoryEntry {
  name: string;
  node?: MemoryNode;
  error?: string;
}

export type MemoryNode = FsNode & {
  children?: MemoryEntry[];
  content?: Uint8Array;
  target?: string;
  /** Reads at or past this offset fail with E_FS_CORRUPT. */
  failAt?: number;
  /** What `xattrs` gives ([] when unset). */
  xattrList?: FsXattr[];
};

let nextId = 1;
const base = { mode: 0o644, uid: 1000, gid: 1000, nlink: 1, mtimeMs: 1_600_000_000_000, atimeMs: 1_600_000_000_000, ctimeMs: NaN, birthtimeMs: NaN };

export function file(content: string | Uint8Array, extra: Partial<MemoryNode> = {}): MemoryNode {
  const bytes = typeof content === 'string' ? Buffer.from(content) : content;
  return { ...base, id: String(nextId++), type: 'file', size: bytes.length, content: bytes, ...extra };
}

export function dir(children: Record<string, MemoryNode> | MemoryEntry[], extra: Partial<MemoryNode> = {}): MemoryNode {
  const list = Array.isArray(children) ? children : Object.entries(children).map(([name, node]) => ({ name, node }));
  return { ...base, mode: 0o755, id: String(nextId++), type: 'directory', size: 4096, children: list, ...extra };
}

export function symlink(target: string): MemoryNode {
  return { ...base, mode: 0o777, id: String(nextId++), type: 'symlink', size: target.length, target };
}

export class MemoryFs implements Filesystem {
  readonly type = 'ext4' as const;
  readonly label = 'memory';
  readonly uuid = '';
  readonly size = 1 << 30;
  readonly blockSize = 4096;
  readonly device = undefined as unknown as BlockDevice;

  constructor(
    private readonly top: MemoryNode,
    readonly caseInsensitive = false,
  ) {}

  async root(): Promise<FsNode> {
    return this.top;
  }

  async readdir(directory: FsNode): Promise<FsDirEntry[]> {
    const node = directory as MemoryNode;
    if (node.children === undefined) throw new CofferError('E_FS_CORRUPT', `node ${node.id} is not a directory`);
    return node.children.map((e) => (e.node !== undefined ? { name: e.name, node: e.node } : { name: e.name, error: new CofferError('E_FS_CORRUPT', e.error ?? 'damaged') }));
  }

  async read(file: FsNode, offset: number, length: number): Promise<Uint8Array> {
    const node = file as MemoryNode;
    const end = Math.min(node.size, offset + length);
    if (node.failAt !== undefined && end > node.failAt) throw new CofferError('E_FS_CORRUPT', `node ${node.id}: block map damaged at ${node.failAt}`);
    const out = new Uint8Array(Math.max(0, end - offset));
    out.set((node.content ?? new Uint8Array()).subarray(offset, end));
    return out;
  }

  async xattrs(node: FsNode): Promise<FsXattr[]> {
    return (node as MemoryNode).xattrList ?? [];
  }

  async readlink(link: FsNode): Promise<string> {
    return (link as MemoryNode).target ?? '';
  }
}
