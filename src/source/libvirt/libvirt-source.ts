import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CofferError } from '../../errors/index.js';
import { NbdBlockDevice } from '../../nbd/index.js';
import { guardedDevice } from '../guarded-device.js';
import { checkScratchSpace, ScratchWatch } from '../scratch-space.js';
import type { CaptureHooks } from '../qemu/qemu-capture.js';
import type { SourceDisk, VmSource } from '../vm-source.js';
import { LIBVIRT_CHECKPOINT_PREFIX, LibvirtBackup, removeStaleBackup } from './libvirt-backup.js';
import { LibvirtFreeze } from './libvirt-freeze.js';
import { parseDacOwner, parseDomainDisks, type LibvirtDisk } from './libvirt-documents.js';
import { Virsh } from './virsh.js';

/** The stored definition's format: the domain's inactive XML, as `virsh dumpxml --inactive` prints it. */
export const LIBVIRT_DEFINITION_FORMAT = 'libvirt-xml';

/** Options of {@link openLibvirtSource}. */
export interface LibvirtSourceOptions {
  /** The VM's name in the repository. */
  vm: string;
  /** The libvirt domain (name, UUID or id). */
  domain: string;
  /** libvirt URI (`qemu:///system`, `qemu+ssh://host/system`); default: virsh's default. */
  connect?: string;
  /**
   * The checkpoint each disk's last recorded backup left (target → checkpoint name), from the
   * parent snapshot: disks whose checkpoint is usable are read incrementally.
   */
  previous?: ReadonlyMap<string, string>;
  /**
   * Where the NBD socket, scratch images and request files go while the backup runs. QEMU
   * must be able to write there: the default folder (one per domain under the system's
   * temporary folder, emptied first) is given to the user and group QEMU runs as.
   */
  workDir?: string;
  /**
   * The folder in which the domain's folder is made instead of the system's temporary folder
   * (libvirt's scratch images grow there with what the VM writes during the backup).
   */
  scratchDir?: string;
  /**
   * The free space kept in the scratch filesystem: twice that to start; below it while the
   * backup reads, the job is aborted (the backup fails, the VM's writes go on; see scratch-space.ts).
   */
  scratchMinFreeBytes?: number;
  /** How often the scratch filesystem is looked at, in ms (tests). */
  scratchPollMs?: number;
  signal?: AbortSignal;
  clock?: () => Date;
  /** Run just before and right after `backup-begin` (see {@link CaptureHooks}). */
  hooks?: CaptureHooks;
  /**
   * Freeze the guest's filesystems through libvirt and the domain's guest agent just around
   * `backup-begin` (default true; see {@link LibvirtFreeze}).
   */
  freeze?: boolean;
  /** Told when a thaw could not be confirmed (the guest may still be frozen). */
  onThawFailed?: (reason: string) => void;
}

/**
 * A running libvirt domain as a backup source, through libvirt's backup API in pull mode (see
 * {@link LibvirtBackup}): every disk captured at one instant without pausing the VM, read
 * over NBD with `base:allocation` (holes are not read) and, for incrementals, the
 * `qemu:dirty-bitmap:backup-<target>` context (only dirty ranges are read). Disk names are the
 * target devices (`vda`, `sdb`); CD-ROMs, floppies, read-only, shareable and transient disks
 * are left out and listed in `skipped`. The definition is the domain's inactive XML (no
 * secrets: `--security-info` is never asked for). `commit()` makes this capture's checkpoint
 * the only Coffer one; `close()` without a commit deletes it (its changes merge into the
 * previous checkpoint).
 */
export async function openLibvirtSource(options: LibvirtSourceOptions): Promise<VmSource & { skipped: readonly { name: string; reason: string }[] }> {
  const virsh = new Virsh(options.connect);
  const { domain } = options;
  const state = (await virsh.run(['domstate', domain])).trim().split('\n')[0] ?? '';
  if (state !== 'running' && state !== 'paused') {
    throw new CofferError('E_SOURCE_UNREADABLE', `domain ${domain} is not running (${state || 'unknown state'}): live backup needs it running; back up a stopped domain's images as files`);
  }
  const definition = await virsh.run(['dumpxml', '--inactive', domain]);
  const live = await virsh.run(['dumpxml', domain]);
  let disks: LibvirtDisk[];
  try {
    disks = parseDomainDisks(live);
  } catch (error) {
    throw new CofferError('E_LIBVIRT_ERROR', `the XML of domain ${domain} cannot be read: ${(error as Error).message}`, { cause: error });
  }
  const included = disks.filter((d) => d.skip === undefined);
  if (included.length === 0) throw new CofferError('E_SOURCE_UNREADABLE', `domain ${domain} has no writable disk to back up`);
  const previous = options.previous ?? new Map<string, string>();
  await removeStaleBackup(virsh, domain, new Set(previous.values()));
  options.signal?.throwIfAborted();

  const ownDir = options.workDir === undefined;
  // One folder per domain, so what a killed run left there goes at the next run.
  const workDir = options.workDir ?? path.join(options.scratchDir ?? os.tmpdir(), `coffer-libvirt-${createHash('sha256').update(`${options.connect ?? ''}\0${domain}`).digest('hex').slice(0, 16)}`);
  const devices: NbdBlockDevice[] = [];
  let backup: LibvirtBackup | undefined;
  let watch: ScratchWatch | undefined;
  let broken: CofferError | undefined;
  const cleanUp = async (settle?: (b: LibvirtBackup) => Promise<void>): Promise<void> => {
    watch?.stop();
    for (const device of devices) await device.close().catch(() => {});
    let failure: unknown;
    if (backup !== undefined) {
      await backup.end().catch((error: unknown) => (failure ??= error));
      await settle?.(backup).catch((error: unknown) => (failure ??= error));
    }
    if (ownDir) await fs.rm(workDir, { recursive: true, force: true }).catch(() => {});
    if (failure !== undefined) throw failure;
  };
  try {
    if (ownDir) await fs.rm(workDir, { recursive: true, force: true });
    await fs.mkdir(workDir, { recursive: true, mode: 0o700 });
    const scratchMinFreeBytes = await checkScratchSpace(workDir, options.vm, options.scratchMinFreeBytes);
    const owner = parseDacOwner(live) ?? (await sourceOwner(included));
    if (owner !== undefined) await fs.chown(workDir, owner.uid, owner.gid);
    const now = (options.clock ?? (() => new Date()))();
    const tag = `${now.toISOString().replace(/[-:.]/g, '').replace('T', 't').toLowerCase()}-${randomBytes(3).toString('hex')}`;
    const freeze = new LibvirtFreeze(virsh, domain, options.freeze !== false, options.onThawFailed);
    backup = await LibvirtBackup.start(virsh, domain, disks, { previous, workDir, checkpoint: `${LIBVIRT_CHECKPOINT_PREFIX}${tag}`, freeze, ...(options.hooks ? { hooks: options.hooks } : {}) });
    const started = backup;
    // QEMU under libvirt refuses the guest's writes when a scratch image cannot grow, as without it (scratch-space.ts).
    watch = ScratchWatch.start({
      vm: options.vm,
      dir: workDir,
      minFreeBytes: scratchMinFreeBytes,
      onLow: (error) => {
        broken = error;
        void started.end().catch(() => {});
      },
      ...(options.scratchPollMs !== undefined ? { pollMs: options.scratchPollMs } : {}),
    });
    const sourceDisks: SourceDisk[] = [];
    for (const c of backup.disks) {
      const device = await NbdBlockDevice.open(backup.uri(c), c.exportBitmap === undefined ? {} : { dirtyBitmap: c.exportBitmap });
      devices.push(device);
      sourceDisks.push({
        name: c.disk.target,
        format: `libvirt-${c.disk.format ?? 'raw'}`,
        location: `libvirt:${domain}:${c.disk.target}:${c.disk.source ?? ''}`,
        device: guardedDevice(device, () => broken),
        changeTracking: c.since !== undefined ? { since: c.since } : { unavailable: c.fullReason ?? 'no checkpoint' },
        ...(c.tracked && backup.checkpoint !== undefined ? { checkpoint: backup.checkpoint } : {}),
      });
    }
    const running = backup;
    let committed = false;
    let closed = false;
    return {
      vm: options.vm,
      definition: { format: LIBVIRT_DEFINITION_FORMAT, data: Buffer.from(definition) },
      disks: sourceDisks,
      consistency: freeze.consistency,
      skipped: disks.flatMap((d) => (d.skip === undefined ? [] : [{ name: d.target, reason: d.skip }])),
      async confirm() {
        if (broken !== undefined) throw broken;
        await running.confirm();
      },
      async commit() {
        committed = true;
        watch?.stop();
        for (const device of devices) await device.close().catch(() => {});
        await running.end();
        await running.dropOldCheckpoints();
      },
      async close() {
        if (closed) return;
        closed = true;
        await cleanUp(committed ? undefined : (b) => b.dropNewCheckpoint());
      },
    };
  } catch (error) {
    await cleanUp((b) => b.dropNewCheckpoint()).catch(() => {}); // this capture never reached a snapshot
    throw error;
  }
}

/** Without a DAC label (a session daemon), QEMU runs as the owner of the images it writes. */
async function sourceOwner(disks: readonly LibvirtDisk[]): Promise<{ uid: number; gid: number } | undefined> {
  for (const disk of disks) {
    if (disk.type !== 'file' || disk.source === undefined) continue;
    const stat = await fs.stat(disk.source).catch(() => undefined);
    if (stat !== undefined) return { uid: stat.uid, gid: stat.gid };
  }
  return undefined;
}
