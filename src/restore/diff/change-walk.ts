import { CofferError } from '../../errors/index.js';
import { MAX_WALK_DEPTH } from '../../fs/index.js';
import { compareNames } from '../../repo/index.js';

/**
 * How a path changed, in restic's letters: `+` added, `-` removed, `M` content modified (a
 * file's data, a symlink's target, a device's numbers), `T` type changed (a file became a
 * folder…), `U` metadata only (mode, owner, modification time, extended attributes).
 */
export type ChangeLetter = '+' | '-' | 'M' | 'T' | 'U';

/** One changed path. */
export interface PathChange {
  change: ChangeLetter;
  /** The absolute path (`/etc/passwd`), names as stored (printableName shows them). */
  path: string;
  /** Its type (`file`, `directory`, `symlink` …): in the second snapshot, or the first for `-`. */
  type: string;
  /** `T` only: its type in the first snapshot. */
  was?: string;
  /** Its size in bytes (files), in the second snapshot or the first for `-`. */
  size?: number;
}

/** Paths counted per kind of entry and letter. */
export type ChangeCounts = Record<'files' | 'directories' | 'others', Record<ChangeLetter, number>>;

/** A directory that could not be listed or an entry that could not be compared: what is below it is unknown. */
export interface DiffProblem {
  path: string;
  code: string;
  message: string;
}

/** One side of a comparison: a tree of nodes, listed directory by directory. */
export interface DiffSide<N> {
  /** The entries of directory `node`, sorted by {@link compareNames} (the order file trees keep). */
  list(directory: N, path: string): Promise<{ name: string; node: N }[]>;
  type(node: N): string;
  size(node: N): number | undefined;
  /** Identifies a directory on this side, to stop at one that contains itself (a damaged filesystem); optional. */
  id?(node: N): string;
}

/** How two nodes of one type at one path compare. */
export interface NodeComparison<N> {
  /** True when two directories are known to hold the same tree, so it is not walked (equal tree ids). */
  sameSubtree(a: N, b: N): boolean;
  /** `M` content changed, `U` metadata only, undefined unchanged; a directory is compared by its own metadata only. */
  compare(a: N, b: N, path: string): Promise<'M' | 'U' | undefined>;
}

/** Where a walk reports. */
export interface ChangeSink<N> {
  /** Each changed path, depth first in name order. */
  change(change: PathChange, a: N | undefined, b: N | undefined): void | Promise<void>;
  problem(problem: DiffProblem): void;
}

/** A fresh set of counts, all zero. */
export function emptyCounts(): ChangeCounts {
  const letters = (): Record<ChangeLetter, number> => ({ '+': 0, '-': 0, M: 0, T: 0, U: 0 });
  return { files: letters(), directories: letters(), others: letters() };
}

/** The counts' row for a type. */
export function countsRow(counts: ChangeCounts, type: string): Record<ChangeLetter, number> {
  return type === 'file' ? counts.files : type === 'directory' ? counts.directories : counts.others;
}

/**
 * Walks two trees side by side from their roots, merging each directory's sorted listings,
 * and reports every path that differs: names only in `b` (and all below them) as `+`, only in
 * `a` as `-`, a changed type as `T` (what was below a former folder `-`, below a new one `+`),
 * and for nodes of one type what `compare` says. Directories whose trees are known identical
 * (`sameSubtree`) are not listed. A directory that cannot be listed (damage) or a node that
 * cannot be compared is reported as a problem and the walk goes on. Memory: one listing per
 * side per level of depth. Returns the counts of what it reported.
 */
export async function walkChanges<N>(
  sides: { a: DiffSide<N>; b: DiffSide<N> },
  roots: { a: N; b: N },
  comparison: NodeComparison<N>,
  sink: ChangeSink<N>,
  options: { signal?: AbortSignal } = {},
): Promise<ChangeCounts> {
  const counts = emptyCounts();
  const onPathA = new Set<string>();
  const onPathB = new Set<string>();
  const emit = async (change: PathChange, a: N | undefined, b: N | undefined): Promise<void> => {
    countsRow(counts, change.type)[change.change] += 1;
    await sink.change(change, a, b);
  };
  const problem = (path: string, error: unknown): void => {
    if (!(error instanceof CofferError) || error.code === 'E_INTERRUPTED') throw error;
    sink.problem({ path: path || '/', code: error.code, message: error.message });
  };
  const checkAborted = (): void => {
    if (options.signal?.aborted === true) throw new CofferError('E_INTERRUPTED', 'interrupted while comparing snapshots');
  };
  const list = async (side: DiffSide<N>, onPath: Set<string>, node: N, path: string, depth: number): Promise<{ name: string; node: N }[] | undefined> => {
    if (depth > MAX_WALK_DEPTH) {
      sink.problem({ path, code: 'E_FS_CORRUPT', message: `${path}: deeper than ${MAX_WALK_DEPTH} levels` });
      return undefined;
    }
    const id = side.id?.(node);
    if (id !== undefined && onPath.has(id)) {
      sink.problem({ path, code: 'E_FS_CORRUPT', message: `${path}: directory loop (it contains itself)` });
      return undefined;
    }
    try {
      return await side.list(node, path);
    } catch (error) {
      problem(path, error);
      return undefined;
    }
  };
  /** Everything below a directory only one side has, as `letter`. */
  const whole = async (letter: '+' | '-', side: DiffSide<N>, onPath: Set<string>, node: N, path: string, depth: number): Promise<void> => {
    checkAborted();
    const entries = await list(side, onPath, node, path, depth);
    if (entries === undefined) return;
    const id = side.id?.(node);
    if (id !== undefined) onPath.add(id);
    for (const entry of entries) {
      const child = `${path}/${entry.name}`;
      const type = side.type(entry.node);
      const size = side.size(entry.node);
      await emit({ change: letter, path: child, type, ...(size !== undefined ? { size } : {}) }, letter === '-' ? entry.node : undefined, letter === '+' ? entry.node : undefined);
      if (type === 'directory') await whole(letter, side, onPath, entry.node, child, depth + 1);
    }
    if (id !== undefined) onPath.delete(id);
  };
  const directory = async (a: N, b: N, path: string, depth: number): Promise<void> => {
    checkAborted();
    const entriesA = await list(sides.a, onPathA, a, path, depth);
    const entriesB = entriesA === undefined ? undefined : await list(sides.b, onPathB, b, path, depth);
    if (entriesA === undefined || entriesB === undefined) return;
    const idA = sides.a.id?.(a);
    const idB = sides.b.id?.(b);
    if (idA !== undefined) onPathA.add(idA);
    if (idB !== undefined) onPathB.add(idB);
    let i = 0;
    let j = 0;
    while (i < entriesA.length || j < entriesB.length) {
      const ea = entriesA[i];
      const eb = entriesB[j];
      const order = ea === undefined ? 1 : eb === undefined ? -1 : compareNames(ea.name, eb.name);
      if (order < 0 && ea !== undefined) {
        await added('-', sides.a, onPathA, ea, path, depth);
        i++;
      } else if (order > 0 && eb !== undefined) {
        await added('+', sides.b, onPathB, eb, path, depth);
        j++;
      } else if (ea !== undefined && eb !== undefined) {
        await both(ea.node, eb.node, `${path}/${eb.name}`, depth);
        i++;
        j++;
      }
    }
    if (idA !== undefined) onPathA.delete(idA);
    if (idB !== undefined) onPathB.delete(idB);
  };
  const added = async (letter: '+' | '-', side: DiffSide<N>, onPath: Set<string>, entry: { name: string; node: N }, path: string, depth: number): Promise<void> => {
    const child = `${path}/${entry.name}`;
    const type = side.type(entry.node);
    const size = side.size(entry.node);
    await emit({ change: letter, path: child, type, ...(size !== undefined ? { size } : {}) }, letter === '-' ? entry.node : undefined, letter === '+' ? entry.node : undefined);
    if (type === 'directory') await whole(letter, side, onPath, entry.node, child, depth + 1);
  };
  const both = async (a: N, b: N, path: string, depth: number): Promise<void> => {
    const typeA = sides.a.type(a);
    const typeB = sides.b.type(b);
    const size = sides.b.size(b);
    if (typeA !== typeB) {
      await emit({ change: 'T', path, type: typeB, was: typeA, ...(size !== undefined ? { size } : {}) }, a, b);
      if (typeA === 'directory') await whole('-', sides.a, onPathA, a, path, depth + 1);
      if (typeB === 'directory') await whole('+', sides.b, onPathB, b, path, depth + 1);
      return;
    }
    let letter: 'M' | 'U' | undefined;
    try {
      letter = await comparison.compare(a, b, path);
    } catch (error) {
      problem(path, error);
    }
    if (letter !== undefined) await emit({ change: letter, path, type: typeB, ...(size !== undefined ? { size } : {}) }, a, b);
    if (typeB === 'directory' && !comparison.sameSubtree(a, b)) await directory(a, b, path, depth + 1);
  };
  if (!comparison.sameSubtree(roots.a, roots.b)) await directory(roots.a, roots.b, '', 0);
  return counts;
}
