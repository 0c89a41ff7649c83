/**
 * Block jobs: `blockdev-backup` (started alone or in a transaction), cancelling, and the two
 * job queries.
 *
 * QAPI facts relied on (qapi/block-core.json and qapi/job.json, checked against QEMU 7.2):
 * - `blockdev-backup {job-id?, device, target, sync, bitmap?, bitmap-mode?, speed?,
 *   on-source-error?, on-target-error?, auto-finalize?, auto-dismiss?, filter-node-name?}`;
 *   `device` and `target` are node names; `job-id` defaults to the device name. `sync`: `full`,
 *   `top`, `none` (copy only the old data of clusters the guest overwrites: fleecing; such a
 *   job runs until cancelled), `incremental`/`bitmap` (with `bitmap`).
 * - `block-job-cancel {device: JOB-ID, force?}`. A cancelled job emits BLOCK_JOB_CANCELLED
 *   `{type, device: JOB-ID, len, offset, speed}`; a finished one BLOCK_JOB_COMPLETED (same
 *   plus `error?`). Every status change emits JOB_STATUS_CHANGE `{id, status}`. With
 *   `auto-dismiss: true` (the default) the job disappears once concluded; otherwise
 *   `job-dismiss {id}` removes it.
 * - `query-block-jobs` returns `[BlockJobInfo]`: `type`, `device` (the job id), `len`,
 *   `offset`, `busy`, `paused`, `speed`, `ready`, `status` (JobStatus), `error?`.
 * - `query-jobs` returns `[JobInfo]`: `id`, `type`, `status`, `current-progress`,
 *   `total-progress`, `error?`. JobStatus: undefined, created, running, paused, ready,
 *   standby, waiting, pending, aborting, concluded, null.
 */
import type { QmpClient, QmpCallOptions } from './qmp-client.js';
import type { TransactionAction } from './transaction.js';
import { arrayOf, asBoolean, asInteger, asObject, asString, optString } from './json-shape.js';

/** What QEMU does on an I/O error in a job (QAPI `BlockdevOnError`). */
export type BlockdevOnError = 'report' | 'ignore' | 'enospc' | 'stop' | 'auto';

/** Arguments of `blockdev-backup`, in camelCase. */
export interface BlockdevBackupArgs {
  jobId?: string;
  /** The source node. */
  device: string;
  /** The target node. */
  target: string;
  sync: 'full' | 'top' | 'none' | 'incremental' | 'bitmap';
  bitmap?: string;
  bitmapMode?: 'on-success' | 'never' | 'always';
  speed?: number;
  onSourceError?: BlockdevOnError;
  onTargetError?: BlockdevOnError;
  autoFinalize?: boolean;
  autoDismiss?: boolean;
  filterNodeName?: string;
}

const BACKUP_MEMBERS: Record<keyof BlockdevBackupArgs, string> = {
  jobId: 'job-id', device: 'device', target: 'target', sync: 'sync', bitmap: 'bitmap', bitmapMode: 'bitmap-mode',
  speed: 'speed', onSourceError: 'on-source-error', onTargetError: 'on-target-error', autoFinalize: 'auto-finalize',
  autoDismiss: 'auto-dismiss', filterNodeName: 'filter-node-name',
};

/** The `blockdev-backup` transaction action. */
export function blockdevBackupAction(args: BlockdevBackupArgs): TransactionAction {
  const data: Record<string, unknown> = {};
  for (const [key, member] of Object.entries(BACKUP_MEMBERS)) {
    const value = args[key as keyof BlockdevBackupArgs];
    if (value !== undefined) data[member] = value;
  }
  return { type: 'blockdev-backup', data };
}

/** `blockdev-backup` as a command of its own. */
export async function blockdevBackup(qmp: QmpClient, args: BlockdevBackupArgs, options?: QmpCallOptions): Promise<void> {
  const action = blockdevBackupAction(args);
  await qmp.execute(action.type, action.data, options);
}

/** `block-job-cancel`; the job ends later, with BLOCK_JOB_CANCELLED (wait for it). */
export async function blockJobCancel(qmp: QmpClient, jobId: string, options: QmpCallOptions & { force?: boolean } = {}): Promise<void> {
  const { force, ...call } = options;
  await qmp.execute('block-job-cancel', force === undefined ? { device: jobId } : { device: jobId, force }, call);
}

/** `job-dismiss`: removes a concluded job that was started with `autoDismiss: false`. */
export async function jobDismiss(qmp: QmpClient, jobId: string, options?: QmpCallOptions): Promise<void> {
  await qmp.execute('job-dismiss', { id: jobId }, options);
}

/** One block job, from `query-block-jobs`. */
export interface BlockJobInfo {
  /** The job id (QAPI calls it `device`). */
  id: string;
  type: string;
  len: number;
  offset: number;
  busy: boolean;
  paused: boolean;
  ready: boolean;
  status: string;
  error: string | undefined;
}

/** `query-block-jobs`. */
export async function queryBlockJobs(qmp: QmpClient, options?: QmpCallOptions): Promise<BlockJobInfo[]> {
  return arrayOf(await qmp.execute('query-block-jobs', undefined, options), 'query-block-jobs', (item, where) => {
    const j = asObject(item, where);
    return {
      id: asString(j['device'], `${where}.device`),
      type: asString(j['type'], `${where}.type`),
      len: asInteger(j['len'], `${where}.len`),
      offset: asInteger(j['offset'], `${where}.offset`),
      busy: asBoolean(j['busy'], `${where}.busy`),
      paused: asBoolean(j['paused'], `${where}.paused`),
      ready: asBoolean(j['ready'], `${where}.ready`),
      status: asString(j['status'], `${where}.status`),
      error: optString(j['error'], `${where}.error`),
    };
  });
}

/** One job of any kind, from `query-jobs`. */
export interface JobInfo {
  id: string;
  type: string;
  status: string;
  currentProgress: number;
  totalProgress: number;
  error: string | undefined;
}

/** `query-jobs`. */
export async function queryJobs(qmp: QmpClient, options?: QmpCallOptions): Promise<JobInfo[]> {
  return arrayOf(await qmp.execute('query-jobs', undefined, options), 'query-jobs', (item, where) => {
    const j = asObject(item, where);
    return {
      id: asString(j['id'], `${where}.id`),
      type: asString(j['type'], `${where}.type`),
      status: asString(j['status'], `${where}.status`),
      currentProgress: asInteger(j['current-progress'], `${where}.current-progress`),
      totalProgress: asInteger(j['total-progress'], `${where}.total-progress`),
      error: optString(j['error'], `${where}.error`),
    };
  });
}
