import path from 'node:path';
import { runVmBackup, type VmBackupRequest, type VmBackupResult, type VmBackupSource } from '../../backup/index.js';
import { CofferError } from '../../errors/index.js';
import { cacheDirectoryOf, checkTags } from '../../repo/index.js';
import { openFromOptions, type CommandContext, type RepositoryOptions } from '../context.js';
import { formatBytes, formatDuration, parseSize } from '../format.js';
import { parseIsoTime } from '../iso-time.js';
import { ProgressReporter } from '../progress.js';
import { parseSourceFormat } from '../source-format.js';
import { consistencyLabel } from './snapshots.js';
import type { FileBackupCommandOptions } from './backup-files.js';

export interface BackupCommandOptions extends RepositoryOptions, FileBackupCommandOptions {
  /** Back up the paths given as files (backup-files.ts). */
  files?: boolean;
  vm?: string;
  tag?: string[];
  time?: string;
  host?: string;
  imageSnapshot?: string;
  sourceFormat?: string;
  qemu?: string;
  libvirt?: string;
  connect?: string;
  changedRanges?: string[];
  base?: string;
  verifyUnchanged?: string;
  /** false with `--no-cache`. */
  cache?: boolean;
  preCapture?: string;
  postCapture?: string;
  guestAgent?: string;
  /** false with `--no-freeze`. */
  freeze?: boolean;
  freezeTimeout?: string;
  scratchDir?: string;
  scratchMinFree?: string;
}

const NAME = /^[^\u0000-\u001f\u007f]{1,200}$/;

/** `coffer backup --vm NAME DISK...`: one snapshot of the VM's disks (or, with `--files` or `--stdin`, of files). */
export async function backupCommand(disks: string[], options: BackupCommandOptions, context: CommandContext): Promise<number> {
  if (options.files === true || options.stdin === true) {
    const imageOnly = (['vm', 'qemu', 'libvirt', 'imageSnapshot', 'sourceFormat', 'changedRanges', 'preCapture', 'postCapture', 'guestAgent', 'verifyUnchanged', 'scratchDir', 'scratchMinFree'] as const).find((key) => options[key] !== undefined);
    if (imageOnly !== undefined) throw new CofferError('E_USAGE', `--${imageOnly.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is about VM disks: it does not go with --files or --stdin`);
    return (await import('./backup-files.js')).backupFilesCommand(disks, options, context);
  }
  const fileOnly = (['force', 'exclude', 'excludeFile', 'excludeCaches', 'oneFileSystem', 'excludeLargerThan', 'stdinName', 'preHook', 'postHook', 'hookTimeout'] as const).find((key) => options[key] !== undefined);
  if (fileOnly !== undefined) throw new CofferError('E_USAGE', `--${fileOnly.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} is about file backups: use it with --files or --stdin`);
  checkLibvirtOptions(disks, options);
  const vm = options.vm ?? options.libvirt;
  if (vm === undefined || !NAME.test(vm)) throw new CofferError('E_USAGE', '--vm NAME is required (1 to 200 printable characters)');
  if (options.qemu !== undefined && disks.length > 0) throw new CofferError('E_USAGE', '--qemu backs up the disks of the running VM: name no disk images with it');
  if (options.qemu !== undefined && options.imageSnapshot !== undefined) throw new CofferError('E_USAGE', '--image-snapshot applies to image files, not to --qemu');
  if (options.qemu !== undefined && options.sourceFormat !== undefined) throw new CofferError('E_USAGE', '--source-format applies to image files, not to --qemu');
  if (options.qemu === undefined && options.libvirt === undefined && disks.length === 0) throw new CofferError('E_USAGE', 'name at least one disk image or block device to back up (or --qemu QMP_SOCKET for a running VM)');
  const tags = options.tag ?? [];
  checkTags(tags);
  let time: Date | undefined;
  if (options.time !== undefined) {
    time = parseIsoTime(options.time, '--time');
  }
  const ranges = options.changedRanges ?? [];
  if (ranges.length > 0 && options.qemu !== undefined) throw new CofferError('E_USAGE', '--changed-ranges applies to disk images, not to --qemu (QEMU tracks its own changes)');
  if (ranges.length > 0 && ranges.length !== disks.length) throw new CofferError('E_USAGE', `give one --changed-ranges per disk, in the same order (${disks.length} disk(s), ${ranges.length} list(s))`);
  if ((ranges.length > 0) !== (options.base !== undefined)) throw new CofferError('E_USAGE', '--changed-ranges and --base SNAPSHOT go together: the ranges say what changed since that snapshot');
  if ((options.preCapture !== undefined || options.postCapture !== undefined) && options.qemu === undefined && options.libvirt === undefined) {
    throw new CofferError('E_USAGE', '--pre-capture and --post-capture run around the instant a running VM is captured: use them with --qemu or --libvirt');
  }
  if (options.freeze === false && options.qemu === undefined && options.libvirt === undefined) {
    throw new CofferError('E_USAGE', '--no-freeze is about freezing a running VM\'s filesystems: use it with --qemu or --libvirt');
  }
  if ((options.guestAgent !== undefined || options.freezeTimeout !== undefined) && options.qemu === undefined) {
    throw new CofferError('E_USAGE', '--guest-agent and --freeze-timeout freeze a running QEMU VM\'s filesystems: use them with --qemu (libvirt talks to its domains\' agents itself)');
  }
  if (options.guestAgent !== undefined && options.freeze === false) throw new CofferError('E_USAGE', '--guest-agent names the agent to freeze with: it contradicts --no-freeze');
  if (options.freezeTimeout !== undefined) parseSeconds(options.freezeTimeout, '--freeze-timeout'); // refused before anything starts
  if ((options.scratchDir !== undefined || options.scratchMinFree !== undefined) && options.qemu === undefined && options.libvirt === undefined) {
    throw new CofferError('E_USAGE', '--scratch-dir and --scratch-min-free are about the scratch images of a running VM\'s capture: use them with --qemu or --libvirt');
  }
  if (options.scratchMinFree !== undefined) scratchMinFree(options.scratchMinFree);
  const verifyUnchanged = options.verifyUnchanged === undefined ? undefined : parsePercent(options.verifyUnchanged);
  const request: VmBackupRequest = {
    vm,
    source: sourceOf(disks, options),
    tags,
    ...(time ? { time: time.toISOString() } : {}),
    ...(options.host ? { host: options.host } : {}),
    ...(options.base !== undefined ? { base: options.base } : {}),
    ...(verifyUnchanged !== undefined ? { verifyUnchanged } : {}),
  };
  const progress = ProgressReporter.for(context.stderr, options.json === true);
  const result = await runVmBackup(request, {
    openRepository: (wrapBackend) => openFromOptions(options, context, { wrapBackend, startThreads: true }), // the threads load while the key is derived
    cacheDirectory: options.cache === false ? undefined : cacheDirectoryOf(context.env),
    signal: context.signal,
    onEvent: (event) => {
      if (event.type === 'waiting-for-prune') {
        context.stderr.write(`waiting for a prune to end (${event.holders.map((h) => `${h.host}, pid ${h.pid}, since ${h.started}`).join('; ')})\n`);
      } else if (event.type === 'hook-output') context.stderr.write(event.data);
      else if (event.about !== 'skipped-disk') context.stderr.write(`coffer: warning: ${event.message}\n`); // skipped disks: in the summary
    },
    onProgress: (p) =>
      progress.update({ label: `${vm} ${p.disk}`, done: p.vmBytesDone, total: p.vmBytesTotal, figures: { read: p.bytesRead, new: p.bytesNew } }),
  });
  progress.done();
  context.stdout.write(options.json ? `${JSON.stringify(backupJson(result))}\n` : `${backupSummary(result, options.libvirt !== undefined).join('\n')}\n`);
  return 0;
}

/** What `--json` prints: the snapshot, its figures, and where the time went. */
function backupJson(result: VmBackupResult): Record<string, unknown> {
  const { objectLock, skipped, consistencyRecord } = result;
  return {
    id: result.snapshot,
    vm: result.vm,
    time: result.snapshotTime,
    parent: result.parent,
    bytesLogical: result.bytesLogical,
    bytesRead: result.bytesRead,
    bytesMatched: result.bytesMatched ?? 0,
    bytesNew: result.bytesNew,
    bytesStored: result.bytesStored,
    durationMs: result.backupMs,
    disks: result.disks,
    ...(consistencyRecord === undefined ? {} : { consistency: consistencyRecord }),
    ...(skipped.length > 0 ? { skipped } : {}),
    ...(result.warnings.length > 0 ? { warnings: result.warnings } : {}),
    ...(objectLock === undefined ? {} : { lock: objectLock }),
    bottleneck: result.bottleneck,
    timeBreakdown: result.time,
  };
}

/** The text summary's lines. */
function backupSummary(result: VmBackupResult, libvirt: boolean): string[] {
  const seconds = result.backupMs / 1000;
  const lines = [
    `vm ${result.vm}: ${result.disks.length} disk(s), ${formatBytes(result.bytesLogical)}${result.parent ? `, compared with snapshot ${result.parent.slice(0, 8)}` : ', no parent'}`,
  ];
  for (const d of result.disks) {
    const t = d.changeTracking;
    if (t?.method === 'dirty-bitmap') lines.push(`  ${d.name}: read only what ${libvirt ? 'the libvirt checkpoint' : 'QEMU\'s dirty bitmap'} marked since the last backup`);
    else if (t?.method === 'image-chain') lines.push(`  ${d.name}: read only the image layers written since the last backup`);
    else if (t?.method === 'changed-ranges') lines.push(`  ${d.name}: read only the changed ranges (${t.reason ?? 'given'})`);
    else if (t?.reason !== undefined) lines.push(`  ${d.name}: read in full: ${t.reason}`);
  }
  if (result.consistencyRecord !== undefined) lines.push(`consistency: ${consistencyLabel({ consistency: result.consistencyRecord })}`);
  for (const d of result.skipped) lines.push(`  ${d.name}: not backed up: ${d.reason}`);
  const locked = result.objectLock;
  if (locked !== undefined) {
    lines.push(`locked until ${locked.lockedUntil} (Object Lock): ${locked.checked} object(s) checked, ${locked.lookedUp} asked, ${locked.extended} extended`);
  }
  lines.push(
    `read ${formatBytes(result.bytesRead)}${result.bytesMatched ? ` (${formatBytes(result.bytesMatched)} of it unchanged by fingerprint, not hashed)` : ''}, new ${formatBytes(result.bytesNew)}, stored ${formatBytes(result.bytesStored)} in ${formatDuration(seconds)} (${formatBytes(result.bytesRead / Math.max(seconds, 0.001))}/s)`,
    `time: ${timeShares(result.time)}; bottleneck: ${result.bottleneck}`,
    `snapshot ${result.snapshot} saved`,
  );
  return lines;
}

/** `source 62%, repository 20%, cpu 35%, throttle 0% of 4.1 s` (shares of the run's wall time; CPU over every thread). */
function timeShares(time: VmBackupResult['time']): string {
  const wall = Math.max(time.wallMs, 1);
  const share = (ms: number) => `${Math.round((100 * ms) / wall)}%`;
  return `source ${share(time.sourceMs)}, repository ${share(time.repositoryMs)}, cpu ${share(time.cpuMs)}, throttle ${share(time.throttleMs)} of ${(time.wallMs / 1000).toFixed(1)} s`;
}

/** The request's source: a running QEMU VM, a libvirt domain, or image files (with their changed ranges). */
function sourceOf(disks: string[], options: BackupCommandOptions): VmBackupSource {
  const hooks = {
    ...(options.preCapture !== undefined ? { pre: options.preCapture } : {}),
    ...(options.postCapture !== undefined ? { post: options.postCapture } : {}),
  };
  const scratch = {
    ...(options.scratchDir !== undefined ? { dir: path.resolve(options.scratchDir) } : {}),
    ...(options.scratchMinFree !== undefined ? { minFreeBytes: scratchMinFree(options.scratchMinFree) } : {}),
  };
  const scratchOption = Object.keys(scratch).length > 0 ? { scratch } : {};
  if (options.libvirt !== undefined) {
    return {
      libvirt: { domain: options.libvirt, ...(options.connect !== undefined ? { uri: options.connect } : {}), ...(options.freeze === false ? { freeze: false } : {}) },
      hooks,
      ...scratchOption,
    };
  }
  if (options.qemu !== undefined) {
    return {
      qmp: options.qemu,
      ...(options.guestAgent !== undefined ? { guestAgent: options.guestAgent } : {}),
      ...(options.freeze === false ? { freeze: false } : {}),
      ...(options.freezeTimeout !== undefined ? { freezeTimeoutMs: parseSeconds(options.freezeTimeout, '--freeze-timeout') } : {}),
      hooks,
      ...scratchOption,
    };
  }
  const ranges = options.changedRanges ?? [];
  return {
    images: disks,
    ...(options.imageSnapshot !== undefined ? { imageSnapshot: options.imageSnapshot } : {}),
    ...(options.sourceFormat !== undefined ? { sourceFormat: parseSourceFormat(options.sourceFormat) } : {}),
    ...(ranges.length > 0 ? { changedRanges: ranges } : {}),
  };
}

/** `--libvirt` excludes disk images, `--qemu` and the image options; `--connect` needs it. */
function checkLibvirtOptions(disks: string[], options: BackupCommandOptions): void {
  if (options.connect !== undefined && options.libvirt === undefined) throw new CofferError('E_USAGE', '--connect URI names the libvirt to reach: use it with --libvirt DOMAIN');
  if (options.libvirt === undefined) return;
  if (options.libvirt === '' || !NAME.test(options.libvirt)) throw new CofferError('E_USAGE', '--libvirt DOMAIN: give a domain name, UUID or id');
  if (options.qemu !== undefined) throw new CofferError('E_USAGE', '--libvirt and --qemu are two ways to reach a running VM: give one');
  if (disks.length > 0) throw new CofferError('E_USAGE', '--libvirt backs up the disks of the running domain: name no disk images with it');
  if (options.imageSnapshot !== undefined) throw new CofferError('E_USAGE', '--image-snapshot applies to image files, not to --libvirt');
  if (options.sourceFormat !== undefined) throw new CofferError('E_USAGE', '--source-format applies to image files, not to --libvirt');
  if ((options.changedRanges ?? []).length > 0) throw new CofferError('E_USAGE', '--changed-ranges applies to disk images, not to --libvirt (libvirt checkpoints track changes)');
}

/** `90` or `2.5` seconds → milliseconds. */
function parseSeconds(text: string, option: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0 || value > 3600) throw new CofferError('E_USAGE', `${option} ${text}: give a number of seconds above 0 and at most 3600`);
  return Math.round(value * 1000);
}

/** `5%`, `5` or `0.5%` → a fraction. */
function parsePercent(text: string): number {
  const value = Number(text.replace(/%$/, ''));
  if (!Number.isFinite(value) || value <= 0 || value > 100) throw new CofferError('E_USAGE', `--verify-unchanged ${text}: give a percentage above 0 and at most 100, e.g. 2%`);
  return value / 100;
}

/** `--scratch-min-free SIZE` in bytes (at least 1M). */
function scratchMinFree(text: string): number {
  const bytes = parseSize(text);
  if (!Number.isSafeInteger(bytes) || bytes < 1024 * 1024) throw new CofferError('E_USAGE', `--scratch-min-free ${text}: give a size of at least 1M (e.g. 512M, 2G)`);
  return bytes;
}
