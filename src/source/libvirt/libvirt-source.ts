import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CofferError } from '../../errors/index.js';
import { makeFolders } from '../../native/index.js';
import { bufferDevice } from '../../blockdev/index.js';
import { NbdBlockDevice } from '../../nbd/index.js';
import { guardedDevice } from '../guarded-device.js';
import { checkScratchSpace, scratchFreeBytes, ScratchWatch } from '../scratch-space.js';
import type { CaptureHooks } from '../qemu/qemu-capture.js';
import type { SourceDisk, VmSource } from '../vm-source.js';
import { LIBVIRT_CHECKPOINT_PREFIX, LibvirtBackup, removeStaleBackup } from './libvirt-backup.js';
import { LibvirtFreeze } from './libvirt-freeze.js';
import { DomainEventWatch, parseIoErrorDetail, type DomainIoError } from './domain-events.js';
import { parseDacOwner, parseDomainDisks, parseDomainNvram, type LibvirtDisk, type LibvirtNvram } from './libvirt-documents.js';
import { LIBVIRT_NVRAM_DISK, readVariableStore } from './libvirt-nvram.js';
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
 * are left out and listed in `skipped`. The domain's UEFI variable store (`<os><nvram>`, a
 * file outside its disks) is read whole at the same instant and offered as the disk `nvram`,
 * raw (libvirt-nvram.ts); one that cannot be read is listed in `skipped` with the reason. The
 * definition is the domain's inactive XML (no secrets: `--security-info` is never asked for). `commit()` makes this capture's checkpoint
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
  let nvram: LibvirtNvram | undefined;
  try {
    disks = parseDomainDisks(live);
    nvram = parseDomainNvram(live);
  } catch (error) {
    throw new CofferError('E_LIBVIRT_ERROR', `the XML of domain ${domain} cannot be read: ${(error as Error).message}`, { cause: error });
  }
  const included = disks.filter((d) => d.skip === undefined);
  if (included.length === 0) throw new CofferError('E_SOURCE_UNREADABLE', `domain ${domain} has no writable disk to back up`);
  if (nvram !== undefined && 'file' in nvram && disks.some((d) => d.target === LIBVIRT_NVRAM_DISK)) {
    nvram = { skip: `the UEFI variable store ${nvram.file} is stored as the disk ${LIBVIRT_NVRAM_DISK}, and a disk of the domain has that target already` };
  }
  /** The variable store as read at the instant (or why not): set by `backup-begin`'s `atInstant`. */
  const nvramRead: { store?: { bytes: Buffer } | { skip: string } } = nvram !== undefined && 'skip' in nvram ? { store: nvram } : {};
  const nvramFile = nvram !== undefined && 'file' in nvram ? nvram.file : undefined;
  const previous = options.previous ?? new Map<string, string>();
  await removeStaleBackup(virsh, domain, new Set(previous.values()));
  options.signal?.throwIfAborted();

  const ownDir = options.workDir === undefined;
  // One folder per domain, so what a killed run left there goes at the next run.
  const workDir = options.workDir ?? path.join(options.scratchDir ?? os.tmpdir(), `coffer-libvirt-${createHash('sha256').update(`${options.connect ?? ''}\0${domain}`).digest('hex').slice(0, 16)}`);
  const devices: NbdBlockDevice[] = [];
  let backup: LibvirtBackup | undefined;
  let watch: ScratchWatch | undefined;
  let events: DomainEventWatch | undefined;
  let broken: CofferError | undefined;
  /** From just before `backup-begin` on: the domain's events are about this capture. */
  let capturing = false;
  const pauses = new PausedByCapture(virsh, domain, state === 'running');
  const freeze = new LibvirtFreeze(virsh, domain, options.freeze !== false, options.onThawFailed);
  /** The break is an io-error event without its reason: the `-reason` twin that follows says more. */
  let brokenWithoutReason = false;
  /** Ends the job at once (the guest's writes go to its disks alone), then resumes a VM it paused (and thaws it, when the pause met the thaw). */
  const breakCapture = (error: CofferError): void => {
    if (broken !== undefined) return;
    broken = error;
    if (backup !== undefined) void backup.end().catch(() => {}).then(() => pauses.resume()).then(() => freeze.thawAfterResume());
  };
  const cleanUp = async (settle?: (b: LibvirtBackup) => Promise<void>): Promise<void> => {
    watch?.stop();
    for (const device of devices) await device.close().catch(() => {});
    let failure: unknown;
    if (backup !== undefined) {
      await backup.end().catch((error: unknown) => (failure ??= error));
      await settle?.(backup).catch((error: unknown) => (failure ??= error));
    }
    // The job is gone (a start that failed ended its own): a domain it paused runs again, and
    // a thaw that met that pause is sent now.
    if (capturing) await pauses.resume();
    await freeze.thawAfterResume();
    events?.stop();
    if (ownDir) await fs.rm(workDir, { recursive: true, force: true }).catch(() => {});
    if (pauses.problem !== undefined) failure ??= pauses.problem;
    if (failure !== undefined) throw failure;
  };
  try {
    if (ownDir) await fs.rm(workDir, { recursive: true, force: true });
    await makeFolders(workDir, 0o700);
    const scratchMinFreeBytes = await checkScratchSpace(workDir, options.vm, options.scratchMinFreeBytes);
    const owner = parseDacOwner(live) ?? (await sourceOwner(included));
    if (owner !== undefined) await fs.chown(workDir, owner.uid, owner.gid);
    const now = (options.clock ?? (() => new Date()))();
    const tag = `${now.toISOString().replace(/[-:.]/g, '').replace('T', 't').toLowerCase()}-${randomBytes(3).toString('hex')}`;
    // A guest write the capture failed (its scratch image full: the VM pauses under QEMU's
    // default werror=enospc) and a job that ends before Coffer ends it, as soon as libvirt says.
    events = DomainEventWatch.start(virsh, domain, (event) => {
      if (!capturing) return;
      if (event.type === 'io-error' || event.type === 'io-error-reason') {
        const ioError = parseIoErrorDetail(event.detail);
        // A named disk that is not captured (a CD-ROM, a read-only disk) is not the job's doing;
        // while the job runs, QEMU's failing node is its filter, which libvirt leaves unnamed.
        if (ioError === undefined || (ioError.path !== '' && !included.some((d) => d.source === ioError.path))) return;
        const error = guestWriteFailed(options.vm, domain, ioError, included, workDir);
        if (brokenWithoutReason && ioError.reason !== undefined) {
          broken = error; // the same failure, said better
          brokenWithoutReason = false;
          return;
        }
        if (broken !== undefined || backup?.endedByCoffer === true) return; // a pause after the job is checked by its state
        brokenWithoutReason = ioError.reason === undefined;
        breakCapture(error);
      } else if (event.type === 'job-completed' && backup !== undefined && !backup.endedByCoffer) {
        breakCapture(new CofferError('E_SOURCE_UNREADABLE', `domain ${domain}: the backup job ended before the backup finished (libvirt reported job-completed: ${event.params['errmsg'] ?? (event.detail || 'aborted or failed')}); nothing of this backup is recorded`));
      }
    }, (reason) => {
      // Nothing more is heard (libvirtd restarted): a pause is still seen, from the domain's state.
      // libvirt's state does not say which disk failed: the error says so ("libvirt did not say which").
      events?.pollPausedByIoError(virsh, domain, () => {
        if (broken !== undefined || backup?.endedByCoffer === true) return true; // ended already: the resume follows the job's end
        if (!capturing) return false;
        void scratchFull(workDir, scratchMinFreeBytes).then((full) => {
          const error = guestWriteFailed(options.vm, domain, { path: '', alias: '', action: 'pause', ...(full ? { reason: 'enospc' } : {}) }, included, workDir);
          breakCapture(new CofferError(error.code, `${error.message} (seen from the domain's state: its event listener had ended: ${reason})`, { cause: error }));
        });
        return true;
      });
    });
    const hooks: CaptureHooks = {
      beforeCapture: async () => {
        await options.hooks?.beforeCapture?.();
        capturing = true;
      },
      ...(options.hooks?.afterCapture ? { afterCapture: options.hooks.afterCapture } : {}),
    };
    const atInstant = nvramFile === undefined ? {} : { atInstant: async () => void (nvramRead.store = await readVariableStore(nvramFile)) };
    backup = await LibvirtBackup.start(virsh, domain, disks, { previous, workDir, checkpoint: `${LIBVIRT_CHECKPOINT_PREFIX}${tag}`, freeze, hooks, ...atInstant });
    if (broken !== undefined) throw broken; // a failed write while the job started
    // QEMU under libvirt refuses the guest's writes when a scratch image cannot grow, as without it (scratch-space.ts).
    watch = ScratchWatch.start({
      vm: options.vm,
      dir: workDir,
      minFreeBytes: scratchMinFreeBytes,
      onLow: (error) => breakCapture(error),
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
    const { store } = nvramRead;
    if (store !== undefined && 'bytes' in store) {
      sourceDisks.push({
        name: LIBVIRT_NVRAM_DISK,
        format: 'raw',
        location: `libvirt:${domain}:${LIBVIRT_NVRAM_DISK}:${nvramFile ?? ''}`,
        device: bufferDevice(store.bytes),
        changeTracking: { unavailable: 'the UEFI variable store (<nvram>) is small: read whole at every backup' },
      });
    }
    const nvramSkipped = store !== undefined && 'skip' in store ? [{ name: LIBVIRT_NVRAM_DISK, reason: store.skip }] : [];
    const running = backup;
    let committed = false;
    let closed = false;
    return {
      vm: options.vm,
      definition: { format: LIBVIRT_DEFINITION_FORMAT, data: Buffer.from(definition) },
      disks: sourceDisks,
      consistency: freeze.consistency,
      skipped: [...disks.flatMap((d) => (d.skip === undefined ? [] : [{ name: d.target, reason: d.skip }])), ...nvramSkipped],
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
    throw pauses.problem !== undefined && error instanceof CofferError ? new CofferError(error.code, `${error.message}. ${pauses.problem.message}`, { cause: error }) : error;
  }
}

/**
 * A domain that was running when the backup began and that QEMU paused on a failed write
 * while the job lived (`paused (I/O error)`): once the job is gone it is resumed, and QEMU
 * retries the write on the disk alone. The state is what counts (the event may have come
 * before virsh listened); at most once per backup. Were the error the disk's own, the retry
 * fails and QEMU pauses the domain again, as without Coffer.
 */
class PausedByCapture {
  private resuming: Promise<void> | undefined;
  problem: CofferError | undefined;

  constructor(
    private readonly virsh: Virsh,
    private readonly domain: string,
    private readonly wasRunning: boolean,
  ) {}

  /** Idempotent: later calls wait for the first one's outcome. */
  resume(): Promise<void> {
    if (!this.wasRunning) return Promise.resolve();
    this.resuming ??= this.resumeOnce();
    return this.resuming;
  }

  private async resumeOnce(): Promise<void> {
    try {
      const state = (await this.virsh.run(['domstate', '--reason', this.domain])).trim();
      if (!/^paused \(I\/O error\)/i.test(state)) return;
      await this.virsh.run(['resume', this.domain]);
    } catch (error) {
      this.problem = new CofferError('E_SOURCE_UNREADABLE', `domain ${this.domain}: it paused on a write that failed during the backup and could not be resumed (${(error as Error).message}); THE DOMAIN IS STILL PAUSED: resume it with "virsh resume ${this.domain}"`, { cause: error });
    }
  }
}

/** The error of a capture ended by an I/O error libvirt reported (see qemu-capture.ts's guestWriteFailed). */
function guestWriteFailed(vm: string, domain: string, error: DomainIoError, disks: readonly LibvirtDisk[], scratchDir: string): CofferError {
  // During the job, QEMU's failing node is the job's filter, which libvirt cannot name: "" ().
  const target = disks.find((d) => d.source === error.path)?.target;
  const disk = target !== undefined ? `its disk ${target}` : error.alias !== '' || error.path !== '' ? `its disk ${[error.alias, error.path].filter((x) => x !== '').join(' ')}` : 'one of its disks (libvirt did not say which)';
  const what = `VM ${vm}: an I/O error of domain ${domain} on ${disk} while the backup held its point-in-time view (libvirt: ${error.reason ?? 'I/O error'}; most likely a guest write the job's copy of old data failed)`;
  const outcome = {
    pause: "QEMU paused the domain on it (the disk's error_policy); Coffer ended the backup job at once and resumes the domain, and QEMU retries the write on the disk alone",
    report: "the guest was told its write failed (error_policy='report'): check the guest's filesystems and applications",
    none: "the error was ignored (error_policy='ignore'): that write is lost, check the guest's filesystems",
    unknown: 'libvirt did not say what QEMU did with it',
  }[error.action];
  if (error.reason === 'enospc') {
    return new CofferError('E_NO_SPACE', `${what}: ${outcome}. QEMU copies the old data of each overwritten block to a scratch image in ${scratchDir} before the write lands, and that filesystem (or the disk's own storage) was full before Coffer's watch saw it. Nothing of this backup is recorded; give --scratch-dir a larger filesystem, or raise --scratch-min-free`);
  }
  return new CofferError('E_SOURCE_UNREADABLE', `${what}: ${outcome}. Nothing of this backup is recorded`);
}

/** The scratch filesystem is below its floor (a pause seen without its reason was most likely ENOSPC). */
async function scratchFull(dir: string, minFreeBytes: number): Promise<boolean> {
  return (await scratchFreeBytes(dir).catch(() => Infinity)) < minFreeBytes;
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
