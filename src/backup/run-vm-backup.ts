/**
 * One VM backup as a library call, everything a caller needs in one place: open the
 * repository from its location and passphrase file, take the backup lease (before a live
 * capture, so no capture waits for a prune), find the parent (the VM's latest snapshot), open
 * the source (image files, a QEMU QMP socket or a libvirt domain), back up, and report the
 * figures issue #8 lists per VM, including where the time went. The server's worker processes
 * call it; `coffer backup` composes the same steps (cli/commands/backup.ts).
 *
 * Interruption: the signal aborts reads and waits; a run killed at any instant leaves no
 * snapshot (the manifest is written last) and its lease expires, so the repository stays
 * consistent (leases.ts, backup-vm.ts).
 */
import { readFile } from 'node:fs/promises';
import { CofferError } from '../errors/index.js';
import { acquireBackupLease, isS3Location, listSnapshots, LocalBackend, openRepository, parseS3Location, S3Backend, type Backend, type Snapshot } from '../repo/index.js';
import { openImageSource, openLibvirtSource, openQemuSource, type VmSource } from '../source/index.js';
import { backupVm, type BackupProgress } from './backup-vm.js';
import { BackupMeter, MeteredBackend, MeteredDevice, type Bottleneck, type ByteThrottle, type TimeBreakdown } from './backup-meter.js';

/** Where a VM's disks come from. */
export type VmBackupSource =
  /** Disk image files or block devices, any format Coffer reads; `imageSnapshot` reads qcow2 internal snapshots. */
  | { readonly images: readonly string[]; readonly imageSnapshot?: string }
  /** A running QEMU VM's monitor socket (or `HOST:PORT`); its guest agent socket for freezing. */
  | { readonly qmp: string; readonly guestAgent?: string; readonly freeze?: boolean }
  /** A libvirt domain and the connection URI (default: libvirt's own default). */
  | { readonly libvirt: { readonly uri?: string; readonly domain: string; readonly freeze?: boolean } };

/** What to back up, and where to. Plain data: it crosses process boundaries as JSON. */
export interface VmBackupSpec {
  readonly repository: {
    /** A local path or an `s3:https://HOST/BUCKET/PREFIX` location. */
    readonly url: string;
    /** A file holding the passphrase (its trailing newline is not part of it); none for an unencrypted repository. */
    readonly passphraseFile?: string;
  };
  readonly vm: string;
  /** The hypervisor the VM runs on (recorded as the snapshot's hostname). */
  readonly host: string;
  readonly source: VmBackupSource;
  readonly tags?: readonly string[];
  /** The job that asked for it (recorded as a tag `job:NAME`). */
  readonly job?: string;
  /** Codec worker threads (default: every core). */
  readonly threads?: number;
}

/** Options of {@link runVmBackup}. */
export interface RunVmBackupOptions {
  signal?: AbortSignal;
  /** Progress, with the mean latency of the source reads since the previous call (the latency guard's measure). */
  onProgress?: (progress: VmBackupProgress) => void;
  /** Told of anything worth a line in the task's log (waits, warnings). */
  onLog?: (line: string) => void;
  /** Bandwidth: bytes read from the source, and bytes written to the repository. */
  limits?: { readonly sourceRead?: ByteThrottle; readonly repositoryWrite?: ByteThrottle };
  /** Injected clock for the reported times (tests). */
  clock?: () => Date;
}

/** Progress of {@link runVmBackup}. */
export interface VmBackupProgress extends BackupProgress {
  /** Mean milliseconds per source read since the previous progress report (absent when none ended). */
  sourceLatencyMs?: number;
}

/** The figures of one VM backup (issue #8, "per task and per VM"). */
export interface VmBackupResult {
  snapshot: string;
  vm: string;
  host: string;
  job?: string;
  started: string;
  ended: string;
  durationMs: number;
  bytesLogical: number;
  bytesRead: number;
  bytesNew: number;
  bytesStored: number;
  /** Bytes read from the source per second of the run. */
  throughput: number;
  /** New bytes over logical bytes (0..1): how much of the VM changed since the parent. */
  changeRate: number;
  mode: 'full' | 'incremental';
  /** Why full or incremental, per disk when they differ. */
  modeReason: string;
  consistency: 'application' | 'crash' | 'unknown';
  consistencyReason?: string;
  warnings: string[];
  bottleneck: Bottleneck;
  time: Omit<TimeBreakdown, 'bottleneck'>;
}

/**
 * Backs up one VM. Closes everything it opened, whatever happens.
 * @throws CofferError from the repository, the source or the backup (E_INTERRUPTED when aborted).
 */
export async function runVmBackup(spec: VmBackupSpec, options: RunVmBackupOptions = {}): Promise<VmBackupResult> {
  const clock = options.clock ?? (() => new Date());
  const started = clock();
  const threads = spec.threads;
  const meter = new BackupMeter(threads ?? (await import('node:os')).availableParallelism());
  const { signal } = options;
  const backend = new MeteredBackend(backendFor(spec.repository.url), meter, options.limits?.repositoryWrite, signal);
  const passphraseFile = spec.repository.passphraseFile;
  const repo = await openRepository(backend, {
    passphrase: passphraseFile === undefined ? undefined : () => readPassphraseFile(passphraseFile),
    ...(threads === undefined ? {} : { threads }),
  });
  const warnings: string[] = [];
  const warn = (line: string) => {
    warnings.push(line);
    options.onLog?.(`warning: ${line}`);
  };
  try {
    const parent: Snapshot | null = (await listSnapshots(repo, { vm: spec.vm })).at(-1) ?? null;
    const lease = await acquireBackupLease(repo, {
      ...(signal ? { signal } : {}),
      onWait: (holders) => options.onLog?.(`waiting for a prune to end (${holders.map((h) => `${h.host}, pid ${h.pid}`).join('; ')})`),
    });
    try {
      const opened = await openSource(spec, parent, signal, warn);
      const source = metered(opened, meter, options.limits?.sourceRead, signal);
      try {
        if ('skipped' in opened) for (const d of opened.skipped as { name: string; reason: string }[]) warn(`disk ${d.name} not backed up: ${d.reason}`);
        const snapshot = await backupVm(repo, source, {
          lease,
          parent,
          tags: [...(spec.tags ?? []), ...(spec.job === undefined ? [] : [`job:${spec.job}`])],
          hostname: spec.host,
          ...(signal ? { signal } : {}),
          ...(options.onProgress
            ? {
                onProgress: (p: BackupProgress) => {
                  const latency = meter.source.takeMeanLatencyMs();
                  options.onProgress?.(latency === undefined ? p : { ...p, sourceLatencyMs: latency });
                },
              }
            : {}),
        });
        return figures(spec, snapshot, started, clock(), meter.breakdown(), warnings);
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

function figures(spec: VmBackupSpec, snapshot: Snapshot, started: Date, ended: Date, time: TimeBreakdown, warnings: string[]): VmBackupResult {
  const { stats } = snapshot;
  const durationMs = Math.max(0, ended.getTime() - started.getTime());
  const { bottleneck, ...breakdown } = time;
  const mode = snapshot.parent === null ? 'full' : 'incremental';
  const modeReason = snapshot.parent === null
    ? 'no earlier snapshot of this VM'
    : `against snapshot ${snapshot.parent.slice(0, 8)}; ${snapshot.disks.map((d) => `${d.name}: ${trackingLabel(d.changeTracking)}`).join('; ')}`;
  return {
    snapshot: snapshot.id,
    vm: spec.vm,
    host: spec.host,
    ...(spec.job === undefined ? {} : { job: spec.job }),
    started: started.toISOString(),
    ended: ended.toISOString(),
    durationMs,
    bytesLogical: stats.bytesLogical,
    bytesRead: stats.bytesRead,
    bytesNew: stats.bytesNew,
    bytesStored: stats.bytesStored,
    throughput: Math.round(stats.bytesRead / Math.max(durationMs / 1000, 0.001)),
    changeRate: stats.bytesLogical === 0 ? 0 : stats.bytesNew / stats.bytesLogical,
    mode,
    modeReason,
    consistency: snapshot.consistency?.level ?? 'unknown',
    ...(snapshot.consistency?.reason === undefined ? {} : { consistencyReason: snapshot.consistency.reason }),
    warnings,
    bottleneck,
    time: breakdown,
  };
}

function trackingLabel(tracking: Snapshot['disks'][number]['changeTracking']): string {
  switch (tracking?.method) {
    case 'dirty-bitmap': return 'read only the blocks the dirty bitmap marked';
    case 'image-chain': return 'read only the image layers written since';
    case 'changed-ranges': return 'read only the changed ranges';
    default: return `read in full and deduplicated${tracking?.reason === undefined ? '' : ` (${tracking.reason})`}`;
  }
}

/** The source with each disk's reads timed and held to the read limit. */
function metered(source: VmSource, meter: BackupMeter, throttle: ByteThrottle | undefined, signal: AbortSignal | undefined): VmSource {
  const disks = source.disks.map((disk) => ({ ...disk, device: new MeteredDevice(disk.device, meter, throttle, signal) }));
  return {
    vm: source.vm,
    definition: source.definition,
    disks,
    ...(source.consistency === undefined ? {} : { consistency: source.consistency }),
    ...(source.commit === undefined ? {} : { commit: () => (source.commit as () => Promise<void>)() }),
    close: () => source.close(),
  };
}

async function openSource(spec: VmBackupSpec, parent: Snapshot | null, signal: AbortSignal | undefined, warn: (line: string) => void): Promise<VmSource> {
  const { source } = spec;
  if ('images' in source) {
    if (source.images.length === 0) throw new CofferError('E_USAGE', `VM ${spec.vm}: its source names no disk image`);
    return openImageSource(spec.vm, source.images, source.imageSnapshot === undefined ? {} : { imageSnapshot: source.imageSnapshot });
  }
  // The checkpoints the parent left: a live source reads only what changed since.
  const previous = new Map<string, string>();
  for (const disk of parent?.disks ?? []) if (disk.changeTracking?.checkpoint !== undefined) previous.set(disk.name, disk.changeTracking.checkpoint);
  if ('libvirt' in source) {
    return openLibvirtSource({
      vm: spec.vm, domain: source.libvirt.domain, previous,
      ...(source.libvirt.uri !== undefined ? { connect: source.libvirt.uri } : {}),
      ...(signal ? { signal } : {}),
      ...(source.libvirt.freeze === false ? { freeze: false } : {}),
      onThawFailed: warn,
    });
  }
  return openQemuSource({
    vm: spec.vm, qmp: qmpAddress(source.qmp), previous,
    ...(signal ? { signal } : {}),
    guestAgent: {
      ...(source.guestAgent !== undefined ? { agentSocket: source.guestAgent } : {}),
      ...(source.freeze === false ? { freeze: false } : {}),
      onEvent: (event) => {
        if (event.type === 'thaw-failed') warn(event.reason);
      },
    },
  });
}

/** `/run/vm.qmp` (a unix socket) or `HOST:PORT`. */
function qmpAddress(text: string): { path: string } | { host: string; port: number } {
  const tcp = /^([^/:]+|\[[0-9a-f:]+\]):(\d{1,5})$/i.exec(text);
  if (tcp !== null) return { host: (tcp[1] as string).replace(/^\[|\]$/g, ''), port: Number(tcp[2]) };
  return { path: text };
}

/** A local path (optionally `local:PATH`) or an `s3:` location (credentials from the AWS SDK's chain). */
function backendFor(location: string): Backend {
  if (isS3Location(location)) return new S3Backend(parseS3Location(location), {});
  if (/^[a-z][a-z0-9+]*:/i.test(location) && !location.startsWith('local:')) throw new CofferError('E_USAGE', `repository ${location}: not a local directory or an s3: location`);
  return new LocalBackend(location.replace(/^local:/, ''));
}

async function readPassphraseFile(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).replace(/\r?\n$/, '');
  } catch (error) {
    throw new CofferError('E_USAGE', `cannot read the passphrase file ${file}: ${(error as Error).message}`, { subject: { path: file }, cause: error });
  }
}
