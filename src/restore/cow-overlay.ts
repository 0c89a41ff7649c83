import * as fs from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { assertReadInBounds, coalesceExtents, type BlockDevice, type Extent, type WritableBlockDevice } from '../blockdev/index.js';
import { CofferError } from '../errors/index.js';
import { makeFolders } from '../native/index.js';

/** Bytes of one overlay granule: the unit of copy-on-write. */
export const GRANULE = 4096;

/**
 * A writable view of a read-only device (a snapshot's disk, for instant recovery): writes go to
 * an overlay on local storage, the base is never written. On-disk, for a disk named NAME in
 * the overlay folder:
 * - `NAME.data` — a sparse file of the disk's size; a written granule's bytes lie at their own
 *   offset in it;
 * - `NAME.map` — one bit per 4 KiB granule (bit `g % 8` of byte `floor(g / 8)`, LSB first): set
 *   when the granule lives in `NAME.data`. Rewritten (temporary file, fsync, rename) on every
 *   flush, so an overlay that was flushed reopens as it was.
 * - `NAME.origin.json` — what the overlay lies over, written (temporary file, fsync, rename)
 *   when it is created: `{"format": "coffer-cow-overlay", "version": 1, "snapshot": ID, "vm":
 *   VM, "disk": NAME, "size": BYTES, "granule": 4096}`. An overlay reopens only over the same
 *   snapshot's same disk: laid over another, its granules would mix two disks' bytes.
 * - `NAME.lock` — `{"pid": N, "host": H}` while a process has the overlay open (created
 *   exclusively; one left by a process of this host that is gone is taken over).
 * A partial-granule write first copies the rest of the granule from the base. Writes are
 * serialized (recovery VMs write little; reads run concurrently).
 */
export class CowOverlay implements WritableBlockDevice {
  readonly size: number;
  private readonly map: Uint8Array;
  private queue: Promise<unknown> = Promise.resolve();
  private dirtyMap = false;

  private constructor(
    private readonly base: BlockDevice,
    private readonly data: fs.FileHandle,
    private readonly mapPath: string,
    map: Uint8Array,
    private readonly lockPath: string,
  ) {
    this.size = base.size;
    this.map = map;
  }

  /**
   * Opens (or creates) the overlay of `name` in `folder` over `base`, the disk `origin` names.
   * @throws CofferError E_TARGET_UNWRITABLE when the folder holds an overlay of another
   * snapshot or disk (or one without its origin), or one another process has open.
   */
  static async open(base: BlockDevice, folder: string, name: string, origin: OverlayOrigin): Promise<CowOverlay> {
    await makeFolders(folder).catch((error: unknown) => {
      throw asTargetError(folder, error);
    });
    const dataPath = path.join(folder, `${name}.data`);
    const mapPath = path.join(folder, `${name}.map`);
    const lockPath = path.join(folder, `${name}.lock`);
    await takeLock(lockPath);
    try {
      const record: OriginRecord = { format: ORIGIN_FORMAT, version: 1, snapshot: origin.snapshot, vm: origin.vm, disk: origin.disk, size: base.size, granule: GRANULE };
      await checkOrigin(path.join(folder, `${name}.origin.json`), mapPath, record);
      const mapBytes = Math.ceil(Math.ceil(base.size / GRANULE) / 8);
      let map = new Uint8Array(mapBytes);
      try {
        const stored = await fs.readFile(mapPath);
        if (stored.length !== mapBytes) throw new CofferError('E_TARGET_UNWRITABLE', `${mapPath} belongs to a disk of another size`);
        map = new Uint8Array(stored);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw asTargetError(mapPath, error);
      }
      const data = await fs.open(dataPath, 'a+').then(async (h) => {
        await h.close();
        return fs.open(dataPath, 'r+');
      }).catch((error: unknown) => {
        throw asTargetError(dataPath, error);
      });
      await data.truncate(base.size).catch(async (error: unknown) => {
        await data.close();
        throw asTargetError(dataPath, error);
      });
      return new CowOverlay(base, data, mapPath, map, lockPath);
    } catch (error) {
      heldLocks.delete(lockPath);
      await fs.rm(lockPath, { force: true }).catch(() => {});
      throw error;
    }
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    assertReadInBounds(this.size, offset, length);
    const target = into === undefined ? new Uint8Array(length) : into.subarray(0, length);
    const pieces: Promise<unknown>[] = [];
    for (const run of this.runs(offset, length)) {
      const view = target.subarray(run.offset - offset, run.offset - offset + run.length);
      pieces.push(run.inOverlay ? this.data.read(view, 0, run.length, run.offset) : this.base.read(run.offset, run.length, view));
    }
    await Promise.all(pieces);
    return target;
  }

  async *extents(offset = 0, length = this.size - offset): AsyncIterable<Extent> {
    assertReadInBounds(this.size, offset, length);
    const self = this;
    async function* merged(): AsyncIterable<Extent> {
      for await (const extent of self.base.extents(offset, length)) {
        for (const run of self.runs(extent.offset, extent.length)) {
          yield run.inOverlay ? { offset: run.offset, length: run.length, kind: 'data' } : { ...extent, offset: run.offset, length: run.length };
        }
      }
    }
    yield* coalesceExtents(merged());
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    assertReadInBounds(this.size, offset, data.length);
    return this.serialized(async () => {
      const first = Math.floor(offset / GRANULE);
      const end = offset + data.length;
      const last = Math.floor((end - 1) / GRANULE);
      // Fill partial granules at the edges from what they hold now.
      for (const g of new Set([first, last])) {
        const from = g * GRANULE;
        const to = Math.min(this.size, from + GRANULE);
        if (this.has(g) || (offset <= from && end >= to)) continue;
        const current = await this.read(from, to - from);
        await this.put(from, current);
        this.mark(g);
      }
      await this.put(offset, data);
      for (let g = first; g <= last; g++) this.mark(g);
    });
  }

  async writeZeroes(offset: number, length: number): Promise<void> {
    assertReadInBounds(this.size, offset, length);
    for (let done = 0; done < length; done += 1 << 20) await this.write(offset + done, new Uint8Array(Math.min(1 << 20, length - done)));
  }

  /** Trimmed ranges keep their contents (allowed: trim makes them unspecified). */
  async trim(offset: number, length: number): Promise<void> {
    assertReadInBounds(this.size, offset, length);
  }

  flush(): Promise<void> {
    return this.serialized(async () => {
      await this.data.datasync().catch((error: unknown) => {
        throw asTargetError(this.mapPath, error);
      });
      if (!this.dirtyMap) return;
      await writeDurably(this.mapPath, this.map);
      this.dirtyMap = false;
    });
  }

  /** Flushes, then closes the overlay file (the base stays open: it belongs to the caller). */
  async close(): Promise<void> {
    await this.flush().catch(() => {});
    await this.data.close().catch(() => {});
    heldLocks.delete(this.lockPath);
    await fs.rm(this.lockPath, { force: true }).catch(() => {});
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work);
    this.queue = result.catch(() => {});
    return result;
  }

  private async put(offset: number, data: Uint8Array): Promise<void> {
    try {
      await this.data.write(data, 0, data.length, offset);
    } catch (error) {
      throw asTargetError(this.mapPath, error);
    }
  }

  private has(granule: number): boolean {
    return ((this.map[granule >>> 3] as number) & (1 << (granule & 7))) !== 0;
  }

  private mark(granule: number): void {
    this.map[granule >>> 3] = (this.map[granule >>> 3] as number) | (1 << (granule & 7));
    this.dirtyMap = true;
  }

  /** `[offset, offset + length)` cut where it passes between overlay and base. */
  private *runs(offset: number, length: number): Iterable<{ offset: number; length: number; inOverlay: boolean }> {
    let at = offset;
    const end = offset + length;
    while (at < end) {
      const inOverlay = this.has(Math.floor(at / GRANULE));
      let next = Math.min(end, (Math.floor(at / GRANULE) + 1) * GRANULE);
      const whole = inOverlay ? 0xff : 0x00;
      while (next < end) {
        const g = Math.floor(next / GRANULE);
        if (g % 8 === 0 && this.map[g >>> 3] === whole) next = Math.min(end, next + 8 * GRANULE); // 8 granules at once
        else if (this.has(g) === inOverlay) next = Math.min(end, next + GRANULE);
        else break;
      }
      yield { offset: at, length: next - at, inOverlay };
      at = next;
    }
  }
}

/** The disk an overlay lies over. */
export interface OverlayOrigin {
  snapshot: string;
  vm: string;
  disk: string;
}

const ORIGIN_FORMAT = 'coffer-cow-overlay';

interface OriginRecord extends OverlayOrigin {
  format: typeof ORIGIN_FORMAT;
  version: 1;
  size: number;
  granule: number;
}

/**
 * Records a new overlay's origin, or checks a kept one's: the same snapshot, disk, size and
 * granule, else the overlay is refused (nothing is changed in it).
 */
async function checkOrigin(originPath: string, mapPath: string, wanted: OriginRecord): Promise<void> {
  let text: string;
  try {
    text = await fs.readFile(originPath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw asTargetError(originPath, error);
    const kept = await fs.stat(mapPath).then(() => true, () => false);
    if (kept) {
      throw new CofferError(
        'E_TARGET_UNWRITABLE',
        `${mapPath}: an overlay without a record of the snapshot it was made over (${path.basename(originPath)}): it cannot be laid over snapshot ${wanted.snapshot.slice(0, 8)}; use another overlay folder`,
        { subject: { path: mapPath } },
      );
    }
    await writeDurably(originPath, Buffer.from(`${JSON.stringify(wanted)}\n`));
    return;
  }
  let kept: Partial<OriginRecord>;
  try {
    kept = JSON.parse(text) as Partial<OriginRecord>;
  } catch {
    throw new CofferError('E_TARGET_UNWRITABLE', `${originPath} is not an overlay's origin record (not JSON)`, { subject: { path: originPath } });
  }
  if (kept.format !== ORIGIN_FORMAT || kept.version !== 1) throw new CofferError('E_TARGET_UNWRITABLE', `${originPath} is not a version 1 overlay origin record`, { subject: { path: originPath } });
  if (kept.snapshot !== wanted.snapshot || kept.disk !== wanted.disk || kept.size !== wanted.size || kept.granule !== wanted.granule) {
    throw new CofferError(
      'E_TARGET_UNWRITABLE',
      `${originPath}: this overlay was made over disk ${String(kept.disk)} of snapshot ${String(kept.snapshot).slice(0, 8)} (${String(kept.vm)}), not over disk ${wanted.disk} of snapshot ${wanted.snapshot.slice(0, 8)} (${wanted.vm}): ` +
        'laid over another disk its writes would mix with bytes they never belonged to; use another overlay folder',
      { subject: { path: originPath } },
    );
  }
}

/** Lock files this process holds (a holder naming our own pid is stale unless listed here: a restarted container reuses pids). */
const heldLocks = new Set<string>();

/**
 * Creates the lock file exclusively; one left by a process of this host that no longer runs
 * is taken over. Taking over renames the stale file aside first and checks that what moved is
 * what was judged stale: of two processes taking over at once, one gets the lock, and the
 * other, having moved the winner's fresh lock, puts it back and is refused.
 */
async function takeLock(lockPath: string): Promise<void> {
  const mine = Buffer.from(`${JSON.stringify({ pid: process.pid, host: os.hostname() })}\n`);
  const inUse = (holder: { pid?: unknown; host?: unknown }) =>
    new CofferError('E_TARGET_UNWRITABLE', `${lockPath}: the overlay is in use by process ${String(holder.pid)} on ${String(holder.host)} (two writers would corrupt it); if no process uses it, remove the lock file`, { subject: { path: lockPath } });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await fs.writeFile(lockPath, mine, { flag: 'wx' });
      heldLocks.add(lockPath);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw asTargetError(lockPath, error);
    }
    const text = await fs.readFile(lockPath, 'utf8').catch(() => undefined);
    if (text === undefined) continue; // gone meanwhile: try again
    let holder: { pid?: unknown; host?: unknown } = {};
    try {
      holder = JSON.parse(text) as typeof holder;
    } catch {
      // Unreadable or half-written: treated as a live holder below unless it names a dead one.
    }
    const ours = holder.pid === process.pid && !heldLocks.has(lockPath);
    const gone = holder.host === os.hostname() && typeof holder.pid === 'number' && (ours || (holder.pid !== process.pid && !processRuns(holder.pid)));
    if (!gone) throw inUse(holder);
    const aside = `${lockPath}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await fs.rename(lockPath, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // another process moved it first
      throw asTargetError(lockPath, error);
    }
    const moved = await fs.readFile(aside, 'utf8').catch(() => '');
    if (moved !== text) {
      // A fresh lock, taken between the read and the rename: put it back (unless the place is taken again) and give way.
      await fs.link(aside, lockPath).catch(() => {});
      await fs.rm(aside, { force: true });
      let winner: { pid?: unknown; host?: unknown } = {};
      try {
        winner = JSON.parse(moved) as typeof winner;
      } catch {
        // unreadable: named as unknown
      }
      throw inUse(winner);
    }
    await fs.rm(aside, { force: true });
  }
  throw new CofferError('E_TARGET_UNWRITABLE', `${lockPath}: another process took the overlay's lock at the same time`, { subject: { path: lockPath } });
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Writes a file whole or not at all: a temporary file, fsync, rename. */
async function writeDurably(file: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${file}.tmp`;
  try {
    const handle = await fs.open(tmp, 'w');
    try {
      await handle.write(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (error) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw asTargetError(file, error);
  }
}

function asTargetError(file: string, error: unknown): CofferError {
  if (error instanceof CofferError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new CofferError('E_NO_SPACE', `${file}: no space left for the overlay`, { cause: error });
  return new CofferError('E_TARGET_UNWRITABLE', `${file}: ${(error as Error).message}`, { cause: error });
}
