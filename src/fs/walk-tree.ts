import { CofferError } from '../errors/index.js';
import type { Filesystem, FsNode } from './filesystem.js';

/** Deeper than any real tree (PATH_MAX allows ~2000 levels of one-letter names). */
export const MAX_WALK_DEPTH = 2048;

/** One step of a walk: a node reached by `path` (names as on disk), or an entry that failed. */
export type WalkItem =
  | { kind: 'enter'; path: string[]; node: FsNode }
  | { kind: 'leave'; path: string[]; node: FsNode }
  | { kind: 'entry'; path: string[]; node: FsNode }
  | { kind: 'error'; path: string[]; error: CofferError };

/**
 * Walks the tree below `start` depth-first, in on-disk order: directories are entered
 * (`enter`), their entries listed, then left (`leave`, so a caller can set a directory's
 * times after its children); other nodes are yielded as `entry`. Symlinks are never
 * followed. A directory already on the current path (a loop on a damaged disk) or deeper
 * than {@link MAX_WALK_DEPTH}, and a directory that cannot be read, are yielded as
 * `error` and skipped; the walk goes on.
 */
export async function* walkTree(fs: Filesystem, start: FsNode, startPath: string[] = []): AsyncIterable<WalkItem> {
  if (start.type !== 'directory') {
    yield { kind: 'entry', path: startPath, node: start };
    return;
  }
  const onPath = new Set<string>();
  async function* visit(node: FsNode, path: string[]): AsyncIterable<WalkItem> {
    if (onPath.has(node.id)) {
      yield { kind: 'error', path, error: new CofferError('E_FS_CORRUPT', `/${path.join('/')}: directory loop (it contains itself)`) };
      return;
    }
    if (path.length - startPath.length > MAX_WALK_DEPTH) {
      yield { kind: 'error', path, error: new CofferError('E_FS_CORRUPT', `/${path.join('/')}: deeper than ${MAX_WALK_DEPTH} levels`) };
      return;
    }
    let entries;
    try {
      entries = await fs.readdir(node);
    } catch (error) {
      if (!(error instanceof CofferError)) throw error; // a bug, not damage: let it surface
      yield { kind: 'error', path, error };
      return;
    }
    onPath.add(node.id);
    yield { kind: 'enter', path, node };
    for (const entry of entries) {
      const childPath = [...path, entry.name];
      if (entry.node === undefined) {
        yield { kind: 'error', path: childPath, error: entry.error ?? new CofferError('E_FS_CORRUPT', `/${childPath.join('/')}: unreadable entry`) };
      } else if (entry.node.type === 'directory') {
        yield* visit(entry.node, childPath);
      } else {
        yield { kind: 'entry', path: childPath, node: entry.node };
      }
    }
    onPath.delete(node.id);
    yield { kind: 'leave', path, node };
  }
  yield* visit(start, startPath);
}
