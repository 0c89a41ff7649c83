/**
 * One VM backup as a library call: the one composition of a VM backup, which `coffer backup`
 * (cli/commands/backup.ts: options → request → this → printing) and the server's worker
 * processes (server/worker/worker-entry.ts: a task's spec → this → IPC) both call. Given an
 * opener of the repository (the caller's: prompts, URL dispatch, limits), it wraps the
 * repository's backend in the meter (and the write throttle), finds the parent (the VM's
 * latest disk snapshot, or the request's base), takes the backup lease (before a live capture, so
 * no capture waits for a prune), opens the source (open-vm-source.ts: image files with
 * optional changed ranges, QEMU with guest freeze and capture hooks, libvirt), backs up
 * (backup-vm.ts: --verify-unchanged, chain tracking; on a repository with Object Lock the
 * manifest is locked and what it reuses extended), and reports the figures issue #8 lists per
 * VM, including where the time went.
 *
 * Interruption: the signal aborts reads and waits; a run killed at any instant leaves no
 * snapshot (the manifest is written last) and its lease expires, so the repository stays
 * consistent (leases.ts, backup-vm.ts).
 */
import { readFile } from 'node:fs/promises';
import { CofferError } from '../errors/index.js';
import { acquireBackupLease, lockedBackendOf, openRepositoryAt, resolveSnapshot, type Repository, type Snapshot } from '../repo/index.js';
import type { VmSource } from '../source/index.js';
import { backupVm, latestDiskSnapshot, type BackupProgress } from './backup-vm.js';
import { BackupMeter, MeteredBackend, MeteredDevice, type ByteThrottle } from './backup-meter.js';
import { vmBackupFigures } from './vm-backup-figures.js';
import { openVmSource } from './open-vm-source.js';
import type { RepositoryLocation, RepositoryOpener, VmBackupEvent, VmBackupRequest, VmBackupResult } from './vm-backup-spec.js';

/** Options of {@link runVmBackup}. */
export interface RunVmBackupOptions {
  /** Opens the repository (see {@link RepositoryOpener}; {@link repositoryOpenerAt} for a location without a terminal). */
  openRepository: RepositoryOpener;
  signal?: AbortSignal;
  /** Progress, with the bytes read from the source so far and the mean latency of its reads since the previous call (the latency guard's measures). */
  onProgress?: (progress: VmBackupProgress) => void;
  /** Told of waits, hook output and warnings as they happen. */
  onEvent?: (event: VmBackupEvent) => void;
  /** Bandwidth: bytes read from the source, and bytes written to the repository. */
  limits?: { readonly sourceRead?: ByteThrottle; readonly repositoryWrite?: ByteThrottle };
  /** Injected clock for the reported times (tests). */
  clock?: () => Date;
  /** This host's cache directory (`cacheDirectoryOf`): the disks' block fingerprints are kept there (block-fingerprints.ts). */
  cacheDirectory?: string | undefined;
}

/** Progress of {@link runVmBackup}. */
export interface VmBackupProgress extends BackupProgress {
  /**
   * Bytes read from the source so far, every disk: what the `sourceRead` limit is paid for.
   * Unlike `vmBytesDone`, it leaves out the ranges skipped unread (zero, unallocated, unchanged),
   * so its rate is the rate of the reads the source storage served.
   */
  sourceBytesRead: number;
  /** Mean milliseconds per source read since the previous progress report (absent when none ended). */
  sourceLatencyMs?: number;
}

/**
 * Backs up one VM. Closes everything it opened, whatever happens.
 * @throws CofferError from the repository, the source or the backup (E_INTERRUPTED when
 * aborted); E_USAGE for a request that does not hold together (a bad time or sample fraction,
 * not one ranges list per image).
 */
export async function runVmBackup(request: VmBackupRequest, options: RunVmBackupOptions): Promise<VmBackupResult> {
  const clock = options.clock ?? (() => new Date());
  const started = clock();
  const time = request.time === undefined ? undefined : new Date(request.time);
  if (time !== undefined && Number.isNaN(time.getTime())) throw new CofferError('E_USAGE', `VM ${request.vm}: time ${request.time} is not an ISO 8601 date`);
  const sample = request.verifyUnchanged;
  if (sample !== undefined && !(sample > 0 && sample <= 1)) throw new CofferError('E_USAGE', `VM ${request.vm}: verifyUnchanged ${sample} is not a fraction above 0 and at most 1`);
  const meter = new BackupMeter(request.threads ?? (await import('node:os')).availableParallelism());
  const { signal } = options;
  const repo = await options.openRepository((backend) => new MeteredBackend(backend, meter, options.limits?.repositoryWrite, signal));
  const warnings: string[] = [];
  const emit = (event: VmBackupEvent) => {
    if (event.type === 'warning') warnings.push(event.message);
    options.onEvent?.(event);
  };
  try {
    const parent = await parentOf(repo, request);
    const lease = await acquireBackupLease(repo, {
      ...(signal ? { signal } : {}),
      onWait: (holders) => emit({ type: 'waiting-for-prune', holders }),
    });
    try {
      const opened = await openVmSource(request, { parent, emit, ...(signal ? { signal } : {}) });
      const source = metered(opened.source, meter, options.limits?.sourceRead, signal);
      try {
        for (const d of opened.skipped) emit({ type: 'warning', about: 'skipped-disk', message: `disk ${d.name} not backed up: ${d.reason}` });
        /** Per disk, the bytes its fingerprints spared from hashing (its last progress report). */
        const matched = new Map<string, number>();
        const snapshot = await backupVm(repo, source, {
          lease,
          parent,
          tags: [...(request.tags ?? []), ...(request.job === undefined ? [] : [`job:${request.job}`])],
          ...(request.host === undefined ? {} : { hostname: request.host }),
          ...(time === undefined ? {} : { time }),
          ...(request.verifyUnchanged === undefined ? {} : { verifyUnchanged: request.verifyUnchanged }),
          ...(options.cacheDirectory === undefined ? {} : { cacheDirectory: options.cacheDirectory }),
          ...(signal ? { signal } : {}),
          onProgress: (p: BackupProgress) => {
            matched.set(p.disk, p.bytesMatched);
            if (options.onProgress === undefined) return;
            const latency = meter.source.takeMeanLatencyMs();
            const read = { ...p, sourceBytesRead: meter.sourceBytesRead };
            options.onProgress(latency === undefined ? read : { ...read, sourceLatencyMs: latency });
          },
        });
        const locked = lockedBackendOf(repo)?.lastSnapshot;
        const objectLock = locked === undefined || locked.id !== snapshot.id
          ? undefined
          : { lockedUntil: locked.lockedUntil.toISOString(), checked: locked.checked, lookedUp: locked.lookedUp, extended: locked.extended, durationMs: locked.durationMs };
        const bytesMatched = [...matched.values()].reduce((sum, bytes) => sum + bytes, 0);
        return vmBackupFigures(request, snapshot, { started, ended: clock(), time: meter.breakdown(), warnings, skipped: opened.skipped, objectLock, bytesMatched });
      } finally {
        await source.close();
      }
    } finally {
      await lease.release().catch(() => {});
    }
  } finally {
    await repo.close();
  }
}

/**
 * The opener of a repository at a location, without a terminal: the repository's own URL
 * dispatch (repo/open-location.ts; AWS_*, COFFER_REPO_TOKEN and COFFER_REPO_FINGERPRINT read
 * from `env`), the chunk cache for S3 under `env`'s cache directory, the passphrase from the
 * location's file.
 */
export function repositoryOpenerAt(location: RepositoryLocation, how: { env: NodeJS.ProcessEnv; threads?: number }): RepositoryOpener {
  const { passphraseFile } = location;
  return (wrapBackend) => openRepositoryAt(location.url, {
    env: how.env,
    wrapBackend,
    passphrase: passphraseFile === undefined ? undefined : () => readPassphraseFile(passphraseFile),
    ...(how.threads === undefined ? {} : { threads: how.threads }),
  });
}

/** The request's base, else the VM's latest disk snapshot, else none. */
async function parentOf(repo: Repository, request: VmBackupRequest): Promise<Snapshot | null> {
  if (request.base !== undefined) return resolveSnapshot(repo, request.base);
  return latestDiskSnapshot(repo, request.vm);
}

/** The source with each disk's reads timed and held to the read limit. */
function metered(source: VmSource, meter: BackupMeter, throttle: ByteThrottle | undefined, signal: AbortSignal | undefined): VmSource {
  const disks = source.disks.map((disk) => ({ ...disk, device: new MeteredDevice(disk.device, meter, throttle, signal) }));
  return {
    vm: source.vm,
    definition: source.definition,
    disks,
    ...(source.consistency === undefined ? {} : { consistency: source.consistency }),
    ...(source.confirm === undefined ? {} : { confirm: () => (source.confirm as () => Promise<void>)() }),
    ...(source.commit === undefined ? {} : { commit: () => (source.commit as () => Promise<void>)() }),
    close: () => source.close(),
  };
}

async function readPassphraseFile(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
  } catch (error) {
    throw new CofferError('E_USAGE', `cannot read the passphrase file ${file}: ${(error as Error).message}`, { subject: { path: file }, cause: error });
  }
}
