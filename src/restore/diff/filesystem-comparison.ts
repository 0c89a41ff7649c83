import { CofferError } from '../../errors/index.js';
import type { ByteRange, Filesystem, FsNode, FsPhysicalExtent } from '../../fs/index.js';
import { compareNames } from '../../repo/index.js';
import type { DiffProblem, DiffSide, NodeComparison } from './change-walk.js';

/** What the content checks of one volume cost. */
export interface ContentChecks {
  /** Files (same size, same place on the volume) some of whose bytes lie in changed ranges, read to tell. */
  filesRead: number;
  /** Bytes read to tell, on each side. */
  bytesRead: number;
  /** Files whose content could not be checked (the reader cannot tell where files lie): their metadata alone decided. */
  unchecked: number;
}

/** Read in pieces of this size when checking a file's changed bytes. */
const READ_PIECE = 1 << 20;

/** One side of a volume comparison: a filesystem, each directory listed and sorted by name. */
export function filesystemSide(fs: Filesystem, onProblem: (problem: DiffProblem) => void): DiffSide<FsNode> {
  return {
    list: async (directory, path) => {
      const entries = await fs.readdir(directory);
      const out: { name: string; node: FsNode }[] = [];
      for (const entry of entries) {
        if (entry.node !== undefined) out.push({ name: entry.name, node: entry.node });
        else onProblem({ path: `${path}/${entry.name}`, code: entry.error?.code ?? 'E_FS_CORRUPT', message: entry.error?.message ?? 'unreadable entry' });
      }
      return out.sort((x, y) => compareNames(x.name, y.name));
    },
    type: (node) => node.type,
    size: (node) => (node.type === 'file' ? node.size : undefined),
    id: (node) => node.id,
  };
}

/**
 * Compares two nodes at one path of a volume's filesystem in two snapshots, reading metadata
 * and, only where needed, a few file bytes. `changed`: the volume's byte ranges that differ
 * between the snapshots (sorted, merged), as the disk indexes tell.
 *
 * A file is `M` when its size differs; when its data lies elsewhere on the volume (rewritten,
 * replaced by a rename, moved by a defragmenter: not read to tell); or when, lying at the same
 * places, some of its bytes are in changed ranges and differ when read from both snapshots.
 * That last check finds content changed under a preserved mtime (a tool that restores times,
 * a write straight to the device, tampering), and reads only the changed blocks a file
 * crosses: a file sharing a changed block with another file is read there and found equal.
 * Symlinks are `M` when their target differs, devices their numbers, NTFS files their
 * alternate streams (names and sizes). `U`: mode, owner, modification time (not for folders:
 * it follows their entries), attributes, extended attributes.
 */
export class FilesystemComparison implements NodeComparison<FsNode> {
  readonly checks: ContentChecks = { filesRead: 0, bytesRead: 0, unchecked: 0 };

  constructor(
    private readonly fsA: Filesystem,
    private readonly fsB: Filesystem,
    private readonly changed: readonly ByteRange[],
    private readonly signal?: AbortSignal,
  ) {}

  sameSubtree(): boolean {
    return false; // a listing may be unchanged while what it names changed elsewhere (inode tables)
  }

  async compare(a: FsNode, b: FsNode, path: string): Promise<'M' | 'U' | undefined> {
    if (await this.contentChanged(a, b, path)) return 'M';
    return (await this.metadataChanged(a, b)) ? 'U' : undefined;
  }

  private async contentChanged(a: FsNode, b: FsNode, path: string): Promise<boolean> {
    switch (b.type) {
      case 'file':
        if (a.size !== b.size || !sameStreams(a, b)) return true;
        return this.dataChanged(a, b, path);
      case 'symlink':
        return (await this.fsA.readlink(a)) !== (await this.fsB.readlink(b));
      case 'char-device':
      case 'block-device':
        return a.rdev?.major !== b.rdev?.major || a.rdev?.minor !== b.rdev?.minor;
      default:
        return false;
    }
  }

  private async metadataChanged(a: FsNode, b: FsNode): Promise<boolean> {
    if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid) return true;
    if (b.type !== 'directory' && !sameTime(a.mtimeMs, b.mtimeMs)) return true;
    if ((a.attributes ?? []).join(',') !== (b.attributes ?? []).join(',')) return true;
    if (this.fsA.xattrs === undefined || this.fsB.xattrs === undefined) return false;
    const xa = await this.fsA.xattrs(a);
    const xb = await this.fsB.xattrs(b);
    return xa.length !== xb.length || xa.some((x, i) => x.name !== xb[i]?.name || Buffer.compare(Buffer.from(x.value), Buffer.from(xb[i]?.value ?? [])) !== 0);
  }

  /**
   * Whether a file of one size on both sides holds other bytes: its data extents compared
   * (a different place: changed), then the bytes at places in changed ranges read from both.
   */
  private async dataChanged(a: FsNode, b: FsNode, path: string): Promise<boolean> {
    if (this.fsA.physicalExtents === undefined || this.fsB.physicalExtents === undefined) {
      this.checks.unchecked += 1;
      return false;
    }
    const itA = contentExtents(this.fsA.physicalExtents(a))[Symbol.asyncIterator]();
    const itB = contentExtents(this.fsB.physicalExtents(b))[Symbol.asyncIterator]();
    const suspect: ByteRange[] = [];
    try {
      for (;;) {
        const [x, y] = await Promise.all([itA.next(), itB.next()]);
        if (x.done === true || y.done === true) {
          if (x.done !== y.done) return true;
          break;
        }
        if (!sameExtent(x.value, y.value)) return true;
        suspect.push(...this.changedPart(y.value));
      }
    } finally {
      await Promise.all([itA.return?.(), itB.return?.()]);
    }
    if (suspect.length === 0) return false;
    this.checks.filesRead += 1;
    for (const range of suspect) {
      for (let at = range.offset; at < range.offset + range.length; at += READ_PIECE) {
        if (this.signal?.aborted === true) throw new CofferError('E_INTERRUPTED', `interrupted while comparing ${path}`);
        const length = Math.min(READ_PIECE, range.offset + range.length - at);
        const [bytesA, bytesB] = await Promise.all([this.fsA.read(a, at, length), this.fsB.read(b, at, length)]);
        this.checks.bytesRead += bytesB.length;
        if (Buffer.compare(Buffer.from(bytesA.buffer, bytesA.byteOffset, bytesA.byteLength), Buffer.from(bytesB.buffer, bytesB.byteOffset, bytesB.byteLength)) !== 0) return true;
      }
    }
    return false;
  }

  /** The file ranges of an extent whose device bytes lie in changed ranges (all of a packed extent's, if any). */
  private changedPart(extent: FsPhysicalExtent): ByteRange[] {
    const out: ByteRange[] = [];
    const end = extent.deviceOffset + extent.length;
    for (let i = firstEndingAfter(this.changed, extent.deviceOffset); i < this.changed.length; i++) {
      const c = this.changed[i] as ByteRange;
      if (c.offset >= end) break;
      if (extent.kind === 'packed') return [{ offset: extent.fileOffset, length: extent.fileLength }];
      const from = Math.max(c.offset, extent.deviceOffset);
      const to = Math.min(c.offset + c.length, end);
      out.push({ offset: extent.fileOffset + (from - extent.deviceOffset), length: to - from });
    }
    return out;
  }
}

/** A node's content extents (data and packed, not its metadata), adjacent data runs merged: two maps that split one run differently compare equal. */
async function* contentExtents(extents: AsyncIterable<FsPhysicalExtent>): AsyncIterable<FsPhysicalExtent> {
  let run: FsPhysicalExtent | undefined;
  for await (const e of extents) {
    if (e.kind === 'metadata') continue;
    if (run !== undefined && run.kind === 'data' && e.kind === 'data' && run.fileOffset + run.fileLength === e.fileOffset && run.deviceOffset + run.length === e.deviceOffset) {
      run = { ...run, fileLength: run.fileLength + e.fileLength, length: run.length + e.length };
      continue;
    }
    if (run !== undefined) yield run;
    run = { ...e };
  }
  if (run !== undefined) yield run;
}

function sameExtent(x: FsPhysicalExtent, y: FsPhysicalExtent): boolean {
  return x.kind === y.kind && x.fileOffset === y.fileOffset && x.fileLength === y.fileLength && x.deviceOffset === y.deviceOffset && x.length === y.length;
}

function sameTime(x: number, y: number): boolean {
  return x === y || (Number.isNaN(x) && Number.isNaN(y));
}

function sameStreams(a: FsNode, b: FsNode): boolean {
  const show = (n: FsNode) => (n.streams ?? []).map((s) => `${s.name}:${s.size}`).join('/');
  return show(a) === show(b);
}

/** The index of the first range ending after `offset` (binary search over sorted, disjoint ranges). */
function firstEndingAfter(ranges: readonly ByteRange[], offset: number): number {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const r = ranges[mid] as ByteRange;
    if (r.offset + r.length <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
