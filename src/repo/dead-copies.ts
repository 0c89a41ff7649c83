import { isCofferError } from '../errors/index.js';
import { ChunkIndex } from './chunk-index.js';
import { listQuarantined } from './damage.js';
import { decodeLocatedEntry, type ChunkLocation } from './format/located-entry.js';
import type { PackTrailer } from './format/pack.js';
import { frameName, readStoredFrame } from './frame-reader.js';
import type { IdPrefixSet } from './id-prefix-set.js';
import type { Repository } from './repository.js';

/** A frame's table: which chunk lies where in its plaintext. */
type FrameTable = readonly { id: Buffer; offset: number; length: number }[];

/** A place a pack's trailer gives a quarantined chunk. */
export interface QuarantinedCopy {
  /** The pack, hex. */
  pack: string;
  location: ChunkLocation;
}

/**
 * Finds the dead copies of quarantined chunks in a format 2 repository's packs, for prune's plan
 * (pack-plan.ts): a copy whose frame does not open (corrupt, or cut off) while another stored
 * pack holds the chunk in a frame that does, or while no snapshot uses the chunk at all. Verify
 * quarantines the chunks of a damaged frame and the next backup that meets their data stores
 * them again in a new pack (damage.ts), but the damaged pack still lists them and they are
 * used: counted as live, the pack was kept for ever, and a repack failed on the damaged frame.
 * A dead copy counts as unused, so prune drops it (and the pack's damage with it) while the
 * good copy elsewhere stays. A damaged copy with no good one elsewhere, of a chunk a snapshot
 * uses, is not dead: it may be all that is left (salvage's job). A damaged copy of a chunk no
 * snapshot uses is dead whatever else holds it: its pack is repacked (or deleted) even when it
 * is otherwise full enough to keep, since while the index names the damaged copy, its
 * quarantine marker cannot be retired (quarantine-retire.ts).
 *
 * It also keeps, for the marker's retirement after the sweep, every copy of a quarantined id
 * the trailers list ({@link copiesOf}) and whether each reads ({@link copyReads}).
 *
 * Only quarantined ids are checked (verify sets aside every chunk of a frame it finds damaged),
 * so a repository verify never found damaged costs one listing of `quarantine/` and nothing
 * more; a damaged one a ranged read per frame holding a quarantined id, and, when one of them
 * does not open, the chunk index (every segment read once) and the frames of the other copies.
 * Each frame is read and opened (every chunk rehashed, as verify does) at most once.
 */
export class DeadCopies {
  /** Packs (hex) holding the good copy of a chunk found dead in another pack: they must not go unread. */
  readonly goodPacks = new Set<string>();
  private index: Promise<ChunkIndex> | undefined;
  /** Frames asked about, by pack, offset and length: their table, or null when they do not open. */
  private readonly frames = new Map<string, Promise<FrameTable | null>>();
  /** Every copy of a quarantined id (hex) the trailers asked about list, with its pack (hex). */
  private readonly copies = new Map<string, QuarantinedCopy[]>();

  private constructor(
    private readonly repo: Repository,
    private readonly quarantined: ReadonlySet<string>,
  ) {}

  /** A finder for `repo`'s quarantined ids as listed now. */
  static async of(repo: Repository): Promise<DeadCopies> {
    return new DeadCopies(repo, await listQuarantined(repo));
  }

  /**
   * The quarantined chunks (hex ids) whose copy in pack `pack` (hex, its trailer `trailer`) is
   * dead: its frame does not open or does not hold it where the trailer says, and either no
   * snapshot uses the chunk (`live`) or a frame of another stored pack holds it. Nothing is
   * read for a pack holding no quarantined id.
   */
  async inPack(pack: string, trailer: PackTrailer, live: IdPrefixSet): Promise<Set<string>> {
    const dead = new Set<string>();
    if (this.quarantined.size === 0) return dead;
    const packId = Buffer.from(pack, 'hex');
    for (const chunk of trailer.chunks) {
      const hex = chunk.id.toString('hex');
      if (!this.quarantined.has(hex)) continue;
      const frame = trailer.frames[chunk.frame] as { offset: number; length: number };
      const here: ChunkLocation = { id: chunk.id, pack: packId, frameOffset: frame.offset, frameLength: frame.length, chunkOffset: chunk.offset, chunkLength: chunk.length };
      const copies = this.copies.get(hex);
      if (copies === undefined) this.copies.set(hex, [{ pack, location: here }]);
      else copies.push({ pack, location: here });
      if (await this.reads(here)) continue;
      if (!live.has(chunk.id) || (await this.readsElsewhere(chunk.id, pack))) dead.add(hex);
    }
    return dead;
  }

  /** The copies of quarantined id `hex` that the trailers of the packs asked about ({@link inPack}) list. */
  copiesOf(hex: string): readonly QuarantinedCopy[] {
    return this.copies.get(hex) ?? [];
  }

  /**
   * Whether the copy at `location` reads: its frame opens (every chunk rehashed) and its table
   * holds the chunk there. Each frame is read once, whoever asks.
   */
  copyReads(location: ChunkLocation): Promise<boolean> {
    return this.reads(location);
  }

  /** Whether a pack other than `pack` holds chunk `id` in a frame that opens, where the index segments say. */
  private async readsElsewhere(id: Buffer, pack: string): Promise<boolean> {
    this.index ??= ChunkIndex.load(this.repo);
    for (const entry of await (await this.index).lookupAll(Buffer.from(id))) {
      const other = entry.toString('hex', 32, 64);
      if (other === pack) continue;
      if (await this.reads(decodeLocatedEntry(entry, `index entry of chunk ${id.toString('hex')}`))) {
        this.goodPacks.add(other);
        return true;
      }
    }
    return false;
  }

  /** Whether the chunk of `location` reads: its frame opens (every chunk rehashed) and its table holds the chunk there. */
  private async reads(location: ChunkLocation): Promise<boolean> {
    const key = `${frameName(location)}+${location.frameLength}`;
    let table = this.frames.get(key);
    if (table === undefined) this.frames.set(key, (table = this.open(location)));
    const found = (await table)?.find((c) => c.offset === location.chunkOffset);
    return found !== undefined && found.length === location.chunkLength && found.id.equals(location.id);
  }

  private async open(location: ChunkLocation): Promise<FrameTable | null> {
    const name = frameName(location);
    try {
      const blob = await readStoredFrame(this.repo, location, name);
      return (await this.repo.pool.openFrame(blob, { name, rehash: true, keep: false })).table;
    } catch (error) {
      if (isCofferError(error, 'E_CORRUPT_OBJECT') || isCofferError(error, 'E_MISSING_OBJECT')) return null;
      throw error;
    }
  }
}
