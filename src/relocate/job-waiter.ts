/**
 * Waiting for QEMU jobs with a deadline on lack of progress: `query-jobs` is polled, and the
 * wait fails when no job of the set moved (progress or status) for `stallTimeoutMs`, when a
 * job reports an error or ends early, or when the caller aborts. Polling rather than events:
 * a missed event cannot hang it, and the progress figures come with each poll.
 */
import { CofferError } from '../errors/index.js';
import { queryJobs, type JobInfo, type QmpClient } from '../qmp/index.js';

/** Options of {@link waitForJobs}. */
export interface JobWaitOptions {
  /** Fail when nothing moved for this long. */
  stallTimeoutMs: number;
  pollIntervalMs: number;
  signal?: AbortSignal;
  /** Called with the jobs after every poll. */
  onPoll?: (jobs: Map<string, JobInfo>) => void;
  /** What the jobs do, for messages (`mirroring disk0`). */
  what: string;
}

/**
 * Polls until `done(job)` holds for every job in `ids`. A job that is missing, concluded
 * without `done` holding, or carries an error fails the wait with E_QMP_ERROR naming it.
 */
export async function waitForJobs(qmp: QmpClient, ids: readonly string[], done: (job: JobInfo) => boolean, options: JobWaitOptions): Promise<Map<string, JobInfo>> {
  let lastChange = Date.now();
  let previous = '';
  for (;;) {
    if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', `interrupted while ${options.what}`);
    const all = await queryJobs(qmp);
    const jobs = new Map<string, JobInfo>();
    for (const id of ids) {
      const job = all.find((j) => j.id === id);
      if (job === undefined) throw new CofferError('E_QMP_ERROR', `job ${id} disappeared while ${options.what}`);
      if (job.error !== undefined) throw new CofferError('E_QMP_ERROR', `job ${id} failed while ${options.what}: ${job.error}`);
      jobs.set(id, job);
    }
    options.onPoll?.(jobs);
    if ([...jobs.values()].every(done)) return jobs;
    const concluded = [...jobs.values()].find((j) => j.status === 'concluded' || j.status === 'aborting');
    if (concluded) throw new CofferError('E_QMP_ERROR', `job ${concluded.id} ended (${concluded.status}) while ${options.what}`);
    const state = JSON.stringify([...jobs.values()].map((j) => [j.status, j.currentProgress, j.totalProgress]));
    if (state !== previous) {
      previous = state;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > options.stallTimeoutMs) {
      throw new CofferError('E_TIMEOUT', `no progress for ${Math.round(options.stallTimeoutMs / 1000)} s while ${options.what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollIntervalMs));
  }
}
