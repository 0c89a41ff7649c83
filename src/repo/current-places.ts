import { Slots } from '../concurrency/index.js';
import { isZeroEntry } from './format/index-page.js';
import { isLocatedEntry } from './format/located-entry.js';
import { packKey } from './layout.js';
import { MovedChunks } from './moved-chunks.js';
import type { Repository } from './repository.js';

/**
 * The parent's entries an incremental backup reuses, brought to where their chunk lives now
 * (docs/repository-format.md §19.7): after a repacking prune a parent's located entry may name
 * a removed pack; copied as it is, every later snapshot would inherit the stale hint and every
 * restore, serve and verify of it would resolve it again. One per backed-up disk.
 *
 * The signal, given the packs removed since the parent (`removedSince`, the records of the
 * prunes since its mark, pack-removals.ts), is membership in that set: no request at all. A
 * backup whose parent removed nothing since makes no `CurrentPlaces` (nothing to bring). Without
 * the set (a parent written before the records, or a record missing), it is the pack's
 * existence, asked once per distinct pack the reused entries name (`has`: a stat on a local
 * repository, a HEAD on S3). Either way, in the order the blocks come; entries of one pack
 * follow each other, so the per-block cost is one comparison with the last pack stored. When
 * no pack the parent names was removed, that is all: nothing is listed or loaded. For a
 * pack that is gone, {@link MovedChunks.confirmGone} loads the segments once (the repository's
 * reader of moved chunks shares them with restores of the same open repository) and
 * {@link MovedChunks.placeOf} gives the chunk's entry in a live pack. A pack missing but still
 * named by a segment (lost, not repacked: salvage's job), or a chunk no segment places, keeps
 * the parent's entry: the snapshot reads as its parent does.
 */
export class CurrentPlaces {
  /** Per pack (hex): whether it is gone, asked once. */
  private readonly gone = new Map<string, Promise<boolean>>();
  /** The last pack found stored: entries naming it are answered at once, without a promise. */
  private lastStored: Buffer | undefined;
  /** Existence checks at once: the backend's preference (S3: 32), else 8. */
  private readonly checks: Slots;

  /**
   * @param removedSince the packs (hex) removed since the parent was written, when known: only
   *   those may be gone; undefined: ask the backend about each pack.
   */
  constructor(
    private readonly repo: Repository,
    private readonly removedSince?: ReadonlySet<string>,
  ) {
    this.checks = new Slots(repo.backend.preferredConcurrency ?? 8);
  }

  /**
   * Starts the checks of every pack `entries` name (a parent's index page, when the backup
   * first needs one of its entries), several at once: the blocks of one pack come together,
   * so checks asked block by block would run one after another (on S3, 400 packs of a 4 GiB
   * disk would be 400 HEADs in a row).
   */
  expect(entries: readonly Buffer[]): void {
    let last: Buffer | undefined;
    for (const raw of entries) {
      if (!isLocatedEntry(raw) || (last !== undefined && namesPack(raw, last)) || isZeroEntry(raw)) continue;
      last = raw.subarray(32, 64);
      void this.isGone(last).catch(() => undefined); // a failure is the asking block's
    }
  }

  /**
   * Entry `raw` as it should be written now: its chunk's current place, or `raw` itself. Not a
   * promise for an entry of the last pack found stored (a live incremental asks for every
   * unchanged block: 262,144 of a 16 GiB disk at 64 KiB; ~0.5 µs each as a promise).
   */
  of(raw: Buffer): Buffer | Promise<Buffer> {
    if (!isLocatedEntry(raw)) return raw;
    if (this.lastStored !== undefined && namesPack(raw, this.lastStored)) return raw;
    if (isZeroEntry(raw)) return raw;
    return this.resolve(raw);
  }

  private async resolve(raw: Buffer): Promise<Buffer> {
    const pack = raw.subarray(32, 64);
    if (!(await this.isGone(pack))) {
      this.lastStored = Buffer.from(pack);
      return raw;
    }
    return (await MovedChunks.of(this.repo).placeOf(raw)) ?? raw;
  }

  /** Whether pack `pack` is gone: removed (or missing) and named by no segment; asked once per pack. */
  private isGone(pack: Buffer): Promise<boolean> {
    const hex = pack.toString('hex');
    let gone = this.gone.get(hex);
    if (gone === undefined) {
      const id = Buffer.from(pack);
      const stored = this.removedSince !== undefined ? Promise.resolve(!this.removedSince.has(hex)) : this.checks.run(() => this.repo.backend.has(packKey(hex)));
      gone = stored.then((isStored) => (isStored ? false : MovedChunks.of(this.repo).confirmGone(id)));
      gone.catch(() => undefined); // awaited by the block that asked; never an unhandled rejection
      this.gone.set(hex, gone);
    }
    return gone;
  }
}

/** Whether located entry `raw` names `pack` (a byte loop: `Buffer.compare` with ranges costs ~0.2 µs a call). */
function namesPack(raw: Buffer, pack: Buffer): boolean {
  for (let i = 0; i < 32; i++) if (raw[32 + i] !== pack[i]) return false;
  return true;
}
