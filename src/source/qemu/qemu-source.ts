import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeFolders } from '../../native/index.js';
import { NbdBlockDevice } from '../../nbd/index.js';
import { describeVm, QmpClient, VM_DESCRIPTION_FORMAT, type QmpAddress } from '../../qmp/index.js';
import { guardedDevice } from '../guarded-device.js';
import { checkScratchSpace } from '../scratch-space.js';
import type { SourceDisk, VmSource } from '../vm-source.js';
import { captureFailed, QemuCapture, removeStaleCapture, type CaptureHooks } from './qemu-capture.js';
import { CHECKPOINT_GRANULARITY, listQemuDisks } from './qemu-disks.js';
import { GuestFreeze, type GuestFreezeOptions } from './guest-freeze.js';
import { qemuCommandLine } from './qemu-process.js';

/** Options of {@link openQemuSource}. */
export interface QemuSourceOptions {
  /** The VM's name in the repository. */
  vm: string;
  /** QEMU's QMP monitor: a unix socket path, or host and port. */
  qmp: QmpAddress;
  /**
   * The checkpoint each disk's last recorded backup left (disk name → bitmap name), from
   * the parent snapshot: disks whose checkpoint is usable are read incrementally.
   */
  previous?: ReadonlyMap<string, string>;
  /**
   * The folder in which this VM's scratch folder is made (emptied first: what a killed run
   * left there goes): the fleecing overlays and the NBD socket live there while the backup
   * runs, and the overlays grow with what the VM writes meanwhile. QEMU must be able to read
   * and write there. Default: the system's temporary folder.
   */
  scratchDir?: string;
  /**
   * The free space the capture keeps in the scratch filesystem: it must have twice that
   * free to start, and the capture ends (the backup fails, the VM's writes go on) when it
   * falls below (see capture-guard.ts). Default: scratch-space.ts's.
   */
  scratchMinFreeBytes?: number;
  /** How often the scratch filesystem is looked at, in ms (tests). */
  scratchPollMs?: number;
  /** The exact folder to use, used as is and never emptied (tests); overrides `scratchDir`. */
  workDir?: string;
  signal?: AbortSignal;
  clock?: () => Date;
  /** Run just before and right after the instant of capture (see {@link CaptureHooks}). */
  hooks?: CaptureHooks;
  /**
   * Freezing the guest's filesystems through its QEMU guest agent around the instant (see
   * {@link GuestFreeze}): the agent's socket (default: found through QMP), `freeze: false`,
   * deadlines, and the events to show. The snapshot records the consistency reached.
   */
  guestAgent?: Omit<GuestFreezeOptions, 'signal'>;
}

/**
 * A running QEMU VM as a backup source: every disk captured at one instant (see
 * {@link QemuCapture}), read over NBD from QEMU's own export, with the dirty bitmap since the
 * previous checkpoint where one is usable (extents then say `changed`), and the VM's
 * definition as QMP describes it. With a guest agent, the guest's filesystems are frozen just
 * around the instant ({@link GuestFreeze}); `consistency` says what was reached. `commit()` makes this capture's checkpoints the reference;
 * `close()` ends the capture (and, without a commit, drops its new checkpoints: the previous
 * ones still cover every change).
 */
export async function openQemuSource(options: QemuSourceOptions): Promise<VmSource> {
  const qmp = await QmpClient.connect(options.qmp, options.signal === undefined ? {} : { signal: options.signal });
  const ownDir = options.workDir === undefined;
  let capture: QemuCapture | undefined;
  let freezer: GuestFreeze | undefined;
  const devices: NbdBlockDevice[] = [];
  let workDir: string | undefined;
  /** Ends the NBD connections and the capture, then `beforeDisconnect`, then QMP and the folder. */
  const cleanUp = async (beforeDisconnect?: () => Promise<void>): Promise<void> => {
    for (const device of devices) await device.close().catch(() => {});
    await freezer?.close().catch(() => {});
    await capture?.end().catch(() => {});
    await beforeDisconnect?.();
    await qmp.close();
    if (ownDir && workDir !== undefined) await fs.rm(workDir, { recursive: true, force: true }).catch(() => {});
  };
  try {
    const description = await describeVm(qmp);
    if ('path' in options.qmp) {
      const found = await qemuCommandLine(options.qmp.path);
      if ('argv' in found) description.commandLine = found;
      else description.commandLineUnavailable = found.unavailable;
    }
    const definition = Buffer.from(JSON.stringify(description));
    await removeStaleCapture(qmp).catch((error: unknown) => {
      throw captureFailed(options.vm, error);
    });
    // Names the previous backup used are kept (a disk's incrementals and history follow its name).
    const disks = await listQemuDisks(qmp, new Set(options.previous?.keys()));
    // One folder per VM, so a run killed mid-way leaves nothing the next run does not clear.
    workDir = options.workDir ?? path.join(options.scratchDir ?? os.tmpdir(), `coffer-live-${createHash('sha256').update(`${options.vm}\0${JSON.stringify(options.qmp)}`).digest('hex').slice(0, 16)}`);
    if (ownDir) await fs.rm(workDir, { recursive: true, force: true });
    await makeFolders(workDir, 0o700);
    const scratchMinFreeBytes = await checkScratchSpace(workDir, options.vm, options.scratchMinFreeBytes);
    const now = (options.clock ?? (() => new Date()))();
    const run = randomBytes(3).toString('hex');
    const tag = `${now.toISOString().replace(/[-:.]/g, '').replace('T', 't').toLowerCase()}-${run}`;
    freezer = await GuestFreeze.prepare(qmp, { ...options.guestAgent, ...(options.signal ? { signal: options.signal } : {}) });
    capture = await QemuCapture.start(qmp, disks, { previous: options.previous ?? new Map(), workDir, tag, run, quiesce: freezer,
      guard: { vm: options.vm, scratchMinFreeBytes, ...(options.scratchPollMs !== undefined ? { pollMs: options.scratchPollMs } : {}) },
      ...(options.hooks ? { hooks: options.hooks } : {}),
    }).catch((error: unknown) => {
      throw captureFailed(options.vm, error);
    });
    const consistency = freezer.consistency;
    await freezer.close();
    const sourceDisks: SourceDisk[] = [];
    const live = capture;
    for (const c of capture.disks) {
      const device = await NbdBlockDevice.open(capture.uri(c), c.changes === undefined ? {} : { dirtyBitmap: c.changes });
      devices.push(device);
      sourceDisks.push({
        name: c.disk.name,
        format: `qemu-${c.disk.format}`,
        location: `qemu:${c.disk.nodeName}:${c.disk.filename}`,
        device: guardedDevice(device, () => live.failure),
        changeTracking: c.since !== undefined ? { since: c.since } : { unavailable: c.fullReason ?? 'no checkpoint' },
        checkpoint: c.checkpoint,
        changeGranularity: CHECKPOINT_GRANULARITY,
      });
    }
    let committed = false;
    let closed = false;
    return {
      vm: options.vm,
      definition: { format: VM_DESCRIPTION_FORMAT, data: definition },
      disks: sourceDisks,
      consistency,
      confirm: () => live.confirm(),
      async commit() {
        committed = true;
        for (const device of devices) await device.close().catch(() => {});
        await live.end();
        await live.dropOldCheckpoints();
      },
      async close() {
        if (closed) return;
        closed = true;
        await cleanUp(committed ? undefined : () => live.dropNewCheckpoints());
        const paused = live.stillPaused; // the one failure of the teardown that must be heard
        if (paused !== undefined) throw paused;
      },
    };
  } catch (error) {
    await cleanUp(async () => capture?.dropNewCheckpoints()); // this capture never reached a snapshot
    throw error;
  }
}

