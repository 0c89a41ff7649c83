/**
 * The latency guard's throttle, pure: per running backup, a cap on its source read rate that
 * follows the mean read latency it reports with its progress (AIMD-like, as storage latency
 * control does):
 *
 * - a report above the threshold sets the cap to half the rate the backup read since its
 *   previous report (the bytes it read from the source over the clock's time between the two
 *   reports), or to half the cap in force when that is lower; never below the floor
 *   (`minBytesPerSecond`);
 * - a report at or under the threshold raises the cap ×1.5; once the cap no longer binds it is
 *   dropped: when it reaches the bandwidth rule's share (the share binds instead), or when it
 *   is at least twice what the backup read since its previous report (it reads slower for
 *   another reason).
 *
 * The rate is that of the bytes read from the source (the progress report's `sourceBytesRead`),
 * the bytes the cap limits, never that of the progress: an incremental's progress passes over
 * the ranges it skips unread (zero, unallocated, unchanged) far faster than it reads, and half
 * of that would be a cap that does not bind.
 *
 * One decision per report (every PROGRESS_INTERVAL_MS at most, worker-protocol.ts), so the cap
 * halves within a second or two from any rate down to the floor, and climbs back as fast.
 * The worker's rate is the smaller of its share and this cap ({@link cappedRates}).
 */
import type { WorkerRates } from '../worker/index.js';

/** What {@link ReadThrottle} needs of the latency guard. */
export interface ReadThrottleOptions {
  /** Reports above this mean read latency, ms, slow the backup. */
  readonly thresholdMs: number;
  /** The cap never goes below this, bytes per second. */
  readonly minBytesPerSecond: number;
}

/** A slow report multiplies the rate by this. */
export const THROTTLE_DECREASE = 0.5;
/** A report under the threshold multiplies the cap by this. */
export const THROTTLE_INCREASE = 1.5;
/** A cap at least this many times the achieved rate does not bind: it is dropped. */
const UNUSED_FACTOR = 2;

/** One running backup's read cap. Not shared between backups. */
export class ReadThrottle {
  private capRate: number | undefined;
  private last: { at: number; read: number } | undefined;

  constructor(private readonly options: ReadThrottleOptions) {}

  /** The cap in force, bytes per second, or undefined (none). */
  get cap(): number | undefined {
    return this.capRate;
  }

  /**
   * Takes one progress report: `at` the clock's time (ms), `read` the bytes read from the
   * source so far (undefined: not reported, no rate measured), `latencyMs` the mean read
   * latency since the previous report (undefined: no read since), `share` the worker's source
   * read share of the bandwidth rules (undefined: unlimited). Returns whether the cap changed.
   */
  report(at: number, read: number | undefined, latencyMs: number | undefined, share: number | undefined): boolean {
    const previous = this.last;
    this.last = read === undefined ? undefined : { at, read };
    const achieved = previous === undefined || read === undefined || at <= previous.at ? undefined : ((read - previous.read) * 1000) / (at - previous.at);
    if (latencyMs === undefined) return false;
    const before = this.capRate;
    if (latencyMs > this.options.thresholdMs) {
      const basis = Math.min(achieved ?? Infinity, this.capRate ?? Infinity, share ?? Infinity);
      // Nothing measured yet (the first report, no rule): the next report gives a rate.
      if (basis === Infinity) return false;
      this.capRate = Math.max(this.options.minBytesPerSecond, basis * THROTTLE_DECREASE);
    } else if (this.capRate !== undefined) {
      const raised = this.capRate * THROTTLE_INCREASE;
      const unused = achieved !== undefined && raised >= achieved * UNUSED_FACTOR;
      this.capRate = (share !== undefined && raised >= share) || unused ? undefined : raised;
    }
    return this.capRate !== before;
  }

  /** Forgets the cap (the backup read its last block). */
  release(): void {
    this.capRate = undefined;
  }
}

/** The rates a worker gets: its bandwidth share, its source reads no faster than `cap` when there is one. */
export function cappedRates(share: WorkerRates, cap: number | undefined): WorkerRates {
  if (cap === undefined || (share.sourceRead !== undefined && share.sourceRead <= cap)) return share;
  return { ...share, sourceRead: cap };
}
