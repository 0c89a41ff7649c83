import { forEachLimited } from '../../concurrency/index.js';
import { CofferError } from '../../errors/index.js';
import { getFileTree, putFileTree } from '../file-trees.js';
import { ObjectKind } from '../format/envelope.js';
import { encodeFileTree, type ContentPiece, type FileTree, type TreeEntry } from '../format/file-tree.js';
import type { SnapshotManifest } from '../format/manifest.js';
import { treeKey } from '../layout.js';
import type { Repository } from '../repository.js';
import { storedManifest } from '../snapshot-tags.js';
import type { Snapshot } from '../snapshots.js';
import type { CopiedPair, CopyContext } from './copy-snapshot.js';
import type { PackedDestination } from './packed-destination.js';
import { TreeReader } from './tree-reader.js';
import { adoptWholePacks } from './whole-packs.js';

/** Chunks translated at once within a directory (as copy-snapshot.ts does within a page). */
const CHUNKS_IN_FLIGHT = 16;

/** A directory's tree in an earlier copied snapshot, and the same directory's tree in its copy. */
interface TreePair {
  source: string;
  copy: string;
}

/**
 * The destination's manifest for file snapshot `snapshot` (docs/repository-format.md §16,
 * §19.10): its trees are rewritten bottom-up with the destination's chunk ids (a tree names
 * its chunks and subtrees by id, and ids depend on the key); the manifest itself is not
 * written. Either side may be of either format:
 *
 * - a format 1 source's trees are objects under `trees/`; a format 2 source's trees and file
 *   chunks are chunks in packs, found by id through its index segments (`ChunksById`);
 * - into format 1 each chunk and tree is stored (and read back) before the tree naming it
 *   is written, so a tree present there has everything under it;
 * - into format 2 chunks are re-packed by the chunk destination and trees by a second one
 *   (packs of trees, as a backup writes them); a tree names ids only, so it need not wait
 *   for its chunks' packs. At the end of the snapshot the chunks' packs and segment are
 *   stored, then the trees', and every chunk and tree is read back, before the caller
 *   writes the manifest. Between two format 2 repositories sharing their keys, the packs of
 *   which the snapshot needs every chunk and tree are first copied whole (whole-packs.ts).
 *
 * Incremental: walked beside an earlier snapshot of the same host and its copy (`previous`),
 * a subtree whose id did not change is the copy's subtree, unread, and a file whose content
 * list did not change takes the copy's content list, its chunks unread. Between format 1
 * repositories sharing their keys ids do not change, and a tree the destination holds
 * already is taken whole. Into format 2 a tree found in the destination's segments is not
 * taken whole (a tree's segment may be written before its chunks' after a crash): its
 * chunks are each looked up, none read when present.
 */
export async function copyFileSnapshotData(context: CopyContext, snapshot: Snapshot, previous: CopiedPair | null, parent: string | null): Promise<SnapshotManifest> {
  const files = snapshot.files;
  if (files === undefined) throw new Error('copyFileSnapshotData: not a file snapshot');
  const copier = new TreeCopier(context, await context.transfer.treePacks());
  const before = previous?.source.files !== undefined && previous.copy.files !== undefined ? { source: previous.source.files.tree, copy: previous.copy.files.tree } : null;
  const wholePacks = context.transfer.wholePacks;
  if (wholePacks !== null) await adoptWholePacks({ src: context.src, counters: context.counters }, copier.neededEntries(files.tree, before?.source ?? null, wholePacks), wholePacks);
  const tree = await copier.copy(files.tree, before);
  await copier.finish();
  // The manifest is copied as it is, its prune generation (`prunedThrough`) included, so that a
  // copy between repositories sharing keys keeps its id: in the destination a source's record
  // name is not listed and a backup on it asks each pack, as without a mark; `none` reads the
  // destination's records from its first (pack-removals.ts). Its own tags too: those
  // set with `coffer tag` are carried as a tag record (carry-tags.ts), never written into the manifest.
  const manifest = storedManifest(snapshot);
  return { ...manifest, parent, files: { ...files, tree } };
}

/**
 * Heal (heal-file-copies.ts): stores again trees that a copy names but the destination holds
 * missing or damaged. Each is translated again from the source's tree at the same place (the
 * subtree below it as a copy translates it: chunks and subtrees the destination holds are
 * found present, those it lacks stored), and must come out as the tree the copy names
 * (`E_VERIFY_FAILED` otherwise: the copy was not made from that source tree, and nothing is
 * stored under its id); it is then stored although the destination names it: into format 1 a
 * put over the damaged object (under Object Lock a new version), into format 2 in a new pack
 * of trees whose index segment gives its new place (reads fall back there, chunks-by-id.ts).
 */
export interface FileTreeHealer {
  /** Translates source tree `source` again and stores it as destination tree `expected`. */
  copyAgain(source: string, expected: string): Promise<void>;
  /** Stores what was taken (format 2: the packs and segments, chunks' first) and waits until it read back intact. */
  finish(): Promise<void>;
}

/** A {@link FileTreeHealer} through the sync's transfer. */
export async function fileTreeHealer(context: CopyContext): Promise<FileTreeHealer> {
  const copier = new TreeCopier(context, await context.transfer.treePacks());
  return {
    copyAgain: async (source, expected) => void (await copier.copy(source, null, expected)),
    finish: () => copier.finish(),
  };
}

class TreeCopier {
  /** Source tree id → its destination id, for subtrees met twice in one snapshot. */
  private readonly copied = new Map<string, string>();
  private done = 0;
  /**
   * Format 2 destination: chunks and trees taken whose entries are not yet stored and read
   * back, and who waits for them all ({@link finish}). A count, not a set of their promises:
   * every chunk of a pack waits at once (100,000 small files: a set's entries and two
   * closures per chunk were a tenth of the sync's heap, 2026-11-27).
   */
  private pending = 0;
  private allSettled: (() => void) | undefined;
  private readonly settled = (): void => {
    if (--this.pending === 0) this.allSettled?.();
  };
  private readonly failed = (error: unknown): void => {
    this.failure ??= { error };
    this.settled();
  };
  private failure: { error: unknown } | undefined;
  /** Each side's trees, read through the transfer's readers (format 2) and counted in the sync's figures. */
  private readonly readers: Record<'source' | 'destination', TreeReader>;

  constructor(
    private readonly context: CopyContext,
    /** Format 2 destination: where trees go; null into format 1. */
    private readonly trees: PackedDestination | null,
  ) {
    const { src, dst, counters, transfer } = context;
    this.readers = {
      source: new TreeReader(src, (bytes) => (counters.bytesRead += bytes), transfer.sourceById),
      destination: new TreeReader(dst, (bytes) => (counters.bytesReadFromDestination += bytes), transfer.destinationById),
    };
  }

  /** The destination id of source tree `id`, stored with everything below it; `again`: stored again as that id although present (a heal). */
  async copy(id: string, before: TreePair | null, again?: string): Promise<string> {
    const { dst, counters, transfer } = this.context;
    if (this.context.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'sync interrupted (run it again: what was sent is kept)');
    if (again === undefined) {
      if (before !== null && before.source === id) {
        counters.treesReused++;
        return before.copy;
      }
      const known = this.copied.get(id);
      if (known !== undefined) return known;
      if (transfer.sameKeys && dst.config.version === 1 && (await dst.backend.has(treeKey(id)))) {
        counters.treesReused++;
        return id;
      }
    }
    const tree = await this.readTree('source', id);
    const earlier = before === null ? null : await Promise.all([this.readTree('source', before.source), this.readTree('destination', before.copy)]);
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
      const stored = await transfer.translate(await this.sourceEntry(piece[0]));
      piece[0] = stored.id.toString('hex');
      this.track(stored.entry);
    });
    this.context.onPage?.(this.done);
    const copyId = again === undefined ? await this.writeTree(id, entries) : await this.writeAgain(entries, again);
    this.copied.set(id, copyId);
    return copyId;
  }

  /**
   * Format 2 into format 2 with the same keys: the source's located entries of every tree and
   * chunk of the snapshot the destination may lack (a subtree unchanged since `before`, or
   * whose tree the destination holds, is skipped: its chunks are looked up one by one when copied).
   */
  async *neededEntries(id: string, before: string | null, destination: PackedDestination): AsyncGenerator<Buffer> {
    const seen = new Set<string>();
    const walk = async function* (this: TreeCopier, tree: string, earlier: string | null): AsyncGenerator<Buffer> {
      if (tree === earlier || seen.has(tree)) return;
      seen.add(tree);
      if ((await destination.find(Buffer.from(tree, 'hex'))) !== undefined) return;
      yield await this.sourceEntry(tree);
      const entries = (await this.readTree('source', tree)).entries;
      const old = new Map(earlier === null ? [] : (await this.readTree('source', earlier)).entries.map((e) => [e.name, e]));
      for (const entry of entries) {
        const was = old.get(entry.name);
        if (entry.type === 'directory') yield* walk.call(this, entry.tree as string, was?.type === 'directory' ? (was.tree as string) : null);
        else if (entry.content !== undefined && !(was?.content !== undefined && sameContent(was.content, entry.content))) {
          for (const [what] of entry.content) if (what !== 'hole' && what !== 'zero') yield await this.sourceEntry(what);
        }
      }
    };
    yield* walk.call(this, id, before);
  }

  /** Format 2 destination: stores the last packs and segments (chunks', then trees'), and waits until everything taken read back intact. */
  async finish(): Promise<void> {
    if (this.trees === null) return;
    await this.context.transfer.end();
    if (this.pending > 0) await new Promise<void>((resolve) => (this.allSettled = resolve));
    if (this.failure !== undefined) throw this.failure.error;
  }

  private track(entry: Promise<Buffer>): void {
    if (this.trees === null) return; // format 1: stored and read back already
    this.pending++;
    entry.then(this.settled, this.failed);
  }

  /** What the transfer takes for the chunk or tree `hex` of the source: its id (format 1) or its located entry (format 2). */
  private sourceEntry(hex: string): Promise<Buffer> {
    return sourceEntryOf(this.context, hex);
  }

  /** A tree of either side, read, opened and validated, counting the stored bytes. */
  private readTree(side: 'source' | 'destination', id: string): Promise<FileTree> {
    return this.readers[side].read(id);
  }

  /** Heal: stores the tree of `entries` although the destination names it, after checking it is tree `expected`. */
  private async writeAgain(entries: TreeEntry[], expected: string): Promise<string> {
    const { dst, counters, transfer } = this.context;
    const plaintext = encodeFileTree(entries);
    const objectId = dst.codec.idOf(plaintext);
    const id = objectId.toString('hex');
    if (id !== expected) {
      throw new CofferError('E_VERIFY_FAILED', `the copy in ${dst.location} names tree ${expected} where the source's tree at the same place would be ${id} there: not stored again`, {
        subject: { repository: dst.location, object: expected },
      });
    }
    if (this.trees !== null) {
      const stored = await this.trees.storePlaintext(objectId, plaintext);
      transfer.rememberTree(id);
      counters.treesSent++;
      this.track(stored.entry);
      return id;
    }
    const sealed = dst.codec.seal(plaintext, ObjectKind.fileTree, objectId);
    await dst.backend.put(treeKey(id), sealed);
    await readBackLooseTree(dst, id, sealed.length, counters);
    return id;
  }

  /** Stores a tree unless present; returns its id. `source`: the tree's id in the source. */
  private async writeTree(source: string, entries: TreeEntry[]): Promise<string> {
    const { dst, counters, transfer } = this.context;
    const trees = this.trees;
    if (trees === null) return writeLooseTree(dst, entries, counters);
    const { id } = await putFileTree(dst, entries, {
      stage: async (objectId, hex, plaintext) => {
        const adopted = transfer.wholePacks !== null && hex === source && transfer.wholePacks.adoptedEntry(await this.sourceEntry(source)) !== undefined;
        if (adopted || transfer.storedTree(hex) || (await trees.find(objectId)) !== undefined) {
          counters.treesReused++;
          return;
        }
        const stored = await trees.storePlaintext(objectId, plaintext);
        transfer.rememberTree(hex);
        counters.treesSent++;
        this.track(stored.entry);
      },
    });
    return id;
  }
}

/**
 * What the transfer takes for the file chunk or tree `hex` of the source: its id (format 1),
 * or its first located entry in the source's index segments (format 2; `E_MISSING_OBJECT`
 * when none names it).
 */
export async function sourceEntryOf(context: Pick<CopyContext, 'src' | 'transfer'>, hex: string): Promise<Buffer> {
  const { src, transfer } = context;
  const id = Buffer.from(hex, 'hex');
  if (transfer.sourceById === undefined) return id;
  const first = (await transfer.sourceById.locations(id))[0];
  if (first === undefined) throw new CofferError('E_MISSING_OBJECT', `chunk ${hex} of ${src.location} is missing: no index segment names it`, { subject: { repository: src.location, object: hex } });
  return first;
}

function sameContent(a: readonly ContentPiece[], b: readonly ContentPiece[]): boolean {
  return a.length === b.length && a.every(([what, length], i) => b[i]?.[0] === what && b[i]?.[1] === length);
}

/** Format 1 destination: stores a tree unless present, and reads a new one back; returns its id. */
async function writeLooseTree(dst: Repository, entries: TreeEntry[], counters: CopyContext['counters']): Promise<string> {
  const { id, bytesStored } = await putFileTree(dst, entries);
  if (bytesStored > 0) await readBackLooseTree(dst, id, bytesStored, counters);
  return id;
}

/** Format 1 destination: counts tree `id` just written (`bytesStored`) and reads it back, opened and validated (`E_VERIFY_FAILED` otherwise). */
async function readBackLooseTree(dst: Repository, id: string, bytesStored: number, counters: CopyContext['counters']): Promise<void> {
  counters.treesSent++;
  counters.treeBytesSent += bytesStored;
  counters.bytesWritten += bytesStored;
  try {
    const key = treeKey(id);
    const stored = await dst.backend.get(key);
    counters.bytesReadFromDestination += stored.length;
    await getFileTree(dst, id, stored);
  } catch (error) {
    throw new CofferError('E_VERIFY_FAILED', `file tree ${id} written to ${dst.location} does not read back intact: ${(error as Error).message}`, {
      subject: { repository: dst.location, object: treeKey(id) },
      cause: error,
    });
  }
}
