import { forEachLimited, type SharedBufferPool } from '../concurrency/index.js';
import { isCofferError } from '../errors/index.js';
import type { Repository } from './repository.js';
import { frameSpans, listStoredPacks, openSpan, readTrailerOrProblem, spanBuffers, type OpenedSpan, type PackTrailerProblem, type StoredPack } from './verify-packs.js';

/** A frame the read-ahead opened: its name (frame-reader.ts `frameName`), stored length and authenticated table. */
export interface FrameOpenedAhead {
  name: string;
  length: number;
  table: { id: Buffer; offset: number; length: number }[];
}

/** A frame as its pack's trailer lists it. */
interface ListedFrame {
  name: string;
  pack: string;
  offset: number;
  length: number;
}

/**
 * The first half of a full `verify --read-data` of a format 2 repository, started before the
 * snapshots are walked: the packs are listed and, pack after pack (two tasks per codec thread
 * in flight), each one's trailer is read and checked (see {@link trailerProblems}) and every
 * frame it lists read and opened, every chunk rehashed, while the main thread still reads the
 * snapshots' indexes. Reading had waited for that walk (~0.2 s of the bench's 2.9 s verify,
 * the codec threads idle).
 *
 * Once the walk knows which frames the snapshots use (each by name and stored length),
 * {@link narrow} hands over the frames opened so far and those to come, and from then on only
 * those frames are read. A frame read before then that no snapshot uses (data the next prune
 * removes) was read for nothing: at most what the threads read during the walk.
 *
 * Nothing is reported from here but the trailers: a frame that does not read or open is left
 * out, and the caller reads every frame it was not handed the usual way (verify-packs.ts),
 * which names the damage and looks for other places of its chunks; so is a frame no trailer
 * lists (a damaged trailer, a pack written since the listing).
 */
export class FrameReadAhead {
  /** The packs stored (one listing of `packs/`). */
  readonly packs: Promise<StoredPack[]>;
  /** Settles when every frame to read has been read (rejects on an unexpected error). */
  readonly done: Promise<void>;
  /** Resolves once a first frame has gone to the codec threads, or nothing is to be read. */
  readonly started: Promise<void>;
  private markStarted: () => void = () => undefined;
  private readonly problems: PackTrailerProblem[] = [];
  private wanted: ReadonlyMap<string, number> | undefined;
  private deliver: ((frame: FrameOpenedAhead) => void) | undefined;
  private early: FrameOpenedAhead[] = [];

  constructor(private readonly repo: Repository) {
    this.started = new Promise((resolve) => (this.markStarted = resolve));
    this.packs = listStoredPacks(repo);
    this.done = this.packs.then((packs) => this.read(packs));
    void this.done.then(() => this.markStarted(), () => this.markStarted());
    // Both are awaited by verify; until then (or should verify fail first) a rejection is held.
    for (const promise of [this.packs, this.done]) promise.catch(() => undefined);
  }

  /** What `checkPackTrailers` (verify-packs.ts) would find: every pack's trailer is read here. */
  async trailerProblems(): Promise<PackTrailerProblem[]> {
    await this.done;
    return [...this.problems].sort((a, b) => a.pack.localeCompare(b.pack));
  }

  /**
   * From now on, only the frames of `wanted` (name → stored length, as the snapshots' located
   * entries give them) are read, and each frame opened, before or after, whose name and length
   * match goes to `deliver`.
   */
  narrow(wanted: ReadonlyMap<string, number>, deliver: (frame: FrameOpenedAhead) => void): void {
    this.wanted = wanted;
    this.deliver = deliver;
    const early = this.early;
    this.early = [];
    for (const frame of early) this.hand(frame);
  }

  /** Reads no more frames (verify ended early); trailers are still read. */
  stop(): void {
    this.narrow(new Map(), () => undefined);
  }

  private hand(frame: FrameOpenedAhead): void {
    if (this.deliver === undefined) this.early.push(frame);
    else if (this.wanted?.get(frame.name) === frame.length) this.deliver(frame);
  }

  private isWanted(frame: ListedFrame): boolean {
    return this.wanted === undefined || this.wanted.get(frame.name) === frame.length;
  }

  private async read(packs: readonly StoredPack[]): Promise<void> {
    const lanes = this.repo.pool.threads * 2;
    const buffers = spanBuffers(lanes);
    await forEachLimited(packs, lanes, async (pack) => {
      const trailer = await readTrailerOrProblem(this.repo, pack);
      if (!('frames' in trailer)) {
        this.problems.push(trailer);
        return;
      }
      const listed = trailer.frames.map((frame) => ({ name: `${pack.key}@${frame.offset}`, pack: pack.key, offset: frame.offset, length: frame.length }));
      for (const span of frameSpans(listed)) await this.readSpan(span, buffers);
    });
  }

  /** Reads one span of a pack's frames and opens those still wanted (the bytes between them are read, unused). */
  private async readSpan(span: ListedFrame[], buffers: SharedBufferPool): Promise<void> {
    const frames = span.filter((frame) => this.isWanted(frame));
    if (frames.length === 0) return;
    let opened: OpenedSpan;
    try {
      opened = await openSpan(this.repo, (frames[0] as ListedFrame).pack, frames, buffers, () => this.markStarted());
    } catch (error) {
      if (isCofferError(error, 'E_MISSING_OBJECT') || isCofferError(error, 'E_CORRUPT_OBJECT')) return; // the caller reads these frames again
      throw error;
    }
    frames.forEach((frame, i) => {
      const result = opened[i];
      if (result !== undefined && !(result instanceof Error)) this.hand({ name: frame.name, length: frame.length, table: result.table });
    });
  }
}
