import { isCofferError, type CofferError } from '../errors/index.js';
import { ChunksById } from './chunks-by-id.js';
import { ObjectKind } from './format/envelope.js';
import { decodeFileTree, encodeFileTree, type FileTree, type TreeEntry } from './format/file-tree.js';
import { treeKey } from './layout.js';
import type { Repository } from './repository.js';
import type { Snapshot } from './snapshots.js';

/**
 * Format 2: stages a tree's plaintext under its id into the backup's packs, unless stored or
 * staged already (the backup's chunk store does it; resolves once the bytes are copied).
 */
export type StageTree = (id: Buffer, hex: string, plaintext: Buffer) => Promise<void>;

/**
 * Stores a directory's tree unless it is there (trees are small: hashed, and in format 1
 * sealed, on the main thread). Returns its id and the bytes it added (format 2: 0, the packs
 * count them). Idempotent: the same entries are the same object. `present`: the id of a tree
 * the caller just read intact (an incremental's parent tree): when the entries encode to it,
 * the lookup is skipped. Format 1: an object under `trees/`. Format 2: a chunk in the
 * backup's packs through `stage` (docs/repository-format.md §19.10), which it requires.
 */
export async function putFileTree(repo: Repository, entries: readonly TreeEntry[], options: { present?: string; stage?: StageTree } = {}): Promise<{ id: string; bytesStored: number }> {
  const plaintext = encodeFileTree(entries);
  const objectId = repo.codec.idOf(plaintext);
  const id = objectId.toString('hex');
  if (id === options.present) return { id, bytesStored: 0 };
  if (repo.config.version === 2) {
    if (options.stage === undefined) repo.refuseFormat2('writing a file tree outside a backup');
    await options.stage?.(objectId, id, plaintext);
    return { id, bytesStored: 0 };
  }
  const key = treeKey(id);
  if (await repo.backend.has(key)) return { id, bytesStored: 0 };
  const sealed = repo.codec.seal(plaintext, ObjectKind.fileTree, objectId);
  await repo.backend.put(key, sealed);
  return { id, bytesStored: sealed.length };
}

/** Format 2: one reader of trees per open repository (its index loaded once, its frames cached). */
const packedTrees = new WeakMap<Repository, ChunksById>();

/**
 * A tree by id, opened and validated (`E_MISSING_OBJECT`, `E_CORRUPT_OBJECT`); `stored`: its
 * stored bytes when the caller read them already (format 1 only). Format 2: read from its
 * frame, found through the index segments (docs/repository-format.md §19.10).
 */
export async function getFileTree(repo: Repository, id: string, stored?: Buffer): Promise<FileTree> {
  if (repo.config.version === 2) {
    let reader = packedTrees.get(repo);
    // Tree frames are opened on this thread: it decodes the trees anyway, and an incremental
    // backup of an unchanged tree then starts no codec thread (bench/README.md, files).
    if (reader === undefined) packedTrees.set(repo, (reader = new ChunksById(repo, { framesOnMainThread: true })));
    return decodeFileTree(await reader.read(Buffer.from(id, 'hex')), `tree ${id}`);
  }
  const key = treeKey(id);
  const plaintext = repo.codec.open(stored ?? (await repo.backend.get(key)), ObjectKind.fileTree, key, Buffer.from(id, 'hex'));
  return decodeFileTree(plaintext, key);
}

/** One file's chunk, as {@link walkFileTrees} visits it. */
export interface FileChunkVisit {
  snapshot: Snapshot;
  /** The file's path in the snapshot (`/etc/passwd`). */
  path: string;
  /** Where the chunk lies in the file. */
  offset: number;
  length: number;
  /** The chunk id, 64 hex. */
  id: string;
}

/** A tree that could not be read, and the directory it held. */
export interface TreeDamage {
  snapshot: Snapshot;
  path: string;
  tree: string;
  error: CofferError;
}

/**
 * Visits every tree and every chunk of the file snapshots among `snapshots` (the others are
 * skipped), depth first. With `distinct` (a mark, as prune's), a tree already walked —
 * shared by several snapshots, or reached twice — is visited but not read again, and its
 * chunks are not visited again; without it every file of every snapshot is visited (verify
 * names every file a damaged chunk touches). Trees that are missing or corrupt are reported
 * to `onDamage` and their subtrees skipped. Memory: one tree per level of depth.
 */
export async function walkFileTrees(
  repo: Repository,
  snapshots: readonly Snapshot[],
  visit: { tree?: (id: string, snapshot: Snapshot) => void; chunk?: (chunk: FileChunkVisit) => void },
  onDamage: (damage: TreeDamage) => void,
  options: { distinct?: boolean } = {},
): Promise<void> {
  const seen = new Set<string>();
  for (const snapshot of snapshots) {
    if (snapshot.files === undefined) continue;
    const walk = async (id: string, path: string): Promise<void> => {
      visit.tree?.(id, snapshot);
      if (options.distinct === true) {
        if (seen.has(id)) return;
        seen.add(id);
      }
      let tree: FileTree;
      try {
        tree = await getFileTree(repo, id);
      } catch (error) {
        if (isCofferError(error, 'E_MISSING_OBJECT') || isCofferError(error, 'E_CORRUPT_OBJECT')) {
          onDamage({ snapshot, path: path === '' ? '/' : path, tree: id, error });
          return;
        }
        throw error;
      }
      for (const entry of tree.entries) {
        const child = `${path}/${entry.name}`;
        if (entry.type === 'directory') await walk(entry.tree as string, child);
        else if (entry.content !== undefined && visit.chunk !== undefined) {
          let offset = 0;
          for (const [what, length] of entry.content) {
            if (what !== 'hole' && what !== 'zero') visit.chunk({ snapshot, path: child, offset, length, id: what });
            offset += length;
          }
        }
      }
    };
    await walk(snapshot.files.tree, '');
  }
}
