import { open, type FileHandle } from 'node:fs/promises';

/**
 * Read-only file handles kept open between ranged reads of the same file (a format 2 pack
 * read frame by frame: `coffer serve` under nbdcopy opened and closed a pack for every frame,
 * 0.36 s of its main thread in a 4.3 s copy, and three thread-pool round trips per read
 * instead of one).
 *
 * Lifecycle: at most `maxOpen` handles are kept; past that, the least recently used idle
 * one is closed (a read that finds every kept handle busy uses a handle of its own, closed
 * after it). A handle idle for `idleMs` is closed by a timer that does not keep the process
 * alive; {@link closeAll} closes every handle (the backend's `close()`, which the
 * repository's `close()` calls). {@link forget} closes the handle of a file this process
 * deletes or replaces at once (when its last read ends).
 *
 * Staleness: an open handle still reads a file that was since deleted or replaced (by prune
 * in another process, say). The caller checks the link count of the handle's file
 * ({@link ReadLease.stillLinked}) with each read, and reopens by name when it is 0, so a
 * deleted file is reported missing and a replaced one is read anew.
 */
export class ReadHandles {
  private readonly kept = new Map<string, KeptHandle>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly maxOpen: number = READ_HANDLE_DEFAULTS.maxOpen,
    private readonly idleMs: number = READ_HANDLE_DEFAULTS.idleMs,
    /** Injected for tests; `Date.now` by default (only to age idle handles). */
    private readonly now: () => number = Date.now,
  ) {}

  /** Handles currently open and kept. */
  get openCount(): number {
    return this.kept.size;
  }

  /** A handle of `path` for one read; release it after. Throws what `open` throws (ENOENT…). */
  async acquire(path: string): Promise<ReadLease> {
    let kept = this.kept.get(path);
    if (kept === undefined) {
      if (this.kept.size >= this.maxOpen && !this.closeLeastRecentIdle()) return this.uncached(path);
      kept = { handle: open(path, 'r'), users: 0, lastUsed: this.now(), forgotten: false };
      const entry = kept;
      this.kept.set(path, entry);
      entry.handle.catch(() => {
        if (this.kept.get(path) === entry) this.kept.delete(path);
      });
      this.startTimer();
    } else {
      this.kept.delete(path);
      this.kept.set(path, kept); // most recent last
    }
    const entry = kept;
    entry.users += 1;
    let handle: FileHandle;
    try {
      handle = await entry.handle;
    } catch (error) {
      entry.users -= 1;
      throw error;
    }
    return leaseOf(handle, () => {
      entry.users -= 1;
      entry.lastUsed = this.now();
      if (entry.forgotten && entry.users === 0) void handle.close().catch(() => undefined);
    });
  }

  /** Stops keeping the handle of `path` (deleted or replaced): closed now, or when its last read ends. */
  forget(path: string): void {
    const kept = this.kept.get(path);
    if (kept === undefined) return;
    this.kept.delete(path);
    this.retire(kept);
  }

  /** Closes every kept handle (those in use when their reads end). Further reads open new ones. */
  async closeAll(): Promise<void> {
    const all = [...this.kept.values()];
    this.kept.clear();
    this.stopTimer();
    await Promise.all(all.map((kept) => this.retire(kept)));
  }

  /** Closes handles idle for `idleMs` or longer. */
  closeIdle(): void {
    const cutoff = this.now() - this.idleMs;
    for (const [path, kept] of this.kept) {
      if (kept.users === 0 && kept.lastUsed <= cutoff) {
        this.kept.delete(path);
        this.retire(kept);
      }
    }
    if (this.kept.size === 0) this.stopTimer();
  }

  private closeLeastRecentIdle(): boolean {
    for (const [path, kept] of this.kept) {
      if (kept.users !== 0) continue;
      this.kept.delete(path);
      this.retire(kept);
      return true;
    }
    return false;
  }

  private async retire(kept: KeptHandle): Promise<void> {
    kept.forgotten = true;
    if (kept.users !== 0) return;
    const handle = await kept.handle.catch(() => undefined);
    if (handle !== undefined && kept.users === 0) await handle.close().catch(() => undefined);
  }

  private async uncached(path: string): Promise<ReadLease> {
    const handle = await open(path, 'r');
    return leaseOf(handle, () => void handle.close().catch(() => undefined));
  }

  private startTimer(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.closeIdle(), Math.max(10, Math.floor(this.idleMs / 2)));
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** Why these bounds: see each field. */
export const READ_HANDLE_DEFAULTS = {
  /**
   * A reader's frames come from few packs at once (8 MiB packs, frames read in order; an
   * incremental's blocks point into its own packs and its parent's): 16 covers a frame
   * cache of 12 frames from 12 different packs plus read-ahead, far below any fd limit.
   */
  maxOpen: 16,
  /** Long enough to span the gaps of a sequential read, short enough that a pack prune deletes is not held for long. */
  idleMs: 2000,
} as const;

/** One read's use of a handle. */
export interface ReadLease {
  readonly handle: FileHandle;
  /** Whether the file the handle reads still has a name (fstat's link count), i.e. was neither deleted nor replaced. */
  stillLinked(): Promise<boolean>;
  /** Ends the read's use (idempotent). */
  release(): void;
}

interface KeptHandle {
  handle: Promise<FileHandle>;
  users: number;
  lastUsed: number;
  /** No longer kept: closed when its last user releases it. */
  forgotten: boolean;
}

/** A lease of `handle` whose first `release()` runs `onRelease` (later ones do nothing). */
function leaseOf(handle: FileHandle, onRelease: () => void): ReadLease {
  let released = false;
  return {
    handle,
    stillLinked: async () => (await handle.stat()).nlink > 0,
    release: () => {
      if (released) return;
      released = true;
      onRelease();
    },
  };
}
