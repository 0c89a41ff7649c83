/**
 * Moves a running VM off an NBD export onto local images while it runs: the end of instant
 * recovery. For every disk whose data comes from NBD (nbd-backed-disks.ts):
 * 1. a new image `DIR/<disk>.qcow2|raw` is made by QEMU itself (`blockdev-create`) and added
 *    as a node without a backing file;
 * 2. `blockdev-mirror sync=full` from the disk's top node copies the whole chain (overlay
 *    and export) into it, then keeps mirroring the guest's writes; started with
 *    `auto-finalize: false` so that completing changes nothing yet;
 * 3. once EVERY job is ready (BLOCK_JOB_READY; progress reported, and a deadline on lack of
 *    progress), `job-complete` each and wait until each is `pending`; only then `job-finalize`
 *    each, which pivots the devices onto the local images;
 * 4. the old nodes (the overlay, the nbd node) are removed with `blockdev-del` where the
 *    monitor owns them (nodes made by `-drive` go by themselves), so QEMU closes its NBD
 *    connections and the export can end.
 * Any failure before step 3's finalize cancels every job (`block-job-cancel force`), removes
 * the new nodes and files, and leaves the VM exactly on the export: never half-moved in
 * silence. A failure during finalize (not seen in practice) is reported naming which disks
 * moved and which did not.
 */
import { rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CofferError, isCofferError } from '../errors/index.js';
import { makeFolders } from '../native/index.js';
import {
  blockdevAdd, blockdevCreate, blockdevDel, blockdevMirror, blockJobCancel, jobComplete, jobDismiss, jobFinalize,
  queryBlock, queryJobs, queryNamedBlockNodes, QmpClient,
} from '../qmp/index.js';
import { waitForJobs } from './job-waiter.js';
import { isNbdLayer, nbdBackedDisks, type NbdBackedDisk } from './nbd-backed-disks.js';

/** Defaults, each with its reason. */
export const MOVE_DEFAULTS = {
  /** A mirror of a disk served from a repository makes steady progress; a minute without any means a dead peer. */
  stallTimeoutMs: 60_000,
  /** Four polls a second: progress is smooth and QMP hardly notices. */
  pollIntervalMs: 250,
} as const;

/** Options of {@link moveToLocalStorage}. */
export interface MoveOptions {
  /** The folder for the new images, as QEMU sees it (same host); created if missing. */
  dir: string;
  /** Default qcow2. */
  format?: 'qcow2' | 'raw';
  stallTimeoutMs?: number;
  pollIntervalMs?: number;
  signal?: AbortSignal;
  onProgress?: (progress: { disk: string; bytesDone: number; bytesTotal: number; ready: boolean }) => void;
}

/** One moved disk. */
export interface MovedDisk {
  disk: string;
  size: number;
  /** The NBD layers it read from. */
  from: string[];
  /** The local image it runs on now. */
  path: string;
  /** Its new node name. */
  node: string;
}

/** What {@link moveToLocalStorage} did. */
export interface MoveReport {
  disks: MovedDisk[];
  /** NBD file names QEMU still has open after the move (empty: every export can end). */
  stillOpen: string[];
}

interface Plan extends NbdBackedDisk {
  path: string;
  node: string;
  fileNode: string;
  jobId: string;
}

/** Moves every NBD-backed disk of the VM behind `qmp` onto local images in `options.dir`. */
export async function moveToLocalStorage(qmp: QmpClient, options: MoveOptions): Promise<MoveReport> {
  const format = options.format ?? 'qcow2';
  const dir = resolve(options.dir);
  const wait = {
    stallTimeoutMs: options.stallTimeoutMs ?? MOVE_DEFAULTS.stallTimeoutMs,
    pollIntervalMs: options.pollIntervalMs ?? MOVE_DEFAULTS.pollIntervalMs,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const found = nbdBackedDisks(await queryBlock(qmp));
  if (found.length === 0) throw new CofferError('E_USAGE', `no disk of the VM at ${qmp.peer} reads from an NBD export: nothing to move`);
  const tag = Date.now().toString(36);
  const plans: Plan[] = found.map((d, i) => ({
    ...d,
    path: join(dir, `${d.name.replace(/[^A-Za-z0-9._-]/g, '_')}.${format}`),
    node: `coffer-local-${tag}-${i}`,
    fileNode: `coffer-local-${tag}-${i}-file`,
    jobId: `coffer-move-${tag}-${i}`,
  }));
  if (new Set(plans.map((p) => p.path)).size !== plans.length) throw new CofferError('E_USAGE', `two disks of the VM would get the same file name (${plans.map((p) => p.name).join(', ')})`);
  await makeFolders(dir);
  for (const p of plans) {
    if (await stat(p.path).then(() => true, () => false)) throw new CofferError('E_TARGET_UNWRITABLE', `${p.path} exists: move it away or choose another --to`, { subject: { path: p.path } });
  }

  const created: Plan[] = [];
  const started: Plan[] = [];
  try {
    for (const p of plans) {
      created.push(p);
      await createImage(qmp, p, format, wait);
    }
    for (const p of plans) {
      await blockdevMirror(qmp, { jobId: p.jobId, device: p.topNode, target: p.node, sync: 'full', autoFinalize: false, autoDismiss: false });
      started.push(p);
    }
    const ids = plans.map((p) => p.jobId);
    const report = (jobs: Map<string, { currentProgress: number; totalProgress: number; status: string }>): void => {
      for (const p of plans) {
        const j = jobs.get(p.jobId);
        if (j) options.onProgress?.({ disk: p.name, bytesDone: j.currentProgress, bytesTotal: j.totalProgress, ready: j.status === 'ready' });
      }
    };
    await waitForJobs(qmp, ids, (j) => j.status === 'ready', { ...wait, what: 'copying the disks to local storage', onPoll: report });
    for (const p of plans) await jobComplete(qmp, p.jobId);
    await waitForJobs(qmp, ids, (j) => j.status === 'pending', { ...wait, what: 'completing the mirrors' });
  } catch (err) {
    await rollBack(qmp, started, created, wait.pollIntervalMs);
    if (isCofferError(err)) throw new CofferError(err.code, `${err.message}; the VM still runs on the export, nothing was moved`, { subject: err.subject, cause: err });
    throw err;
  }

  const moved: Plan[] = [];
  try {
    for (const p of plans) {
      await jobFinalize(qmp, p.jobId);
      moved.push(p);
    }
    await waitForJobs(qmp, plans.map((p) => p.jobId), (j) => j.status === 'concluded', { ...wait, what: 'switching the disks to local storage' });
  } catch (err) {
    const left = plans.filter((p) => !moved.includes(p)).map((p) => p.name);
    throw new CofferError('E_QMP_ERROR', `the move failed while switching disks: ${moved.map((p) => p.name).join(', ') || 'none'} may run on local storage, ${left.join(', ') || 'none'} still on the export (check query-block): ${(err as Error).message}`, { cause: err });
  }
  for (const p of plans) await jobDismiss(qmp, p.jobId).catch(() => undefined);
  const drives = await queryBlock(qmp);
  for (const p of plans) {
    const now = drives.find((d) => d.inserted?.nodeName === p.node);
    if (now === undefined) throw new CofferError('E_QMP_ERROR', `disk ${p.name}: the mirror finished but the device is not on ${p.path} (check query-block)`);
  }
  const stillOpen = await releaseOldNodes(qmp, plans);
  return { disks: plans.map((p) => ({ disk: p.name, size: p.size, from: p.nbdFilenames, path: p.path, node: p.node })), stillOpen };
}

/** Makes the image with QEMU's own `blockdev-create` and adds it as `p.node`. */
async function createImage(qmp: QmpClient, p: Plan, format: 'qcow2' | 'raw', wait: { stallTimeoutMs: number; pollIntervalMs: number; signal?: AbortSignal }): Promise<void> {
  const run = async (jobId: string, createOptions: Record<string, unknown>): Promise<void> => {
    await blockdevCreate(qmp, jobId, createOptions);
    try {
      await waitForJobs(qmp, [jobId], (j) => j.status === 'concluded', { ...wait, what: `creating ${p.path}` });
    } finally {
      await jobDismiss(qmp, jobId).catch(() => undefined);
    }
  };
  await run(`${p.jobId}-file`, { driver: 'file', filename: p.path, size: format === 'raw' ? p.size : 0 });
  await blockdevAdd(qmp, { driver: 'file', 'node-name': p.fileNode, filename: p.path });
  if (format === 'qcow2') await run(`${p.jobId}-qcow2`, { driver: 'qcow2', file: p.fileNode, size: p.size });
  await blockdevAdd(qmp, { driver: format, 'node-name': p.node, file: p.fileNode });
}

/** Cancels the mirrors and removes what was made; the VM stays on its old nodes. Best effort. */
async function rollBack(qmp: QmpClient, started: Plan[], created: Plan[], pollIntervalMs: number): Promise<void> {
  for (const p of started) await blockJobCancel(qmp, p.jobId, { force: true }).catch(() => undefined);
  const deadline = Date.now() + 30_000;
  while (started.length > 0 && Date.now() < deadline) {
    const jobs = await queryJobs(qmp).catch(() => []);
    const open = jobs.filter((j) => started.some((p) => p.jobId === j.id));
    for (const j of open) if (j.status === 'concluded') await jobDismiss(qmp, j.id).catch(() => undefined);
    if (open.every((j) => j.status === 'concluded')) break;
    await new Promise((r) => setTimeout(r, pollIntervalMs));
  }
  for (const p of created) {
    await blockdevDel(qmp, p.node).catch(() => undefined);
    await blockdevDel(qmp, p.fileNode).catch(() => undefined);
    await rm(p.path, { force: true }).catch(() => undefined);
  }
}

/**
 * Removes the nodes of the old chains (the overlays and the nbd nodes) that the monitor owns,
 * parents before children, until nothing more goes; returns the NBD file names still open.
 */
async function releaseOldNodes(qmp: QmpClient, plans: Plan[]): Promise<string[]> {
  const oldFiles = new Set(plans.flatMap((p) => p.chainFilenames));
  const newNodes = new Set(plans.flatMap((p) => [p.node, p.fileNode]));
  for (let round = 0; round < 16; round++) {
    const nodes = (await queryNamedBlockNodes(qmp)).filter((n) => n.nodeName !== undefined && !newNodes.has(n.nodeName) && oldFiles.has(n.filename));
    let progress = false;
    for (const n of nodes) {
      try {
        await blockdevDel(qmp, n.nodeName as string);
        progress = true;
      } catch {
        // in use by a parent still there, or not the monitor's: retried next round
      }
    }
    if (!progress) break;
  }
  const left = await queryNamedBlockNodes(qmp);
  return [...new Set(left.filter((n) => isNbdLayer({ filename: n.filename, format: n.driver }) && plans.some((p) => p.nbdFilenames.includes(n.filename))).map((n) => n.filename))];
}

/** {@link moveToLocalStorage} over a connection of its own to the QMP monitor at `address`, closed after. */
export async function moveVmToLocalStorage(address: { path: string } | { host: string; port: number }, options: MoveOptions): Promise<MoveReport> {
  const qmp = await QmpClient.connect(address);
  try {
    return await moveToLocalStorage(qmp, options);
  } finally {
    await qmp.close();
  }
}
