import { forEachLimited } from '../../concurrency/index.js';
import { CofferError } from '../../errors/index.js';
import { getFileTree, putFileTree } from '../file-trees.js';
import type { ContentPiece, FileTree, TreeEntry } from '../format/file-tree.js';
import type { SnapshotManifest } from '../format/manifest.js';
import { treeKey } from '../layout.js';
import type { Repository } from '../repository.js';
import type { Snapshot } from '../snapshots.js';
import type { CopiedPair, CopyContext } from './copy-snapshot.js';

/** Chunks translated at once within a directory (as copy-snapshot.ts does within a page). */
const CHUNKS_IN_FLIGHT = 16;

/** A directory's tree in an earlier copied snapshot, and the same directory's tree in its copy. */
interface TreePair {
  source: string;
  copy: string;
}

/**
 * The destination's manifest for file snapshot `snapshot` (docs/repository-format.md §16):
 * its trees are rewritten bottom-up with the destination's chunk ids (a tree names its
 * chunks and subtrees by id, and ids depend on the key), each chunk and tree stored and read
 * back before the tree naming it is written; the manifest itself is not written.
 *
 * Incremental: walked beside an earlier snapshot of the same host and its copy (`previous`),
 * a subtree whose id did not change is the copy's subtree, unread, and a file whose content
 * list did not change takes the copy's content list, its chunks unread. Between repositories
 * sharing their keys ids do not change, and a tree the destination holds already is taken
 * whole (a tree is written only after everything it names, by backups and syncs alike).
 */
export async function copyFileSnapshotData(context: CopyContext, snapshot: Snapshot, previous: CopiedPair | null, parent: string | null): Promise<SnapshotManifest> {
  const files = snapshot.files;
  if (files === undefined) throw new Error('copyFileSnapshotData: not a file snapshot');
  const copier = new TreeCopier(context);
  const before = previous?.source.files !== undefined && previous.copy.files !== undefined ? { source: previous.source.files.tree, copy: previous.copy.files.tree } : null;
  const tree = await copier.copy(files.tree, before);
  const { id: _sourceId, ...manifest } = snapshot;
  return { ...manifest, parent, files: { ...files, tree } };
}

class TreeCopier {
  /** Source tree id → its destination id, for subtrees met twice in one snapshot. */
  private readonly copied = new Map<string, string>();
  private done = 0;

  constructor(private readonly context: CopyContext) {}

  async copy(id: string, before: TreePair | null): Promise<string> {
    const { src, dst, counters, transfer } = this.context;
    if (this.context.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'sync interrupted (run it again: what was sent is kept)');
    if (before !== null && before.source === id) {
      counters.treesReused++;
      return before.copy;
    }
    const known = this.copied.get(id);
    if (known !== undefined) return known;
    if (transfer.sameKeys && (await dst.backend.has(treeKey(id)))) {
      counters.treesReused++;
      return id;
    }
    const tree = await readTree(src, id, counters, 'source');
    const earlier = before === null ? null : await Promise.all([readTree(src, before.source, counters, 'source'), readTree(dst, before.copy, counters, 'destination')]);
    const byName = (t: FileTree | undefined) => new Map((t?.entries ?? []).map((e) => [e.name, e]));
    const [oldSource, oldCopy] = [byName(earlier?.[0]), byName(earlier?.[1])];

    const entries: TreeEntry[] = [];
    const pieces: { content: ContentPiece[]; index: number }[] = [];
    for (const entry of tree.entries) {
      const old = oldSource.get(entry.name);
      const oldCopied = oldCopy.get(entry.name);
      if (entry.type === 'directory') {
        const pair = old?.type === 'directory' && oldCopied?.type === 'directory' ? { source: old.tree as string, copy: oldCopied.tree as string } : null;
        entries.push({ ...entry, tree: await this.copy(entry.tree as string, pair) });
      } else if (entry.content !== undefined) {
        if (old?.content !== undefined && oldCopied?.content !== undefined && sameContent(old.content, entry.content) && oldCopied.content.length === entry.content.length) {
          counters.chunksReused += entry.content.filter(([what]) => what !== 'hole' && what !== 'zero').length;
          entries.push({ ...entry, content: oldCopied.content });
        } else {
          const content = entry.content.map((p): ContentPiece => [...p]);
          for (let index = 0; index < content.length; index++) if (content[index]?.[0] !== 'hole' && content[index]?.[0] !== 'zero') pieces.push({ content, index });
          entries.push({ ...entry, content });
        }
        this.done += entry.size;
      } else entries.push({ ...entry });
    }
    await forEachLimited(pieces.values(), CHUNKS_IN_FLIGHT, async ({ content, index }) => {
      const piece = content[index] as ContentPiece;
      piece[0] = (await (await transfer.translate(Buffer.from(piece[0], 'hex'))).entry).toString('hex');
    });
    this.context.onPage?.(this.done);
    const copyId = await writeTree(dst, entries, counters);
    this.copied.set(id, copyId);
    return copyId;
  }
}

function sameContent(a: readonly ContentPiece[], b: readonly ContentPiece[]): boolean {
  return a.length === b.length && a.every(([what, length], i) => b[i]?.[0] === what && b[i]?.[1] === length);
}

/** A tree, read, opened and validated, counting the stored bytes. */
async function readTree(repo: Repository, id: string, counters: CopyContext['counters'], side: 'source' | 'destination'): Promise<FileTree> {
  const key = treeKey(id);
  const stored = await repo.backend.get(key);
  if (side === 'source') counters.bytesRead += stored.length;
  else counters.bytesReadFromDestination += stored.length;
  return getFileTree(repo, id, stored);
}

/** Stores a tree unless present, and reads a new one back; returns its id. */
async function writeTree(dst: Repository, entries: TreeEntry[], counters: CopyContext['counters']): Promise<string> {
  const { id, bytesStored } = await putFileTree(dst, entries);
  if (bytesStored > 0) {
    counters.treesSent++;
    counters.treeBytesSent += bytesStored;
    counters.bytesWritten += bytesStored;
    try {
      await readTree(dst, id, counters, 'destination');
    } catch (error) {
      throw new CofferError('E_VERIFY_FAILED', `file tree ${id} written to ${dst.location} does not read back intact: ${(error as Error).message}`, {
        subject: { repository: dst.location, object: treeKey(id) },
        cause: error,
      });
    }
  }
  return id;
}
