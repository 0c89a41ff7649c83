import { CofferError } from '../../errors/index.js';
import { CurrentPlaces } from '../current-places.js';
import { isZeroEntry } from '../format/index-page.js';
import { decodeLocatedEntry } from '../format/located-entry.js';
import { packKey } from '../layout.js';
import type { Repository } from '../repository.js';
import type { PackedDestination } from './packed-destination.js';
import { readTrailer } from '../pack-plan.js';
import { objectSize } from './pack-contents.js';
import type { SyncCounters } from './sync-report.js';

/**
 * Format 2 to format 2 with the same keys, before a disk (or a file snapshot) is copied: the
 * packs of which `entries` (the located entries of the disk's blocks, or of the file
 * snapshot's trees and chunks) need every chunk (the destination lacks them all) are copied
 * whole, as stored, so their chunks keep their located entries and nothing is re-packed.
 * Typically a snapshot's own packs: a backup writes the chunks it adds into packs of its own,
 * closed at the end of each disk. The other packs' chunks are re-packed one by one when the
 * disk is copied.
 *
 * A pack is read whole and checked against its id (the SHA-256 of its bytes) before it is
 * sent: a damaged pack is `E_CORRUPT_OBJECT` (the snapshot fails, nothing of it is carried).
 *
 * An entry whose pack a prune removed (§19.7) counts at its chunk's place now
 * ({@link CurrentPlaces}: one existence check per distinct pack, the source's segments loaded
 * only when one is gone), so the packs the prune wrote are adopted whole too when every chunk
 * is needed (before, their chunks were decoded and re-packed one by one).
 *
 * Memory: one key per needed chunk (its pack and place), while the entries are walked once
 * ahead of the copy; one pack (≤ 16 MiB) at a time.
 */
export async function adoptWholePacks(context: { src: Repository; counters: SyncCounters }, entries: AsyncIterable<Buffer>, destination: PackedDestination): Promise<void> {
  const { src, counters } = context;
  const needed = new Map<string, Set<string>>(); // pack hex → "frameOffset/chunkOffset" of the chunks needed
  const places = new CurrentPlaces(src);
  for await (const stored of entries) {
    if (isZeroEntry(stored)) continue;
    // A chunk a prune repacked is needed at its place now: the packs the prune wrote are adopted
    // whole like a backup's (the copy's entries then name them, chunk-transfer.ts).
    const entry = await places.of(stored);
    if (destination.adoptedEntry(entry) !== undefined) continue;
    const location = decodeLocatedEntry(entry, 'an index entry');
    if ((await destination.find(location.id)) !== undefined) continue;
    const pack = location.pack.toString('hex');
    let chunks = needed.get(pack);
    if (chunks === undefined) needed.set(pack, (chunks = new Set()));
    chunks.add(`${location.frameOffset}/${location.chunkOffset}`);
  }
  for (const [hex, chunks] of needed) {
    if (destination.hasAdopted(hex)) continue;
    const key = packKey(hex);
    const size = await objectSize(src, key);
    if (size === null) continue; // missing: the chunk-by-chunk copy names it
    const trailer = await readTrailer(src, key, size);
    const places = new Set(trailer.chunks.map((c) => `${trailer.frames[c.frame]?.offset}/${c.offset}`));
    if (places.size !== chunks.size || [...chunks].some((place) => !places.has(place))) continue;
    const bytes = await src.backend.get(key);
    counters.bytesRead += bytes.length;
    if ((await src.pool.sha256(bytes)).toString('hex') !== hex) {
      throw new CofferError('E_CORRUPT_OBJECT', `pack ${key} of ${src.location} is damaged: its bytes do not hash to its id`, { subject: { repository: src.location, object: key } });
    }
    await destination.adoptPack(hex, bytes, trailer);
  }
}
