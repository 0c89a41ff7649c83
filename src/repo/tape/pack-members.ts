import { CofferError } from '../../errors/index.js';
import { ObjectKind } from '../format/envelope.js';
import { encodeSegment, MAX_SEGMENT_ENTRIES } from '../format/index-segment.js';
import { decodeLocatedEntry } from '../format/located-entry.js';
import { packKey, segmentKey } from '../layout.js';
import type { Repository } from '../repository.js';
import { trailerEntries, trailerOfPack } from '../sync/pack-contents.js';

/**
 * The format 2 part of a tape export (tape format version 2, tape-format.ts): the packs that a
 * page's located entries name are written whole, once per set, each checked first (its bytes
 * hash to its id, and its trailer opens with the repository's key: a damaged pack fails the
 * export with `E_CORRUPT_OBJECT` instead of reaching the tape); after each snapshot, an index
 * segment names every chunk of the packs written for it, so the set, extracted or imported,
 * is a format 2 repository whose chunk index knows what it holds.
 *
 * Memory: one pack (≤ 16 MiB) at a time, and 80 bytes per chunk of the packs written since the
 * last segment.
 */
export class PackMembers {
  /** Packs on the set (hex id) → the volume holding them. */
  private readonly placed = new Map<string, number>();
  private entries: Buffer[] = [];

  constructor(
    private readonly repo: Repository,
    private readonly put: (key: string, data: Buffer) => Promise<number>,
  ) {}

  /** Writes the packs `entries` (located, non-zero) lie in that are not on the set yet; their volumes go to `volumes`. */
  async putPacksOf(entries: readonly Buffer[], volumes: Set<number>): Promise<void> {
    const packs = new Set<string>();
    for (const entry of entries) packs.add(decodeLocatedEntry(entry, 'index entry').pack.toString('hex'));
    for (const hex of packs) {
      const known = this.placed.get(hex);
      if (known !== undefined) {
        volumes.add(known);
        continue;
      }
      const key = packKey(hex);
      const bytes = await this.repo.backend.get(key);
      if ((await this.repo.pool.sha256(bytes)).toString('hex') !== hex) {
        throw new CofferError('E_CORRUPT_OBJECT', `pack ${key} is damaged: its bytes do not hash to its id`, { subject: { repository: this.repo.location, object: key } });
      }
      const trailer = trailerOfPack(this.repo, bytes, key);
      const volume = await this.put(key, bytes);
      this.placed.set(hex, volume);
      volumes.add(volume);
      this.entries.push(...trailerEntries(Buffer.from(hex, 'hex'), trailer));
    }
  }

  /** Writes the index segment(s) naming the chunks of the packs written since the last call. */
  async putSegment(volumes: Set<number>): Promise<void> {
    while (this.entries.length > 0) {
      const plaintext = encodeSegment(this.entries.splice(0, MAX_SEGMENT_ENTRIES));
      const id = this.repo.codec.idOf(plaintext);
      const sealed = await this.repo.pool.seal(plaintext, ObjectKind.indexSegment, id);
      volumes.add(await this.put(segmentKey(id.toString('hex')), sealed));
    }
  }
}
