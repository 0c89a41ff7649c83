import { CofferError } from '../../errors/index.js';
import { queryBlockJobs, type QmpClient } from '../../qmp/index.js';
import { ScratchWatch, SCRATCH_POLL_MS } from '../scratch-space.js';

/** Options of {@link CaptureGuard.start}. */
export interface CaptureGuardOptions {
  /** The VM, for messages. */
  vm: string;
  /** The fleecing jobs of the capture (their ids). */
  jobIds: readonly string[];
  /** The folder the fleecing overlays grow in, and the free space it must keep. */
  scratch: { dir: string; minFreeBytes: number };
  /** Ends the capture (the fleecing jobs first), releasing the guest's writes. Called once, on the first break. */
  release: () => Promise<void>;
  pollMs?: number;
}

/**
 * Keeps a point-in-time capture honest while it is read, and keeps it from hurting the VM.
 *
 * Facts checked on QEMU 7.2 (src/source/qemu/capture-guard.integ.test.ts):
 * - The fleecing job (`blockdev-backup sync=none`) puts a copy-before-write filter above the
 *   disk, which copies old data into the overlay before a guest write lands. When that copy
 *   fails (the scratch filesystem is full), the filter fails the GUEST's write: the guest sees
 *   an I/O error, and a disk with QEMU's default `werror=enospc` pauses the VM. QEMU 7.2's
 *   `blockdev-backup` offers no `on-cbw-error=break-snapshot`.
 * - A fleecing job that ends before Coffer ends it (cancelled by another tool, failed) leaves
 *   the overlay reading through to the live disk: bytes written after the instant.
 *
 * So the guard, from the transaction until the capture ends:
 * - looks at the scratch filesystem's free space every {@link SCRATCH_POLL_MS} ms: below
 *   `minFreeBytes` it ends the capture at once (the guest's writes go through again, to the
 *   live disk only) and the backup fails with E_NO_SPACE naming the folder;
 * - listens for the end of its jobs: one that ends while the guard is on breaks the instant;
 *   the capture ends at once (no read can see later bytes) and the backup fails with
 *   E_SOURCE_UNREADABLE.
 * The capture itself watches the guest's failed writes (qemu-capture.ts) and ends through
 * {@link fail}.
 * {@link confirm} (all disks read, before the snapshot is recorded) throws the break, and asks
 * QEMU whether every job still runs: QEMU answers in order, so a job's end event that came
 * before the answer has been seen.
 */
export class CaptureGuard {
  private broken: CofferError | undefined;
  private stopped = false;
  private readonly scratch: ScratchWatch;
  private readonly unsubscribe: (() => void)[] = [];

  private constructor(
    private readonly qmp: QmpClient,
    private readonly options: CaptureGuardOptions,
  ) {
    const jobs = new Set(options.jobIds);
    for (const event of ['BLOCK_JOB_CANCELLED', 'BLOCK_JOB_COMPLETED', 'BLOCK_JOB_ERROR']) {
      this.unsubscribe.push(
        qmp.on(event, (e) => {
          const job = e.data['device'];
          if (typeof job !== 'string' || !jobs.has(job)) return;
          const why = typeof e.data['error'] === 'string' ? `: ${e.data['error']}` : '';
          this.break(this.jobEnded(`QEMU reported ${event} for the fleecing job ${job}${why}`));
        }),
      );
    }
    this.scratch = ScratchWatch.start({
      vm: options.vm,
      dir: options.scratch.dir,
      minFreeBytes: options.scratch.minFreeBytes,
      onLow: (error) => this.break(error),
      ...(options.pollMs !== undefined ? { pollMs: options.pollMs } : {}),
    });
  }

  /** Starts watching (right after the transaction that started the jobs). */
  static start(qmp: QmpClient, options: CaptureGuardOptions): CaptureGuard {
    return new CaptureGuard(qmp, options);
  }

  /** Why the capture broke, if it did. */
  get failure(): CofferError | undefined {
    return this.broken;
  }

  /**
   * Throws if the capture did not hold from the instant until now: a break seen, or a job
   * that QEMU no longer runs.
   */
  async confirm(): Promise<void> {
    if (this.broken !== undefined) throw this.broken;
    const running = new Map((await queryBlockJobs(this.qmp)).map((job) => [job.id, job]));
    if (this.broken !== undefined) throw this.broken; // an end event read before the answer
    for (const id of this.options.jobIds) {
      const job = running.get(id);
      if (job === undefined || job.error !== undefined || !['running', 'ready', 'paused'].includes(job.status)) {
        const ended = this.jobEnded(job === undefined ? `the fleecing job ${id} is gone` : `the fleecing job ${id} is ${job.status}${job.error !== undefined ? ` (${job.error})` : ''}`);
        this.break(ended);
        throw ended;
      }
    }
  }

  /**
   * Ends the capture for a reason seen outside the guard (a guest write that failed while
   * the capture held its disks): the same as a break the guard sees itself. No effect once
   * the guard has broken or stopped.
   */
  fail(error: CofferError): void {
    this.break(error);
  }

  /** Stops watching: the capture is being ended on purpose (its jobs' end is no break). Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.scratch.stop();
    for (const off of this.unsubscribe.splice(0)) off();
  }

  private break(error: CofferError): void {
    if (this.broken !== undefined || this.stopped) return;
    this.broken = error;
    this.stop();
    void this.options.release().catch(() => {});
  }

  private jobEnded(what: string): CofferError {
    return new CofferError('E_SOURCE_UNREADABLE', `VM ${this.options.vm}: the point-in-time view ended before the backup finished (${what}); nothing of this backup is recorded`);
  }
}
