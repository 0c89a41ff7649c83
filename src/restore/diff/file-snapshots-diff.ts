import { CofferError } from '../../errors/index.js';
import { getFileTree, type ContentPiece, type Repository, type Snapshot, type TreeEntry } from '../../repo/index.js';
import { emptyCounts, walkChanges, type ChangeCounts, type DiffProblem, type DiffSide, type NodeComparison, type PathChange } from './change-walk.js';

/** What {@link diffFileSnapshots} found, besides the changes it reported one by one. */
export interface FilesDiffSummary {
  counts: ChangeCounts;
  /**
   * Bytes of content added: whole files added, and for a changed file the chunks its new
   * version holds that its old one did not. Data copied from a file that did not change counts
   * (as a fresh copy takes space on a disk); holes do not.
   */
  bytesAdded: number;
  /** The same the other way: files removed, and chunks a changed file no longer holds. */
  bytesRemoved: number;
  /** Trees (directories) read from the repository, of both snapshots. */
  treesRead: number;
  /** Directories in both snapshots whose trees were the same object, so nothing below them was read. */
  treesSkipped: number;
  problems: DiffProblem[];
}

/**
 * Compares two file snapshots (`coffer backup --files`), reporting each changed path to
 * `onChange` as it is found, depth first in name order. A directory whose tree is the same
 * object in both (tree ids are content hashes of the entries, subtree ids included) is
 * unchanged all the way down and is not read. A file is `M` when its chunk list differs (the
 * chunks are cut by content, so the same bytes give the same list), `U` when only its mode,
 * owner, modification time or extended attributes differ; folders are compared by mode,
 * owner and attributes (their mtime follows their entries, which are reported themselves);
 * access and change times are not compared. Trees that are missing or damaged are reported
 * as problems and what is below them skipped.
 */
export async function diffFileSnapshots(
  repo: Repository,
  a: Snapshot,
  b: Snapshot,
  options: { onChange: (change: PathChange) => void | Promise<void>; signal?: AbortSignal },
): Promise<FilesDiffSummary> {
  if (a.files === undefined || b.files === undefined) throw new CofferError('E_USAGE', 'both snapshots must be file snapshots');
  const summary: FilesDiffSummary = { counts: emptyCounts(), bytesAdded: 0, bytesRemoved: 0, treesRead: 0, treesSkipped: 0, problems: [] };
  const side: DiffSide<TreeEntry> = {
    list: async (directory) => {
      summary.treesRead += 1;
      const tree = await getFileTree(repo, directory.tree as string);
      return tree.entries.map((entry) => ({ name: entry.name, node: entry }));
    },
    type: (entry) => entry.type,
    size: (entry) => (entry.type === 'file' ? entry.size : undefined),
  };
  const comparison: NodeComparison<TreeEntry> = {
    sameSubtree: (x, y) => {
      const same = x.tree === y.tree;
      if (same) summary.treesSkipped += 1;
      return same;
    },
    compare: async (x, y) => (contentChanged(x, y) ? 'M' : metadataChanged(x, y) ? 'U' : undefined),
  };
  summary.counts = await walkChanges(
    { a: side, b: side },
    { a: rootEntry(a.files.tree), b: rootEntry(b.files.tree) },
    comparison,
    {
      change: async (change, x, y) => {
        countBytes(summary, change, x, y);
        await options.onChange(change);
      },
      problem: (p) => summary.problems.push(p),
    },
    options.signal !== undefined ? { signal: options.signal } : {},
  );
  return summary;
}

/** The root of a file snapshot as a directory entry (the same metadata on both sides: never `U`). */
function rootEntry(tree: string): TreeEntry {
  return { name: '', type: 'directory', mode: 0, uid: 0, gid: 0, mtime: '0', atime: '0', ctime: '0', inode: 0, links: 0, size: 0, tree };
}

function contentChanged(x: TreeEntry, y: TreeEntry): boolean {
  switch (x.type) {
    case 'file':
      return x.size !== y.size || !samePieces(x.content ?? [], y.content ?? []);
    case 'symlink':
      return x.target !== y.target;
    case 'char-device':
    case 'block-device':
      return x.rdev?.[0] !== y.rdev?.[0] || x.rdev?.[1] !== y.rdev?.[1];
    default:
      return false;
  }
}

function metadataChanged(x: TreeEntry, y: TreeEntry): boolean {
  if (x.mode !== y.mode || x.uid !== y.uid || x.gid !== y.gid) return true;
  if (x.type !== 'directory' && x.mtime !== y.mtime) return true;
  const xa = x.xattrs ?? [];
  const ya = y.xattrs ?? [];
  return xa.length !== ya.length || xa.some(([name, value], i) => ya[i]?.[0] !== name || ya[i]?.[1] !== value);
}

function samePieces(x: readonly ContentPiece[], y: readonly ContentPiece[]): boolean {
  return x.length === y.length && x.every((piece, i) => piece[0] === y[i]?.[0] && piece[1] === y[i]?.[1]);
}

/** The data bytes (chunks, not holes or zero runs) of a file's pieces, by chunk id. */
function chunksOf(entry: TreeEntry): Map<string, number> {
  const out = new Map<string, number>();
  for (const [what, length] of entry.content ?? []) if (what !== 'hole' && what !== 'zero') out.set(what, length);
  return out;
}

/** All the data bytes of a file (a chunk that repeats counts each time); 0 for what is not a file. */
function dataBytes(entry: TreeEntry | undefined): number {
  if (entry?.type !== 'file') return 0;
  return (entry.content ?? []).reduce((sum, [what, length]) => (what === 'hole' || what === 'zero' ? sum : sum + length), 0);
}

function countBytes(summary: FilesDiffSummary, change: PathChange, a: TreeEntry | undefined, b: TreeEntry | undefined): void {
  if (change.change === 'M' && a !== undefined && b !== undefined && a.type === 'file') {
    const before = chunksOf(a);
    const after = chunksOf(b);
    for (const [id, length] of after) if (!before.has(id)) summary.bytesAdded += length;
    for (const [id, length] of before) if (!after.has(id)) summary.bytesRemoved += length;
  } else if (change.change === '+' || change.change === '-' || change.change === 'T') {
    summary.bytesAdded += change.change === '-' ? 0 : dataBytes(b);
    summary.bytesRemoved += change.change === '+' ? 0 : dataBytes(a);
  }
}
