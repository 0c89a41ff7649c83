import * as fs from 'node:fs/promises';
import path from 'node:path';
import { openDiskTarget } from '../../disk/index.js';
import { CofferError } from '../../errors/index.js';
import {
  bitmapAddAction,
  bitmapMergeAction,
  blockExportAdd,
  blockExportDel,
  blockJobCancel,
  blockdevAdd,
  blockdevBackupAction,
  blockdevDel,
  BLOCK_IO_ERROR,
  cont,
  fleecingOverlayOptions,
  nbdServerStart,
  nbdServerStop,
  queryBlockExports,
  queryBlockJobs,
  queryNamedBlockNodes,
  queryStatus,
  parseBlockIoError,
  removeDirtyBitmap,
  transaction,
  type BlockIoError,
  type QmpClient,
  type TransactionAction,
} from '../../qmp/index.js';
import { CaptureGuard } from './capture-guard.js';
import { CHECKPOINT_GRANULARITY, CHECKPOINT_PREFIX, checkpointProblem, type QemuDisk } from './qemu-disks.js';

/**
 * Commands around the instant of capture (quiescing an application, freezing a database):
 * `beforeCapture` runs just before the transaction and may refuse it by throwing;
 * `afterCapture` runs right after it, whether it or `beforeCapture` succeeded or not (a thaw
 * must follow any attempt to freeze).
 */
export interface CaptureHooks {
  beforeCapture?: () => Promise<void>;
  afterCapture?: () => Promise<void>;
}

/**
 * Quiesces the guest just around the transaction (a guest agent's filesystem freeze, see
 * guest-freeze.ts): `freeze` right before it, after the pre-capture hook; `thaw` right after
 * it in a `finally` (whether the freeze or the transaction succeeded or not), before the
 * post-capture hook. `thaw` must not throw.
 */
export interface CaptureQuiescer {
  freeze(): Promise<void>;
  thaw(): Promise<void>;
}

/** One disk in a point-in-time capture. */
export interface CapturedDisk {
  disk: QemuDisk;
  /** The checkpoint this capture leaves (a bitmap recording from the capture's instant on). */
  checkpoint: string;
  /** The previous checkpoint the exported changes are relative to, when usable. */
  since?: string;
  /** Why the disk is read in full although a previous backup exists. */
  fullReason?: string;
  /** A frozen copy of `since` at the instant: what changed between the two captures. */
  changes?: string;
  /** Bytes per bit of `changes`: that of `since` (the new checkpoint's is {@link CHECKPOINT_GRANULARITY}). */
  granularity: number;
  overlayNode: string;
  overlayFile: string;
  /** The fleecing job's copy-before-write filter: the disk's root node while the job runs. */
  filterNode: string;
  jobId: string;
  exportId: string;
}

/**
 * A point-in-time view of every disk of a running VM, taken with QEMU's fleecing (see
 * shared facts in docs/live-backup.md):
 * 1. for each disk, an empty qcow2 overlay backed by the live node is added;
 * 2. ONE `transaction` then, for every disk at the same instant: adds the new persistent
 *    checkpoint bitmap; for an incremental, adds a disabled bitmap and merges the previous
 *    checkpoint into it (the changes between the two captures, frozen); starts a
 *    `blockdev-backup sync=none` job into the overlay, which copies old data there before the
 *    guest overwrites it. The VM never pauses.
 * 3. QEMU's NBD server exports each overlay (export name = disk name) with the frozen bitmap,
 *    read as `qemu:dirty-bitmap:NAME`.
 * 4. From the transaction until the jobs are gone, a guest write that fails (BLOCK_IO_ERROR
 *    on a captured disk: the copy-before-write into a full scratch filesystem fails the
 *    guest's write, see capture-guard.ts) ends the capture at once; a VM that QEMU paused on
 *    it (`werror=stop`, or `enospc` on ENOSPC, QEMU's default) is resumed once the jobs are
 *    gone, and QEMU retries the write on the disk alone: the guest never sees the error.
 * The previous checkpoint is never disabled or removed here: if this backup fails, it still
 * covers every change since the last good one. {@link end} undoes everything but the
 * checkpoints; {@link dropNewCheckpoints} (a failed backup) or {@link dropOldCheckpoints} (a
 * recorded one) then settles which checkpoint lives on.
 */
export class QemuCapture {
  private ending: Promise<void> | undefined;
  private guard: CaptureGuard | undefined;
  /** True until {@link start} returns or fails: a break then only cancels the jobs (see {@link release}). */
  private starting = true;
  private jobsReleased: Promise<void> | undefined;
  /** Guest writes to the captured disks that failed while the jobs ran, in order. */
  private readonly guestErrors: BlockIoError[] = [];
  private guestFailure: CofferError | undefined;
  private stopWatchingGuest: (() => void) | undefined;
  /** From just before the transaction until the jobs are cancelled. */
  private jobsLive = false;
  private resumeTried = false;
  private resumeProblem: string | undefined;

  private constructor(
    private readonly qmp: QmpClient,
    readonly disks: CapturedDisk[],
    readonly nbdSocket: string,
    private readonly workDir: string,
    private readonly vm: string,
  ) {}

  /**
   * `guard`: from the transaction on, a {@link CaptureGuard} watches the jobs and keeps
   * `scratchMinFreeBytes` free in `workDir`'s filesystem (see capture-guard.ts).
   */
  static async start(
    qmp: QmpClient,
    disks: QemuDisk[],
    options: { previous: ReadonlyMap<string, string>; workDir: string; tag: string; run: string; hooks?: CaptureHooks; quiesce?: CaptureQuiescer; guard: { vm: string; scratchMinFreeBytes: number; pollMs?: number } },
  ): Promise<QemuCapture> {
    const nbdSocket = path.join(options.workDir, 'nbd.sock');
    const captured: CapturedDisk[] = disks.map((disk, i) => {
      const previous = options.previous.get(disk.name);
      const problem = checkpointProblem(disk, previous);
      return {
        disk,
        checkpoint: `${CHECKPOINT_PREFIX}${options.tag}-${i}`,
        ...(problem === undefined ? { since: previous, changes: `coffer-changes-${options.run}-${i}` } : { fullReason: problem }),
        granularity: (problem === undefined ? disk.node.dirtyBitmaps.find((b) => b.name === previous)?.granularity : undefined) ?? CHECKPOINT_GRANULARITY,
        // QEMU limits node names to 31 characters: the run's short id, not the whole tag.
        overlayNode: `coffer-fleece-${options.run}-${i}`,
        overlayFile: path.join(options.workDir, `fleece-${i}.qcow2`),
        filterNode: `coffer-cbw-${options.run}-${i}`,
        jobId: `coffer-job-${options.run}-${i}`,
        exportId: `coffer-export-${options.run}-${i}`,
      };
    });
    const capture = new QemuCapture(qmp, captured, nbdSocket, options.workDir, options.guard.vm);
    try {
      for (const c of captured) {
        const target = await openDiskTarget(c.overlayFile, c.disk.size, { format: 'qcow2', overwrite: false });
        await target.skipZeros?.(0, c.disk.size);
        await target.finish();
        await blockdevAdd(qmp, fleecingOverlayOptions(c.overlayNode, { filename: c.overlayFile, backingNode: c.disk.nodeName }));
      }
      const actions: TransactionAction[] = [];
      for (const c of captured) {
        // Persistent bitmaps live in qcow2 files; on other formats a checkpoint lasts until QEMU stops.
        actions.push(bitmapAddAction({ node: c.disk.nodeName, name: c.checkpoint, persistent: c.disk.format === 'qcow2', granularity: CHECKPOINT_GRANULARITY }));
        if (c.changes !== undefined && c.since !== undefined) {
          // The frozen changes keep the previous checkpoint's granularity: nothing is coarsened.
          actions.push(bitmapAddAction({ node: c.disk.nodeName, name: c.changes, disabled: true, granularity: c.granularity }));
          actions.push(bitmapMergeAction({ node: c.disk.nodeName, target: c.changes, bitmaps: [c.since] }));
        }
        actions.push(blockdevBackupAction({ jobId: c.jobId, device: c.disk.nodeName, target: c.overlayNode, sync: 'none', filterNodeName: c.filterNode }));
      }
      try {
        await options.hooks?.beforeCapture?.();
        try {
          await options.quiesce?.freeze();
          capture.watchGuestWrites();
          await transaction(qmp, actions);
          capture.guard = CaptureGuard.start(qmp, {
            vm: options.guard.vm,
            jobIds: captured.map((c) => c.jobId),
            scratch: { dir: options.workDir, minFreeBytes: options.guard.scratchMinFreeBytes },
            release: () => capture.release(),
            ...(options.guard.pollMs !== undefined ? { pollMs: options.guard.pollMs } : {}),
          });
          // A failed write reported in the same read as the transaction's answer came before the guard.
          if (capture.guestFailure !== undefined) capture.guard.fail(capture.guestFailure);
        } finally {
          await options.quiesce?.thaw();
        }
      } finally {
        await options.hooks?.afterCapture?.();
      }
      capture.throwIfBroken();
      await nbdServerStart(qmp, { path: nbdSocket });
      for (const c of captured) {
        await blockExportAdd(qmp, { id: c.exportId, nodeName: c.overlayNode, name: c.disk.name, writable: false, ...(c.changes !== undefined ? { bitmaps: [c.changes] } : {}) });
      }
      capture.starting = false;
      capture.throwIfBroken();
      return capture;
    } catch (error) {
      capture.starting = false;
      await capture.jobsReleased?.catch(() => {});
      // The first failure is the one to tell (a resume that failed is part of capture.failure).
      await capture.end().catch(() => {});
      await capture.dropNewCheckpoints();
      throw capture.failure ?? error;
    }
  }

  private throwIfBroken(): void {
    const failure = this.guard?.failure;
    if (failure !== undefined) throw failure;
  }

  /** The NBD URI of a disk's export. */
  uri(disk: CapturedDisk): string {
    return `nbd+unix:///${encodeURIComponent(disk.disk.name)}?socket=${this.nbdSocket}`;
  }

  /**
   * Why the capture broke while it was read (see capture-guard.ts), if it did; it also says
   * when a VM paused on a failed write could not be resumed.
   */
  get failure(): Error | undefined {
    const failure = this.guard?.failure ?? this.guestFailure;
    const paused = this.stillPaused;
    if (failure === undefined || paused === undefined) return failure;
    return new CofferError(failure.code, `${failure.message}. ${paused.message}`, { cause: failure });
  }

  /** When a VM paused on a failed write could not be resumed: the error that says so (see {@link failure}). */
  get stillPaused(): CofferError | undefined {
    if (this.resumeProblem === undefined) return undefined;
    return new CofferError('E_SOURCE_UNREADABLE', `VM ${this.vm}: it paused on a write that failed during the backup and could not be resumed (${this.resumeProblem}); THE VM IS STILL PAUSED: resume it with QMP "cont" or "virsh resume"`);
  }

  /**
   * Throws if the capture did not hold from its instant until now (the guard saw a break, or
   * a fleecing job no longer runs). Called once every disk is read, before the snapshot is recorded.
   */
  async confirm(): Promise<void> {
    await this.guard?.confirm();
  }

  /**
   * Ends the point-in-time view: exports, NBD server, fleecing jobs, overlays (nodes and files),
   * frozen change bitmaps. Goes on through failures (a step may never have happened) and
   * throws the first one at the end. Idempotent: later calls share the first one's outcome.
   */
  end(): Promise<void> {
    this.guard?.stop();
    this.ending ??= this.endOnce(false);
    return this.ending;
  }

  /**
   * A broken capture: its fleecing jobs go first (the guest's writes are no longer held by a
   * full overlay), then everything else. While {@link start} still runs (thaw, post-capture
   * hook, NBD server and exports), only the jobs go: `start` sees the break and ends the rest
   * itself, so nothing it adds afterwards is left behind.
   */
  private release(): Promise<void> {
    if (this.starting) {
      this.jobsReleased ??= this.cancelJobs().catch(() => {});
      return this.jobsReleased;
    }
    this.ending ??= this.endOnce(true);
    return this.ending;
  }

  /**
   * Force-cancels the fleecing jobs and waits until they are gone (their filters go: the
   * guest writes straight to its disk), then resumes a VM paused on a write they failed.
   */
  private async cancelJobs(): Promise<void> {
    for (const c of this.disks) await this.cancelJob(c).catch(() => {});
    this.jobsLive = false;
    await this.resumeGuest();
  }

  private cancelJob(c: CapturedDisk): Promise<void> {
    return cancelJobAndWait(this.qmp, c.jobId);
  }

  /**
   * Listens for guest writes to a captured disk that fail while the jobs live
   * (BLOCK_IO_ERROR naming a job's filter, which exists only then; or, from just before the
   * transaction until the jobs are cancelled, the disk's node or drive, for a root node above
   * the filter such as a throttle group): each ends the capture at once (see
   * {@link guestWriteFailed}).
   */
  private watchGuestWrites(): void {
    const diskOf = (error: BlockIoError): CapturedDisk | undefined =>
      this.disks.find((c) => error.nodeName === c.filterNode) ??
      (this.jobsLive ? this.disks.find((c) => error.nodeName === c.disk.nodeName || (error.device !== '' && error.device === c.disk.name)) : undefined);
    this.jobsLive = true;
    this.stopWatchingGuest = this.qmp.on(BLOCK_IO_ERROR, (event) => {
      const error = parseBlockIoError(event);
      if (error === undefined || error.operation !== 'write') return;
      const disk = diskOf(error);
      if (disk === undefined) return;
      this.guestErrors.push(error);
      const failure = guestWriteFailed(this.vm, disk.disk.name, error, this.workDir);
      this.guestFailure ??= failure;
      this.guard?.fail(failure);
    });
  }

  /**
   * Once the jobs are gone: a VM that QEMU paused on a write failed during the capture
   * (run state `io-error`) is resumed, and QEMU retries the write. At most once per capture;
   * a failure is kept for {@link failure}.
   */
  private async resumeGuest(): Promise<void> {
    if (this.resumeTried || !this.guestErrors.some((e) => e.action === 'stop')) return;
    this.resumeTried = true;
    try {
      if ((await queryStatus(this.qmp, { timeoutMs: 30_000 })).status === 'io-error') await cont(this.qmp, { timeoutMs: 30_000 });
    } catch (error) {
      this.resumeProblem = (error as Error).message;
    }
  }

  private async endOnce(jobsFirst: boolean): Promise<void> {
    const failures: unknown[] = [];
    const step = async (fn: () => Promise<unknown>): Promise<void> => {
      await fn().catch((error: unknown) => failures.push(error));
    };
    const cancelJobs = async (): Promise<void> => {
      for (const c of this.disks) await step(() => this.cancelJob(c));
      this.jobsLive = false;
      await this.resumeGuest();
      const paused = this.stillPaused;
      if (paused !== undefined) failures.push(paused);
    };
    if (jobsFirst) await cancelJobs();
    const present = await this.presentNodes().catch(() => new Set<string>());
    // A broken capture still has Coffer's NBD clients connected: they are dropped.
    for (const c of this.disks) await step(() => blockExportDel(this.qmp, c.exportId, { timeoutMs: 30_000, ...(jobsFirst ? { mode: 'hard' as const } : {}) }));
    await step(() => nbdServerStop(this.qmp));
    if (!jobsFirst) await cancelJobs();
    for (const c of this.disks) {
      if (present.has(c.overlayNode)) await step(() => blockdevDel(this.qmp, c.overlayNode));
      await step(() => fs.rm(c.overlayFile, { force: true }));
      if (c.changes !== undefined) await step(() => removeDirtyBitmap(this.qmp, { node: c.disk.nodeName, name: c.changes as string }));
    }
    await fs.rm(this.nbdSocket, { force: true }).catch(() => {});
    this.stopWatchingGuest?.();
    // Failures of steps that never happened (no such export, job or bitmap) are expected.
    const real = failures.filter((error) => !/not found|does not exist|No export|no block job|cannot find|could not find|not running/i.test(String((error as Error)?.message)));
    if (real.length > 0) throw real[0];
  }

  /** A failed backup: remove the checkpoints this capture added (the previous ones still cover everything). */
  async dropNewCheckpoints(): Promise<void> {
    for (const c of this.disks) await removeDirtyBitmap(this.qmp, { node: c.disk.nodeName, name: c.checkpoint }).catch(() => {});
  }

  /** A recorded backup: its checkpoints are the reference now; every older Coffer checkpoint goes. */
  async dropOldCheckpoints(): Promise<void> {
    const nodes = await queryNamedBlockNodes(this.qmp);
    for (const c of this.disks) {
      const node = nodes.find((n) => n.nodeName === c.disk.nodeName);
      for (const bitmap of node?.dirtyBitmaps ?? []) {
        const name = bitmap.name;
        if (name === undefined || name === c.checkpoint || !name.startsWith(CHECKPOINT_PREFIX) || bitmap.busy) continue;
        await removeDirtyBitmap(this.qmp, { node: c.disk.nodeName, name });
      }
    }
  }

  /** Where the capture keeps its files. */
  get directory(): string {
    return this.workDir;
  }

  private async presentNodes(): Promise<Set<string>> {
    return new Set((await queryNamedBlockNodes(this.qmp)).map((n) => n.nodeName ?? ''));
  }
}

/**
 * What a Coffer run killed mid-way (kill -9, a crash) left in QEMU: its exports, the NBD
 * server they were on, its fleecing jobs and overlay nodes, its frozen change bitmaps. Its
 * new checkpoint stays (harmless: the previous one still records, and the next recorded
 * backup drops both). A VM paused on an I/O error while its fleecing jobs lived is resumed. Another tool's exports, jobs and bitmaps are never touched; a server
 * with other exports is left running. Run it before listing the disks: a fleecing job puts a
 * filter node above the disk's node while it lives.
 */
export async function removeStaleCapture(qmp: QmpClient): Promise<void> {
  const exports = await queryBlockExports(qmp);
  const stale = exports.filter((e) => e.id.startsWith('coffer-export-'));
  for (const e of stale) await blockExportDel(qmp, e.id, { timeoutMs: 30_000 });
  if (stale.length > 0 && stale.length === exports.length) await nbdServerStop(qmp).catch(() => {});
  let staleJobs = 0;
  for (const job of await queryBlockJobs(qmp)) {
    if (!job.id.startsWith('coffer-job-')) continue;
    await cancelJobAndWait(qmp, job.id);
    staleJobs += 1;
  }
  // A VM paused on a write that a killed run's fleecing filter failed (its scratch full): the
  // write is retried on the disk alone. Were the error the disk's own, QEMU pauses it again.
  if (staleJobs > 0 && (await queryStatus(qmp)).status === 'io-error') await cont(qmp);
  for (const node of await queryNamedBlockNodes(qmp)) {
    if (node.nodeName?.startsWith('coffer-fleece-')) await blockdevDel(qmp, node.nodeName).catch(() => {});
    for (const bitmap of node.dirtyBitmaps) {
      if (bitmap.name?.startsWith('coffer-changes-') && node.nodeName !== undefined) await removeDirtyBitmap(qmp, { node: node.nodeName, name: bitmap.name }).catch(() => {});
    }
  }
}

/** Force-cancels a block job and waits for its BLOCK_JOB_CANCELLED (its filter is gone then). */
async function cancelJobAndWait(qmp: QmpClient, jobId: string): Promise<void> {
  const cancelled = qmp.waitForEvent('BLOCK_JOB_CANCELLED', (e) => e.data['device'] === jobId, { timeoutMs: 30_000 });
  try {
    await blockJobCancel(qmp, jobId, { force: true });
  } catch (error) {
    void cancelled.catch(() => {});
    throw error;
  }
  await cancelled;
}

/**
 * The error of a capture ended by a guest write that failed on a captured disk: E_NO_SPACE
 * when it was ENOSPC (the scratch filesystem, or the disk's own storage, is full), else
 * E_SOURCE_UNREADABLE; it says what QEMU did with the write.
 */
export function guestWriteFailed(vm: string, disk: string, error: BlockIoError, scratchDir: string): CofferError {
  const what = `VM ${vm}: a write of the VM to its disk ${disk} failed while the backup held its point-in-time view (QEMU: ${error.reason})`;
  const outcome = {
    stop: 'QEMU paused the VM on it (the drive\'s werror policy); Coffer ended the view at once and resumes the VM, and QEMU retries the write on the disk alone',
    report: 'the guest was told its write failed (werror=report): check the guest\'s filesystems and applications',
    ignore: 'QEMU ignored the error (werror=ignore): that write is lost, check the guest\'s filesystems',
  }[error.action];
  if (error.nospace) {
    return new CofferError('E_NO_SPACE', `${what}: ${outcome}. QEMU copies the old data of each overwritten block to the scratch folder ${scratchDir} before the write lands, and that filesystem (or the disk's own storage) was full before Coffer's watch saw it. Nothing of this backup is recorded; give --scratch-dir a larger filesystem, or raise --scratch-min-free`);
  }
  return new CofferError('E_SOURCE_UNREADABLE', `${what}: ${outcome}. Nothing of this backup is recorded`);
}

/** `E_SOURCE_UNREADABLE` for a capture that could not be set up, naming the step's error. */
export function captureFailed(vm: string, error: unknown): CofferError {
  if (error instanceof CofferError && error.code !== 'E_QMP_ERROR') return error;
  return new CofferError('E_SOURCE_UNREADABLE', `VM ${vm}: the point-in-time capture failed: ${(error as Error).message}`, { cause: error });
}
