import { forEachLimited } from '../../concurrency/index.js';
import { CofferError, isCofferError, type ErrorCode } from '../../errors/index.js';
import type { FileTree, TreeEntry } from '../format/file-tree.js';
import type { ChunkTransfer } from './chunk-transfer.js';
import { fileTreeHealer, sourceEntryOf } from './copy-file-trees.js';
import { checkFileCopies, type FileCopyCheck } from './file-copy-check.js';
import type { HealContext, HealOutcome, PresentPair } from './heal-copies.js';
import { TreeReader } from './tree-reader.js';

/** Chunks sent again at once (as heal-copies.ts does for disks). */
const CHUNKS_IN_FLIGHT = 16;
/** Source trees kept decoded while healing: the broken chunks are taken in path order. */
const SOURCE_TREES_KEPT = 64;
/** Codes that leave one copy broken (its source is damaged too, it does not line up, or what was sent did not read back) while the others go on. */
const COPY_FAILURES: ErrorCode[] = ['E_CORRUPT_OBJECT', 'E_MISSING_OBJECT', 'E_VERIFY_FAILED'];

/**
 * A tree whose walk starts a round: a copy's root tree (the first round), or a tree the round
 * before stored again; the source tree it comes from, where it lies, and the pairs whose
 * copies hold it.
 */
interface Root {
  copy: string;
  source: string;
  path: string;
  pairs: Set<PresentPair>;
}

/** Where a directory of a copy lies: below `root.source` in the source, by `names`. */
interface TreePlace {
  root: Root;
  names: readonly string[];
}

/** Where a broken chunk is named: piece `piece` of `pieces` (of `length` bytes) of file `name` in the directory `dir`. */
interface ChunkPlace {
  dir: TreePlace;
  name: string;
  piece: number;
  pieces: number;
  length: number;
}

/** What a copy names that was broken: `chunk:<hex>` or `tree:<hex>`. */
type Item = string;

/**
 * Makes the file snapshots' copies already in the destination whole again, as heal-copies.ts
 * does for disks. A copy's trees are walked beside its source snapshot's trees: the copy was
 * made from them (copy-file-trees.ts), so its entries line up with the source's name for name
 * and each file's content list piece for piece, and only the ids differ (they depend on the
 * key).
 *
 * In rounds. Each round checks the trees below its roots (the copies' root trees first) with
 * file-copy-check.ts: each distinct tree read once from the destination, the chunks they name
 * checked against one listing (with `readData`: read and opened). When something is broken,
 * the trees are walked a second time to place it (one place per broken chunk or tree), and the
 * source's trees on the paths to those places are read (each once; the last few kept).
 *
 * - A broken chunk is read from the source at the same place, checked to be the chunk the copy
 *   names (its destination id), and stored again through the sync's transfer
 *   (chunk-transfer.ts `resend`): format 1 under its key, format 2 in a new pack and index
 *   segment, which reads and verify fall back to.
 * - A tree that does not read is translated again from the source's tree at the same place
 *   (copy-file-trees.ts {@link fileTreeHealer}: what the destination holds below it is found
 *   present, what it lacks stored), must come out as the tree the copy names, and is stored
 *   again the same way. What is below it was never checked: it is the next round's root.
 *
 * Nothing is deleted, and nothing locked is overwritten in place. A copy whose source is
 * damaged too, or does not line up, stays broken and fails (its error); the others go on.
 *
 * Cost when nothing is broken: the copies' trees (each distinct tree once), format 2 one pass
 * over the destination's index segments, and the listing; nothing is read from the source and
 * the transfer is not opened.
 */
export async function healFileCopies(context: HealContext, pairs: readonly PresentPair[], options: { readData: boolean }): Promise<Map<PresentPair, HealOutcome>> {
  const { src, dst, counters } = context;
  const outcomes = new Map<PresentPair, HealOutcome>();
  let roots = new Map<string, Root>();
  for (const pair of pairs) {
    if (pair.source.files === undefined || pair.copy.files === undefined) continue;
    const copy = pair.copy.files.tree;
    const root = roots.get(copy) ?? { copy, source: pair.source.files.tree, path: '', pairs: new Set() };
    root.pairs.add(pair);
    roots.set(copy, root);
    outcomes.set(pair, { healed: 0, treesHealed: 0 });
  }
  const trees = new TreeReader(dst, (bytes) => (counters.bytesReadFromDestination += bytes));
  const walked = new Set<string>();
  const checked = new Set<string>();
  const named = new Map<PresentPair, Set<Item>>(); // what each copy names that was broken
  const healed = new Set<Item>();
  const failures = new Map<Item, CofferError>();
  const failed = (item: Item, error: unknown): void => {
    if (!isCofferError(error) || !COPY_FAILURES.includes(error.code)) throw error;
    failures.set(item, error);
  };
  /** Copy tree id → the broken items below it (null: none), as the walks placing them found. */
  const below = new Map<string, Set<Item> | null>();
  let transfer: ChunkTransfer | undefined;
  let sources: SourceTrees | undefined;

  for (let round = 1; roots.size > 0; round++) {
    // The sync's destination (its listing, its chunk index) only in the first round: later ones come after what this one stored.
    const check = await checkFileCopies({ dst, destination: round === 1 ? (context.opened?.destination ?? null) : null, counters, trees }, [...roots.keys()], { readData: options.readData, walked, checked });
    if (round === 1 && check.chunks.size === 0 && check.trees.size === 0) break;
    transfer ??= await context.transfer();
    sources ??= new SourceTrees(new TreeReader(src, (bytes) => (counters.bytesRead += bytes)));

    // Second read of the trees, only now that something is broken: where it is named, and by which copies.
    const places = await placeBroken(trees, check, roots, below);
    for (const root of roots.values()) {
      const items = below.get(root.copy);
      if (items === null || items === undefined) continue;
      for (const pair of root.pairs) {
        const set = named.get(pair) ?? new Set<Item>();
        for (const item of items) set.add(item);
        named.set(pair, set);
      }
    }

    const healer = await fileTreeHealer({ src, dst, transfer, counters });
    const next = new Map<string, Root>();
    for (const [copy, at] of places.trees) {
      try {
        const source = await sources.subtree(at);
        await healer.copyAgain(source, copy);
        next.set(copy, { copy, source, path: pathOf(at), pairs: new Set() });
      } catch (error) {
        failed(`tree:${copy}`, error);
      }
    }
    const arriving: Promise<void>[] = [];
    const inPathOrder = [...places.chunks].sort(([, a], [, b]) => pathOf(a.dir).localeCompare(pathOf(b.dir)) || a.name.localeCompare(b.name) || a.piece - b.piece);
    const sending = transfer;
    await forEachLimited(inPathOrder, CHUNKS_IN_FLIGHT, async ([hex, place]) => {
      const item = `chunk:${hex}`;
      try {
        const stored = await sending.resend(await sourceEntryOf({ src, transfer: sending }, await (sources as SourceTrees).chunkAt(place)), Buffer.from(hex, 'hex'));
        arriving.push(stored.entry.then(() => void healed.add(item), (error: unknown) => failed(item, error)));
      } catch (error) {
        failed(item, error);
      }
    });
    try {
      await healer.finish(); // format 2: the chunks' packs and segment, then the trees'
    } catch (error) {
      for (const copy of next.keys()) failed(`tree:${copy}`, error);
      next.clear();
    }
    await transfer.end();
    await Promise.all(arriving);
    for (const copy of next.keys()) healed.add(`tree:${copy}`);
    counters.chunksHealed += [...places.chunks.keys()].filter((hex) => healed.has(`chunk:${hex}`)).length;
    counters.treesHealed += next.size;

    // What is below a tree stored again was never checked: the next round's roots, held by the copies whose walks reached them.
    for (const [pair, items] of named) for (const [copy, root] of next) if (items.has(`tree:${copy}`)) root.pairs.add(pair);
    for (const copy of next.keys()) {
      walked.delete(copy); // readable now: read in the next round, and placed anew if something below is broken
      below.delete(copy);
    }
    roots = next;
  }

  for (const pair of outcomes.keys()) {
    const items = [...(named.get(pair) ?? [])];
    const failure = items.map((item) => failures.get(item)).find((error) => error !== undefined);
    if (failure !== undefined) outcomes.set(pair, { error: failure });
    else outcomes.set(pair, { healed: items.filter((item) => item.startsWith('chunk:')).length, treesHealed: items.filter((item) => item.startsWith('tree:')).length });
  }
  return outcomes;
}

/** The path of a place, for sorting and messages (`/etc/ssh`; a root: `/`). */
function pathOf(at: TreePlace): string {
  const path = `${at.root.path}/${at.names.join('/')}`;
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/**
 * Walks the trees below `roots` (depth first, a tree met again answered from `below`) and
 * places each broken chunk and tree (`check`) once: its first place. A tree that does not read
 * now is placed as broken too.
 */
async function placeBroken(trees: TreeReader, check: FileCopyCheck, roots: ReadonlyMap<string, Root>, below: Map<string, Set<Item> | null>): Promise<{ chunks: Map<string, ChunkPlace>; trees: Map<string, TreePlace> }> {
  const chunks = new Map<string, ChunkPlace>();
  const broken = new Map<string, TreePlace>();
  const place = async (copy: string, at: TreePlace): Promise<Set<Item> | null> => {
    const known = below.get(copy);
    if (known !== undefined) return known;
    let tree: FileTree | undefined;
    if (!check.trees.has(copy)) {
      try {
        tree = await trees.read(copy);
      } catch (error) {
        if (!isCofferError(error, 'E_MISSING_OBJECT') && !isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
      }
    }
    if (tree === undefined) {
      if (!broken.has(copy)) broken.set(copy, at);
      const items = new Set([`tree:${copy}`]);
      below.set(copy, items);
      return items;
    }
    let items: Set<Item> | null = null;
    for (const entry of tree.entries) {
      if (entry.type === 'directory' && entry.tree !== undefined) {
        const under = await place(entry.tree, { root: at.root, names: [...at.names, entry.name] });
        if (under !== null) for (const item of under) (items ??= new Set()).add(item);
      } else if (entry.content !== undefined) {
        const pieces = entry.content.length;
        entry.content.forEach(([what, length], piece) => {
          if (!check.chunks.has(what)) return;
          (items ??= new Set()).add(`chunk:${what}`);
          if (!chunks.has(what)) chunks.set(what, { dir: at, name: entry.name, piece, pieces, length });
        });
      }
    }
    below.set(copy, items);
    return items;
  };
  for (const root of roots.values()) {
    below.delete(root.copy);
    await place(root.copy, { root, names: [] });
  }
  return { chunks, trees: broken };
}

/** The source's trees, read as healing needs them (the last few kept, by name). */
class SourceTrees {
  private readonly kept = new Map<string, Promise<Map<string, TreeEntry>>>();

  constructor(private readonly reader: TreeReader) {}

  /** The id of the source's tree at `at`. */
  async subtree(at: TreePlace): Promise<string> {
    let id = at.root.source;
    for (const [depth, name] of at.names.entries()) {
      const entry = (await this.entries(id)).get(name);
      if (entry?.type !== 'directory' || entry.tree === undefined) throw notLinedUp(at, `${pathOf({ root: at.root, names: at.names.slice(0, depth + 1) })} is no directory there`);
      id = entry.tree;
    }
    return id;
  }

  /** The source's chunk (hex id) at `place`. */
  async chunkAt(place: ChunkPlace): Promise<string> {
    const entry = (await this.entries(await this.subtree(place.dir))).get(place.name);
    const piece = entry?.content?.[place.piece];
    const path = `${pathOf(place.dir).replace(/\/$/, '')}/${place.name}`;
    if (entry?.content?.length !== place.pieces || piece === undefined || piece[1] !== place.length || piece[0] === 'hole' || piece[0] === 'zero') {
      throw notLinedUp(place.dir, `the content of ${path} differs there`);
    }
    return piece[0];
  }

  private entries(id: string): Promise<Map<string, TreeEntry>> {
    let entries = this.kept.get(id);
    if (entries === undefined) {
      entries = this.reader.read(id).then((tree) => new Map(tree.entries.map((entry) => [entry.name, entry])));
      entries.catch(() => undefined); // awaited by the caller
      this.kept.set(id, entries);
      if (this.kept.size > SOURCE_TREES_KEPT) this.kept.delete(this.kept.keys().next().value as string);
    }
    return entries;
  }
}

/** The error of a copy whose trees do not line up with its source snapshot's. */
function notLinedUp(at: TreePlace, why: string): CofferError {
  const pair = at.root.pairs.values().next().value as PresentPair | undefined;
  const copy = pair === undefined ? 'the copy' : `the copy ${pair.copy.id}`;
  const source = pair === undefined ? 'its source snapshot' : `the source snapshot ${pair.source.id}`;
  return new CofferError('E_VERIFY_FAILED', `${copy} does not line up with ${source} (${why}): its data cannot be taken from there`, {
    subject: pair === undefined ? {} : { object: pair.source.id },
  });
}
