import { CofferError } from '../errors/index.js';
import type { Filesystem, FsNode, FsNodeType, FsPhysicalExtent } from './filesystem.js';
import { fsUnsupported } from './fs-errors.js';
import { walkTree } from './walk-tree.js';

/** Bytes `[offset, offset + length)` of a device or of a file. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** A file, directory or link some of whose bytes lie in a damaged range. */
export interface AffectedFile {
  /** Absolute path in the filesystem (`/docs/readme.txt`), names as on disk. */
  path: string;
  type: FsNodeType;
  /** The bytes of its content that lie in damaged ranges, in order, merged. */
  ranges: ByteRange[];
  /** Set when its own metadata is damaged ('inode 12', 'MFT record 40'): all of it is lost. */
  metadata?: string[];
  /** Which of the damaged ranges given it meets (indices into them, ascending). */
  hits: number[];
}

/** What {@link findAffectedFiles} found. */
export interface AffectedFilesReport {
  files: AffectedFile[];
  /**
   * Folders and entries that could not be read, or whose place on the device could not be
   * told (their own metadata is damaged, most likely by the same damage): the files below a
   * folder listed here are unknown.
   */
  unknown: { path: string; error: string }[];
  /** True when the walk stopped early, at `maxFiles` affected files (or `maxUnknown` unknowns). */
  truncated: boolean;
}

/** Options of {@link findAffectedFiles}. */
export interface FindAffectedOptions {
  /** Stop after this many affected files (default {@link DEFAULT_MAX_AFFECTED_FILES}). */
  maxFiles?: number;
  /** Stop after this many unreadable folders or entries (default 100). */
  maxUnknown?: number;
  signal?: AbortSignal;
}

/**
 * A report names files for a human to restore from elsewhere: past a thousand, the list is
 * no longer read, and the walk of a large filesystem is cut short.
 */
export const DEFAULT_MAX_AFFECTED_FILES = 1000;

/**
 * The files, directories and links of `fs` whose bytes (content or own metadata, as
 * {@link Filesystem.physicalExtents} tells) overlap `damaged`, ranges of the filesystem's
 * device. Walks the whole tree from the root, reading only metadata (directories, inodes,
 * block maps), never file content. A folder that cannot be listed (often because the damage
 * is in it) is reported in `unknown`, and the walk goes on. Hard links are listed under each
 * of their names; each file says which of the `damaged` ranges it meets (`hits`). Throws
 * `E_FS_UNSUPPORTED` when the reader cannot tell where files lie.
 *
 * @example
 * const report = await findAffectedFiles(fs, [{ offset: 1 << 20, length: 262144 }]);
 * // { files: [{ path: '/big.bin', type: 'file', ranges: [{ offset: 0, length: 262144 }], hits: [0] }], unknown: [], truncated: false }
 */
export async function findAffectedFiles(fs: Filesystem, damaged: readonly ByteRange[], options: FindAffectedOptions = {}): Promise<AffectedFilesReport> {
  if (fs.physicalExtents === undefined) throw fsUnsupported(fs.type, 'this reader cannot tell where files lie on the volume');
  const maxFiles = options.maxFiles ?? DEFAULT_MAX_AFFECTED_FILES;
  const maxUnknown = options.maxUnknown ?? 100;
  const ranges = indexRanges(damaged);
  const report: AffectedFilesReport = { files: [], unknown: [], truncated: false };
  if (ranges.length === 0) return report;
  const seen = new Map<string, Omit<AffectedFile, 'path'> | null>();
  const check = async (path: string[], node: FsNode): Promise<void> => {
    let hit = seen.get(node.id);
    if (hit === undefined) {
      try {
        hit = await overlap(fs.physicalExtents!(node), node.type, ranges);
      } catch (error) {
        if (!(error instanceof CofferError) || error.code === 'E_INTERRUPTED') throw error;
        report.unknown.push({ path: showPath(path), error: `where it lies cannot be told: ${error.message}` });
        return;
      }
      seen.set(node.id, hit);
    }
    if (hit !== null) report.files.push({ path: showPath(path), ...hit });
  };
  let root: FsNode;
  try {
    root = await fs.root();
  } catch (error) {
    if (!(error instanceof CofferError) || error.code === 'E_INTERRUPTED') throw error;
    report.unknown.push({ path: '/', error: error.message });
    return report;
  }
  for await (const item of walkTree(fs, root)) {
    if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'interrupted while looking for affected files');
    if (item.kind === 'enter' || item.kind === 'entry') await check(item.path, item.node);
    else if (item.kind === 'error') report.unknown.push({ path: showPath(item.path), error: item.error.message });
    if (report.files.length >= maxFiles || report.unknown.length >= maxUnknown) {
      report.truncated = true;
      break;
    }
  }
  return report;
}

function showPath(path: readonly string[]): string {
  return `/${path.join('/')}`;
}

/** Sorted, merged copies of `ranges` (empty ones dropped). */
export function mergeRanges(ranges: readonly ByteRange[]): ByteRange[] {
  const sorted = ranges.filter((r) => r.length > 0).map((r) => ({ offset: r.offset, length: r.length })).sort((a, b) => a.offset - b.offset);
  const out: ByteRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.offset <= last.offset + last.length) last.length = Math.max(last.length, r.offset + r.length - last.offset);
    else out.push(r);
  }
  return out;
}

/** Damaged ranges merged for searching, each with the given ranges (and their indices) it covers. */
type IndexedRange = ByteRange & { parts: { index: number; offset: number; length: number }[] };

function indexRanges(damaged: readonly ByteRange[]): IndexedRange[] {
  const sorted = damaged.map((r, index) => ({ index, offset: r.offset, length: r.length })).filter((r) => r.length > 0).sort((a, b) => a.offset - b.offset);
  const out: IndexedRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.offset <= last.offset + last.length) {
      last.length = Math.max(last.length, r.offset + r.length - last.offset);
      last.parts.push(r);
    } else {
      out.push({ offset: r.offset, length: r.length, parts: [r] });
    }
  }
  return out;
}

/** The file ranges and metadata of one node's extents that meet `damaged` (sorted, merged); null when none. */
async function overlap(extents: AsyncIterable<FsPhysicalExtent>, type: FsNodeType, damaged: readonly IndexedRange[]): Promise<Omit<AffectedFile, 'path'> | null> {
  const fileRanges: ByteRange[] = [];
  const metadata: string[] = [];
  const hits = new Set<number>();
  for await (const extent of extents) {
    const end = extent.deviceOffset + extent.length;
    for (let i = firstEndingAfter(damaged, extent.deviceOffset); i < damaged.length; i++) {
      const d = damaged[i]!;
      if (d.offset >= end) break;
      for (const part of d.parts) if (part.offset < end && extent.deviceOffset < part.offset + part.length) hits.add(part.index);
      if (extent.kind === 'metadata') {
        const what = extent.what ?? 'metadata';
        if (!metadata.includes(what)) metadata.push(what);
      } else if (extent.kind === 'packed') {
        if (extent.fileLength > 0) fileRanges.push({ offset: extent.fileOffset, length: extent.fileLength });
      } else {
        const from = Math.max(d.offset, extent.deviceOffset);
        const to = Math.min(d.offset + d.length, end);
        fileRanges.push({ offset: extent.fileOffset + (from - extent.deviceOffset), length: to - from });
      }
    }
  }
  if (fileRanges.length === 0 && metadata.length === 0) return null;
  return { type, ranges: mergeRanges(fileRanges), ...(metadata.length > 0 ? { metadata } : {}), hits: [...hits].sort((a, b) => a - b) };
}

/** The index of the first range ending after `offset` (binary search over sorted, disjoint ranges). */
function firstEndingAfter(ranges: readonly ByteRange[], offset: number): number {
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const r = ranges[mid]!;
    if (r.offset + r.length <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
