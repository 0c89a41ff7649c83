import { isCofferError } from '../errors/index.js';
import { ChunkIndex } from './chunk-index.js';
import { decodeLocatedEntry } from './format/located-entry.js';
import type { Repository } from './repository.js';

/** One per open repository: the disks of a restore, or the requests of `coffer serve`, share the index it loads. */
const perRepository = new WeakMap<Repository, MovedChunks>();

/**
 * Reads chunks of a format 2 repository by located entry when a prune may have moved them
 * (docs/repository-format.md §19.3: "the entry is a hint"; §19.7: repacking moves live chunks
 * to new packs, and snapshots keep their index pages, which go on naming the old places).
 *
 * Until a read fails, nothing is loaded: a snapshot no prune touched costs nothing more. The
 * first read that fails (its pack gone: ENOENT, a 404 on S3; or damaged) loads the chunk index
 * once, with the set of packs the segments name, and reads the chunk at the places the
 * segments know. From then on an entry whose pack no segment names is resolved through the
 * segments **before** any read: no request goes to a removed pack again (a restore of a
 * repacked snapshot made one failed request per frame before). An entry whose pack the index
 * does not know and whose chunk it does not place either (a pack written after it was loaded)
 * is read where it says. When every place fails, or a segment the index names is gone, the
 * index is loaded again once (a prune may have moved chunks or merged segments since it was
 * loaded) before the first error is thrown.
 */
export class MovedChunks {
  private index: Promise<ChunkIndex> | undefined;
  private loaded: ChunkIndex | undefined;
  /** The index loaded again after a chunk was found nowhere. */
  private reloaded: Promise<ChunkIndex> | undefined;

  private constructor(private readonly repo: Repository) {}

  /** The repository's reader of moved chunks (one per open repository). */
  static of(repo: Repository): MovedChunks {
    let moved = perRepository.get(repo);
    if (moved === undefined) perRepository.set(repo, (moved = new MovedChunks(repo)));
    return moved;
  }

  /**
   * Whether pack `pack` is known gone: a read already failed, the index was loaded, and no
   * segment names the pack. A reader that plans its own reads (restore by frames) sends the
   * blocks of such a pack to {@link read} rather than ask the removed pack first.
   */
  knownGone(pack: Buffer): boolean {
    return this.loaded?.namesPack(pack) === false;
  }

  /**
   * Where a reader that plans its own reads (restore by frames, read-ahead) should read the
   * chunk of located entry `raw`: `raw` itself unless its pack is known gone
   * ({@link knownGone}); else the first place the segments know for the chunk in a pack they
   * name (the frame a repacking prune copied it into, §19.7), or undefined when they know none
   * (the reader then reads through {@link read}, which fails naming the chunk).
   */
  async placeOf(raw: Buffer): Promise<Buffer | undefined> {
    const known = await this.loadedOrLoading();
    if (known === undefined || known.namesPack(raw.subarray(32, 64)) !== false) return raw;
    const id = raw.subarray(0, 32);
    let places = await this.placesIn(known, id);
    if (places === 'stale') {
      // A segment the index names is gone: a prune rewrote the segments since it was loaded.
      const index = await this.reload(known);
      places = await this.placesIn(index, id);
      if (places === 'stale') return undefined;
      return places.find((place) => index.namesPack(place.subarray(32, 64)) !== false);
    }
    return places.find((place) => known.namesPack(place.subarray(32, 64)) !== false);
  }

  /**
   * After a read found pack `pack` missing (`E_MISSING_OBJECT`): loads the index if it is not
   * loaded (once per repository; again once when the one loaded still names the pack, which a
   * prune since may have removed) and answers whether the pack is gone. When it is,
   * {@link placeOf} knows where its chunks are now; when the segments still name it, the pack
   * is damaged, not repacked.
   */
  async confirmGone(pack: Buffer): Promise<boolean> {
    let index = await this.load();
    if (index.namesPack(pack) === true && this.reloaded === undefined) index = await this.reload(index);
    return index.namesPack(pack) === false;
  }

  /** Loads the index again, once per repository, unless someone already did since `stale` was loaded. */
  private reload(stale: ChunkIndex): Promise<ChunkIndex> {
    if (this.reloaded !== undefined) return this.reloaded;
    if (this.loaded === stale || this.loaded === undefined) {
      this.index = undefined;
      this.loaded = undefined;
    }
    this.reloaded = this.load();
    return this.reloaded;
  }

  /** Every place the segments of `index` know for chunk `id`, or `stale` when a segment it names is gone. */
  private async placesIn(index: ChunkIndex, id: Buffer): Promise<Buffer[] | 'stale'> {
    try {
      return await index.lookupAll(id);
    } catch (error) {
      if (isCofferError(error, 'E_MISSING_OBJECT')) return 'stale';
      throw error;
    }
  }

  /**
   * Reads the chunk of located entry `raw` with `read` (which throws `E_MISSING_OBJECT` or
   * `E_CORRUPT_OBJECT` when a place does not hold it intact), at its own place unless its pack
   * is known gone, else at the places the segments know.
   */
  async read(raw: Buffer, read: (entry: Buffer) => Promise<void>): Promise<void> {
    const location = decodeLocatedEntry(raw, 'index entry');
    const known = await this.loadedOrLoading();
    if (known !== undefined && known.namesPack(location.pack) === false) {
      if ((await this.readElsewhere(known, raw, location.id, read)) === true) return;
    }
    try {
      await read(raw);
      return;
    } catch (error) {
      if (!isCofferError(error, 'E_MISSING_OBJECT') && !isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
      const earlier = this.index;
      const loading = this.load();
      let found = await this.readElsewhere(await loading, raw, location.id, read);
      // (An index loaded again for a chunk found nowhere is not reloaded for the next one: a
      // snapshot with many damaged chunks would reload it for each.)
      if (found === 'stale' || (found === false && earlier !== undefined && loading !== this.reloaded)) {
        // Loaded before this read began, or naming a segment that is gone: a prune may have
        // moved the chunk or rewritten the segments since. Once more, from the segments now.
        if (this.index === loading) {
          this.index = undefined;
          this.loaded = undefined;
        }
        this.reloaded = this.load();
        found = await this.readElsewhere(await this.reloaded, raw, location.id, read);
      }
      if (found === true) return;
      throw error;
    }
  }

  /**
   * The index when it is loaded; while a failed read is loading it, waits for that load (a
   * reader asking meanwhile would otherwise send one more request to each pack that the load
   * is about to show gone); undefined while no read has failed.
   */
  private async loadedOrLoading(): Promise<ChunkIndex | undefined> {
    if (this.loaded === undefined && this.index !== undefined) await this.index.catch(() => undefined);
    return this.loaded;
  }

  private load(): Promise<ChunkIndex> {
    if (this.index === undefined) {
      const loading = ChunkIndex.load(this.repo, { packs: true });
      loading.then(
        (index) => {
          if (this.index === loading) this.loaded = index;
        },
        () => {
          if (this.index === loading) this.index = undefined;
        },
      );
      this.index = loading;
    }
    return this.index;
  }

  /**
   * Tries the other places the segments know for chunk `id`: true once one reads intact,
   * false when none does, `stale` when a segment the index names is gone (a prune replaced it).
   */
  private async readElsewhere(index: ChunkIndex, raw: Buffer, id: Buffer, read: (entry: Buffer) => Promise<void>): Promise<boolean | 'stale'> {
    let places: Buffer[];
    try {
      places = await index.lookupAll(id);
    } catch (error) {
      if (isCofferError(error, 'E_MISSING_OBJECT')) return 'stale';
      throw error;
    }
    for (const other of places) {
      if (other.equals(raw)) continue;
      try {
        await read(other);
        return true;
      } catch (error) {
        if (!isCofferError(error, 'E_MISSING_OBJECT') && !isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
      }
    }
    return false;
  }
}
