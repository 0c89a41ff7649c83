/**
 * Moving a running disk: `blockdev-create` (a new image, as a job), `blockdev-mirror` and the
 * job verbs that end it (`job-complete`, `job-finalize`).
 *
 * QAPI facts relied on (qapi/block-core.json and qapi/job.json, checked against QEMU 7.2):
 * - `blockdev-create {job-id, options: BlockdevCreateOptions}` starts a job of type `create`
 *   that concludes on its own (query-jobs `status: concluded`, `error?`); it is never
 *   auto-dismissed: `job-dismiss` it. Options by driver: `file {filename, size}` (makes the
 *   file, `size` 0 for a format to fill), `qcow2 {file: NODE, size}`, `raw` has none (create
 *   the file at its size instead).
 * - `blockdev-mirror {job-id, device, target, sync, replaces?, speed?, granularity?,
 *   buf-size?, on-source-error?, on-target-error?, filter-node-name?, copy-mode?,
 *   auto-finalize?, auto-dismiss?}`: `device` and `target` are node names; `sync: full` copies
 *   the whole chain under `device` so the target stands alone. Once source and target are in
 *   step the job emits BLOCK_JOB_READY and shows `ready: true`; it then mirrors every guest
 *   write until `job-complete {id}` (pivot: the guest's device moves to the target) or
 *   `block-job-cancel` (the guest stays on the source).
 * - With `auto-finalize: false`, a completed job waits in status `pending` and nothing has
 *   changed in the graph yet; `job-finalize {id}` then pivots. This lets several disks be
 *   brought to `pending` first and pivoted only if all got there.
 */
import type { QmpClient, QmpCallOptions } from './qmp-client.js';
import type { BlockdevOnError } from './block-jobs.js';

/** `blockdev-create` (a job: wait for it to conclude, then `job-dismiss`). */
export async function blockdevCreate(qmp: QmpClient, jobId: string, options: Record<string, unknown>, call?: QmpCallOptions): Promise<void> {
  await qmp.execute('blockdev-create', { 'job-id': jobId, options }, call);
}

/** Arguments of `blockdev-mirror`, in camelCase. */
export interface BlockdevMirrorArgs {
  jobId: string;
  /** The node the guest's device is attached to (the top of its chain). */
  device: string;
  /** The new node (already added, without a backing file for `sync: full`). */
  target: string;
  sync: 'full' | 'top' | 'none';
  speed?: number;
  onSourceError?: BlockdevOnError;
  onTargetError?: BlockdevOnError;
  autoFinalize?: boolean;
  autoDismiss?: boolean;
}

/** `blockdev-mirror`. */
export async function blockdevMirror(qmp: QmpClient, args: BlockdevMirrorArgs, call?: QmpCallOptions): Promise<void> {
  const data: Record<string, unknown> = { 'job-id': args.jobId, device: args.device, target: args.target, sync: args.sync };
  if (args.speed !== undefined) data['speed'] = args.speed;
  if (args.onSourceError !== undefined) data['on-source-error'] = args.onSourceError;
  if (args.onTargetError !== undefined) data['on-target-error'] = args.onTargetError;
  if (args.autoFinalize !== undefined) data['auto-finalize'] = args.autoFinalize;
  if (args.autoDismiss !== undefined) data['auto-dismiss'] = args.autoDismiss;
  await qmp.execute('blockdev-mirror', data, call);
}

/** `job-complete`: a ready mirror pivots (or, with auto-finalize off, goes to `pending`). */
export async function jobComplete(qmp: QmpClient, jobId: string, call?: QmpCallOptions): Promise<void> {
  await qmp.execute('job-complete', { id: jobId }, call);
}

/** `job-finalize`: a `pending` job commits its change to the graph. */
export async function jobFinalize(qmp: QmpClient, jobId: string, call?: QmpCallOptions): Promise<void> {
  await qmp.execute('job-finalize', { id: jobId }, call);
}
