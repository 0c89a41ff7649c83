import { forEachLimited } from '../../concurrency/index.js';
import { isCofferError, type CofferError } from '../../errors/index.js';
import { locateChunks } from '../chunks-by-id.js';
import type { Repository } from '../repository.js';
import { checkChunksHeld, type BrokenChunk } from './copy-check.js';
import type { DestinationChunks } from './destination-chunks.js';
import type { SyncCounters } from './sync-report.js';
import type { TreeReader } from './tree-reader.js';

/**
 * Trees of the copies read at once: hides an object store's latency (tens of ms a request), as
 * copy-check.ts's 8 index pages; trees are small (a few KB for most directories).
 */
const TREES_IN_FLIGHT = 8;

/** What {@link checkFileCopies} found: broken chunks (hex id), and trees that do not read (tree id → why). */
export interface FileCopyCheck {
  chunks: Map<string, BrokenChunk>;
  trees: Map<string, CofferError>;
}

/**
 * Checks the file snapshots' copies in the destination below the trees `roots` (their root
 * trees, or trees heal-file-copies.ts stored again): every distinct tree is read from the
 * destination and opened, level by level ({@link TREES_IN_FLIGHT} at once; a tree in
 * `walked`, read by an earlier call, is not read again, and each one read is added to it), and
 * every chunk the files name that is not in `checked` (added to it) is checked to be held,
 * through copy-check.ts's {@link checkChunksHeld}: format 1 against one listing of `chunks/`
 * (the sync's own when `destination` is its open one), format 2 located first by one pass
 * over the index segments (trees name their chunks by id only), then against one listing of
 * `packs/`; with `readData` each chunk is read and opened instead. A tree that does not read
 * (missing or damaged) is reported, and what is below it is not visited.
 *
 * Memory: one entry per distinct tree and chunk (`walked`, `checked`), as verify.
 */
export async function checkFileCopies(
  context: { dst: Repository; destination: DestinationChunks | null; counters: SyncCounters; trees: TreeReader },
  roots: readonly string[],
  options: { readData: boolean; walked: Set<string>; checked: Set<string> },
): Promise<FileCopyCheck> {
  const { dst, counters } = context;
  const { walked, checked } = options;
  const damaged = new Map<string, CofferError>();
  const named = new Set<string>();
  let level = [...new Set(roots)].filter((id) => !walked.has(id));
  for (const id of level) walked.add(id);
  while (level.length > 0) {
    const next: string[] = [];
    await forEachLimited(level, TREES_IN_FLIGHT, async (id) => {
      let entries;
      try {
        entries = (await context.trees.read(id)).entries;
      } catch (error) {
        if (!isCofferError(error, 'E_MISSING_OBJECT') && !isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
        damaged.set(id, error);
        return;
      }
      for (const entry of entries) {
        if (entry.type === 'directory' && entry.tree !== undefined) {
          if (walked.has(entry.tree)) continue;
          walked.add(entry.tree);
          next.push(entry.tree);
        } else if (entry.content !== undefined) {
          for (const [what] of entry.content) {
            if (what === 'hole' || what === 'zero' || checked.has(what)) continue;
            checked.add(what);
            named.add(what);
          }
        }
      }
    });
    level = next;
  }
  counters.chunksChecked += named.size;
  // Format 2: where each chunk is (its first place; checkChunksHeld looks further when that one fails).
  const places = dst.config.version === 2 ? await locateChunks(dst, named) : undefined;
  const entries = new Map<string, Buffer | undefined>();
  for (const hex of named) entries.set(hex, places === undefined ? Buffer.from(hex, 'hex') : places.get(hex)?.[0]);
  return { chunks: await checkChunksHeld(context, entries, options), trees: damaged };
}
