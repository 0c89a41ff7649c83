import * as fs from 'node:fs/promises';
import path from 'node:path';
import { CofferError } from '../../errors/index.js';
import type { LibvirtFreeze } from './libvirt-freeze.js';
import type { CaptureHooks } from '../qemu/qemu-capture.js';
import { checkpointXml, parseBackupJob, parseCheckpointDisks, pullBackupXml, type BackupDiskRequest, type BackupJob, type LibvirtDisk } from './libvirt-documents.js';
import { isNoCheckpointError, isNoJobError, type Virsh } from './virsh.js';

/** Every checkpoint Coffer makes starts with this, so it never touches another tool's. */
export const LIBVIRT_CHECKPOINT_PREFIX = 'coffer-';
/** The NBD socket's file name: a backup job exporting on it is Coffer's (see {@link removeStaleBackup}). */
export const BACKUP_SOCKET_NAME = 'coffer-backup.sock';
/** How long the end of a job may take to show (libvirt tears QEMU's jobs and exports down). */
const JOB_END_TIMEOUT_MS = 30_000;

/** One disk in a running pull-mode backup. */
export interface LibvirtCapturedDisk {
  disk: LibvirtDisk;
  /** The checkpoint the exported changes are relative to, when the disk is read incrementally. */
  since?: string;
  /** Why the disk is read in full. */
  fullReason?: string;
  /** Whether this capture's checkpoint keeps a bitmap for the disk (qcow2 only). */
  tracked: boolean;
  exportName: string;
  /** `qemu:dirty-bitmap:<exportBitmap>` holds the changes since `since`. */
  exportBitmap?: string;
}

/**
 * A libvirt pull-mode backup job (`virsh backup-begin`) over every disk of a domain: libvirt
 * fleeces each disk at one instant (QEMU's `blockdev-backup sync=none` into a scratch qcow2),
 * creates the new checkpoint in the same step, and exports every disk over NBD on a unix
 * socket (export name = target, `qemu:dirty-bitmap:backup-<target>` for incrementals). The
 * VM is never paused. The previous checkpoint stays; {@link end} ends the job
 * (`domjobabort`), then {@link dropNewCheckpoint} (failed backup: libvirt merges the new
 * checkpoint's bitmap into its parent, so no change is lost) or {@link dropOldCheckpoints}
 * (recorded backup) settles which checkpoint lives on.
 */
export class LibvirtBackup {
  private ending: Promise<void> | undefined;

  private constructor(
    private readonly virsh: Virsh,
    readonly domain: string,
    readonly disks: LibvirtCapturedDisk[],
    readonly socket: string,
    /** This capture's checkpoint, or undefined when no disk can keep one. */
    readonly checkpoint: string | undefined,
  ) {}

  /**
   * Starts the job. `previous`: target → checkpoint the parent snapshot recorded; a disk whose
   * checkpoint is gone, or that libvirt refuses to read incrementally, is read in full with the
   * reason. Hooks run around `backup-begin` (around each attempt, when a refused incremental
   * is retried in full); `atInstant` runs once, right after the `backup-begin` that succeeded,
   * before the guest is thawed (it must not throw: what it reads is not the job's).
   */
  static async start(
    virsh: Virsh,
    domain: string,
    disks: readonly LibvirtDisk[],
    options: { previous: ReadonlyMap<string, string>; workDir: string; checkpoint: string; hooks?: CaptureHooks; freeze?: LibvirtFreeze; atInstant?: () => Promise<void> },
  ): Promise<LibvirtBackup> {
    const socket = path.join(options.workDir, BACKUP_SOCKET_NAME);
    const included = disks.filter((d) => d.skip === undefined);
    const existing = new Set(await listCheckpoints(virsh, domain));
    const trackedBy = new Map<string, Set<string>>();
    const captured: LibvirtCapturedDisk[] = [];
    for (const disk of included) {
      const tracked = disk.format === 'qcow2';
      const previous = options.previous.get(disk.target);
      let fullReason: string | undefined;
      if (!tracked) fullReason = `a ${disk.format ?? 'raw'} image: libvirt keeps checkpoint bitmaps only in qcow2 images`;
      else if (previous === undefined) fullReason = 'no checkpoint from a previous backup of this disk';
      else if (!existing.has(previous)) fullReason = `checkpoint ${previous} is missing from domain ${domain} (deleted, or the domain was redefined)`;
      else {
        if (!trackedBy.has(previous)) trackedBy.set(previous, parseCheckpointDisks(await virsh.run(['checkpoint-dumpxml', '--no-domain', domain, previous])));
        if (!trackedBy.get(previous)?.has(disk.target)) fullReason = `checkpoint ${previous} keeps no bitmap for ${disk.target} (disk added or replaced since)`;
      }
      captured.push({ disk, tracked, exportName: disk.target, ...(fullReason === undefined ? { since: previous as string } : { fullReason }) });
    }
    const checkpoint = captured.some((c) => c.tracked) ? options.checkpoint : undefined;
    const backup = new LibvirtBackup(virsh, domain, captured, socket, checkpoint);
    try {
      try {
        await backup.begin(disks, options);
      } catch (error) {
        const incremental = captured.filter((c) => c.since !== undefined);
        if (incremental.length === 0 || !(error instanceof CofferError) || error.code !== 'E_LIBVIRT_ERROR') throw error;
        // E.g. the image lost its bitmap (disk replaced under the same target): read in full.
        for (const c of incremental) {
          c.fullReason = `libvirt refused an incremental backup from checkpoint ${c.since}: ${error.message}`;
          delete c.since;
        }
        await backup.begin(disks, options);
      }
      const job = parseBackupJob(await virsh.run(['backup-dumpxml', domain]));
      for (const c of captured) {
        const exported = job.disks.find((d) => d.name === c.disk.target);
        if (exported === undefined) throw new CofferError('E_LIBVIRT_ERROR', `the backup job of ${domain} exports no disk ${c.disk.target}`);
        c.exportName = exported.exportName;
        if (c.since !== undefined) {
          if (exported.exportBitmap === undefined) throw new CofferError('E_LIBVIRT_ERROR', `the backup job of ${domain} exports no bitmap for the incremental disk ${c.disk.target}`);
          c.exportBitmap = exported.exportBitmap;
        }
      }
      return backup;
    } catch (error) {
      await backup.end().catch(() => {});
      await backup.dropNewCheckpoint().catch(() => {});
      throw error;
    }
  }

  private async begin(disks: readonly LibvirtDisk[], options: { workDir: string; hooks?: CaptureHooks; freeze?: LibvirtFreeze; atInstant?: () => Promise<void> }): Promise<void> {
    const requests: BackupDiskRequest[] = disks.map((disk) => {
      const c = this.disks.find((x) => x.disk === disk);
      if (c === undefined) return { target: disk.target, backup: false };
      return { target: disk.target, backup: true, scratch: path.join(options.workDir, `scratch-${disk.target}.qcow2`), ...(c.since !== undefined ? { since: c.since } : {}) };
    });
    const backupFile = path.join(options.workDir, 'backup.xml');
    await fs.writeFile(backupFile, pullBackupXml(this.socket, requests));
    const args = ['backup-begin', this.domain, backupFile];
    if (this.checkpoint !== undefined) {
      const checkpointFile = path.join(options.workDir, 'checkpoint.xml');
      await fs.writeFile(checkpointFile, checkpointXml(this.checkpoint, disks.map((d) => ({ target: d.target, tracked: this.disks.some((c) => c.disk === d && c.tracked) }))));
      args.push(checkpointFile);
    }
    try {
      await options.hooks?.beforeCapture?.();
      try {
        await options.freeze?.freeze();
        await this.virsh.run(args);
        await options.atInstant?.();
      } finally {
        await options.freeze?.thaw();
      }
    } finally {
      await options.hooks?.afterCapture?.();
    }
  }

  /** NBD URI of a disk's export. */
  uri(disk: LibvirtCapturedDisk): string {
    return `nbd+unix:///${encodeURIComponent(disk.exportName)}?socket=${this.socket}`;
  }

  /**
   * Throws unless this job still runs (libvirt ends a job it cannot keep, another tool may
   * abort it): a backup recorded after its job ended could hold bytes from after the instant.
   */
  async confirm(): Promise<void> {
    const ended = (why: string) => new CofferError('E_SOURCE_UNREADABLE', `domain ${this.domain}: the backup job ended before the backup finished (${why}); nothing of this backup is recorded`);
    if (this.ending !== undefined) throw ended('ended by Coffer');
    let job: BackupJob;
    try {
      job = parseBackupJob(await this.virsh.run(['backup-dumpxml', this.domain]));
    } catch (error) {
      if (isNoJobError(error)) throw ended('libvirt reports no backup job');
      throw error;
    }
    if (job.socket !== this.socket) throw ended(`the backup job running now exports on ${job.socket ?? 'no unix socket'}, not on ${this.socket}`);
  }

  /** True once Coffer has begun ending the job (an end seen afterwards is no break). */
  get endedByCoffer(): boolean {
    return this.ending !== undefined;
  }

  /** Ends the job (libvirt removes the exports, scratch images and socket). Idempotent: later calls share the first one's outcome. */
  end(): Promise<void> {
    this.ending ??= endBackupJob(this.virsh, this.domain);
    return this.ending;
  }

  /** A failed backup: delete this capture's checkpoint (its bitmap merges into the previous one's). */
  async dropNewCheckpoint(): Promise<void> {
    if (this.checkpoint === undefined) return;
    await deleteCheckpoint(this.virsh, this.domain, this.checkpoint);
  }

  /** A recorded backup: its checkpoint is the reference now; every other Coffer checkpoint goes. */
  async dropOldCheckpoints(): Promise<void> {
    if (this.checkpoint === undefined) return;
    await deleteCofferCheckpoints(this.virsh, this.domain, new Set([this.checkpoint]));
  }
}

/** The domain's checkpoint names, oldest first as libvirt lists them. */
export async function listCheckpoints(virsh: Virsh, domain: string): Promise<string[]> {
  const out = await virsh.run(['checkpoint-list', '--name', '--topological', domain]);
  return out.split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

/**
 * Deletes every `coffer-` checkpoint of the domain but `keep`, newest first. Deleting a
 * checkpoint never loses a change for the others: libvirt merges its bitmap into its parent's
 * (and keeps every checkpoint's bitmap recording anyway). A checkpoint libvirt cannot delete
 * because a disk lost its bitmap (`bitmap … not found in backing chain`) is useless: only its
 * metadata is removed (`--metadata`); the bitmaps other disks still hold for it stay in their
 * qcow2 files (libvirt offers no way to remove them without its QEMU monitor).
 */
export async function deleteCofferCheckpoints(virsh: Virsh, domain: string, keep: ReadonlySet<string>): Promise<void> {
  const names = await listCheckpoints(virsh, domain);
  for (const name of names.reverse()) {
    if (!name.startsWith(LIBVIRT_CHECKPOINT_PREFIX) || keep.has(name)) continue;
    await deleteCheckpoint(virsh, domain, name);
  }
}

/** Deletes one checkpoint (see {@link deleteCofferCheckpoints}); an absent one is no error. */
export async function deleteCheckpoint(virsh: Virsh, domain: string, name: string): Promise<void> {
  try {
    await virsh.run(['checkpoint-delete', domain, name]);
  } catch (error) {
    if (isNoCheckpointError(error)) return;
    if (!/not found in backing chain/i.test((error as Error).message)) throw error;
    await virsh.run(['checkpoint-delete', '--metadata', domain, name]).catch((second: unknown) => {
      if (!isNoCheckpointError(second)) throw second;
    });
  }
}

/** The domain's running backup job, or undefined. */
export async function currentBackupJob(virsh: Virsh, domain: string): Promise<BackupJob | undefined> {
  try {
    return parseBackupJob(await virsh.run(['backup-dumpxml', domain]));
  } catch (error) {
    if (isNoJobError(error)) return undefined;
    throw error;
  }
}

/** `domjobabort`, then waits until libvirt reports no backup job (deadline: 30 s). */
async function endBackupJob(virsh: Virsh, domain: string): Promise<void> {
  await virsh.run(['domjobabort', domain]).catch((error: unknown) => {
    if (!isNoJobError(error)) throw error;
  });
  const deadline = Date.now() + JOB_END_TIMEOUT_MS;
  while ((await currentBackupJob(virsh, domain)) !== undefined) {
    if (Date.now() > deadline) throw new CofferError('E_TIMEOUT', `the backup job of domain ${domain} did not end within ${JOB_END_TIMEOUT_MS / 1000} s of domjobabort`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * What a Coffer run killed mid-way left in libvirt: its backup job (recognised by its socket's
 * name) is aborted, and the `coffer-` checkpoints made after the one the parent snapshot
 * recorded (`keep`) are deleted (their bitmaps merge into their parents': nothing is lost).
 * Older ones, and all of them when the recorded one is gone, wait for the next recorded
 * backup's pruning. Another tool's job is never aborted: libvirt runs one backup job per
 * domain, so it is an error.
 */
export async function removeStaleBackup(virsh: Virsh, domain: string, keep: ReadonlySet<string>): Promise<void> {
  const job = await currentBackupJob(virsh, domain);
  if (job !== undefined) {
    if (job.socket === undefined || path.basename(job.socket) !== BACKUP_SOCKET_NAME) {
      throw new CofferError('E_LIBVIRT_ERROR', `domain ${domain} has a backup job of another tool running (${job.socket ?? job.mode}); libvirt runs one at a time`);
    }
    await endBackupJob(virsh, domain);
  }
  const names = await listCheckpoints(virsh, domain);
  let newestKept = -1;
  for (const [i, name] of names.entries()) if (keep.has(name)) newestKept = i;
  if (newestKept < 0) return;
  for (const name of names.slice(newestKept + 1).reverse()) {
    if (name.startsWith(LIBVIRT_CHECKPOINT_PREFIX)) await deleteCheckpoint(virsh, domain, name);
  }
}
