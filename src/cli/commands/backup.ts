import { backupVm } from '../../backup/index.js';
import { CofferError } from '../../errors/index.js';
import { readFile } from 'node:fs/promises';
import { acquireBackupLease, listSnapshots, lockedBackendOf, resolveSnapshot, type Snapshot } from '../../repo/index.js';
import { NbdBlockDevice } from '../../nbd/index.js';
import { mergeRanges, openImageSource, openLibvirtSource, openQemuSource, parseChangedRanges, withChangedRanges, type ChangedRange, type FreezeEvent, type VmSource } from '../../source/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { runHook } from '../hooks.js';
import { formatBytes, formatDuration } from '../format.js';
import { ProgressReporter } from '../progress.js';
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
  qemu?: string;
  libvirt?: string;
  connect?: string;
  changedRanges?: string[];
  base?: string;
  verifyUnchanged?: string;
  preCapture?: string;
  postCapture?: string;
  guestAgent?: string;
  /** false with `--no-freeze`. */
  freeze?: boolean;
  freezeTimeout?: string;
}

const NAME = /^[^\u0000-\u001f\u007f]{1,200}$/;

/** `coffer backup --vm NAME DISK...`: one snapshot of the VM's disks (or, with `--files` or `--stdin`, of files). */
export async function backupCommand(disks: string[], options: BackupCommandOptions, context: CommandContext): Promise<number> {
  if (options.files === true || options.stdin === true) {
    const imageOnly = (['vm', 'qemu', 'libvirt', 'imageSnapshot', 'changedRanges', 'preCapture', 'postCapture', 'guestAgent', 'verifyUnchanged'] as const).find((key) => options[key] !== undefined);
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
  if (options.qemu === undefined && options.libvirt === undefined && disks.length === 0) throw new CofferError('E_USAGE', 'name at least one disk image or block device to back up (or --qemu QMP_SOCKET for a running VM)');
  const tags = options.tag ?? [];
  const badTag = tags.find((tag) => !NAME.test(tag));
  if (badTag !== undefined) throw new CofferError('E_USAGE', `tag ${JSON.stringify(badTag)} is not 1 to 200 printable characters`);
  let time: Date | undefined;
  if (options.time !== undefined) {
    time = new Date(options.time);
    if (Number.isNaN(time.getTime())) throw new CofferError('E_USAGE', `--time ${options.time} is not an ISO 8601 date`);
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
  const verifyUnchanged = options.verifyUnchanged === undefined ? undefined : parsePercent(options.verifyUnchanged);
  return withRepository(options, context, async (repo) => {
    const parent: Snapshot | null = options.base !== undefined ? await resolveSnapshot(repo, options.base) : (await listSnapshots(repo, { vm })).at(-1) ?? null;
    // Taken before any live capture starts: a prune running now is waited for first.
    const lease = await acquireBackupLease(repo, {
      signal: context.signal,
      onWait: (holders) => context.stderr.write(`waiting for a prune to end (${holders.map((h) => `${h.host}, pid ${h.pid}, since ${h.started}`).join('; ')})\n`),
    });
    let source: VmSource;
    try {
      source = await withRanges(await openSource(vm, disks, options, parent, context), ranges);
    } catch (error) {
      await lease.release().catch(() => {});
      throw error;
    }
    try {
      const progress = ProgressReporter.for(context.stderr, options.json === true);
      const snapshot = await backupVm(repo, source, {
        lease,
        tags,
        parent,
        ...(verifyUnchanged !== undefined ? { verifyUnchanged } : {}),
        ...(time ? { time } : {}),
        ...(options.host ? { hostname: options.host } : {}),
        signal: context.signal,
        onProgress: (p) =>
          progress.update({ label: `${vm} ${p.disk}`, done: p.vmBytesDone, total: p.vmBytesTotal, figures: { read: p.bytesRead, new: p.bytesNew } }),
      });
      progress.done();
      const stats = snapshot.stats;
      const consistency = snapshot.consistency === undefined ? {} : { consistency: snapshot.consistency };
      const skipped = 'skipped' in source ? (source.skipped as { name: string; reason: string }[]) : [];
      const tracking = snapshot.disks.map((d) => ({ name: d.name, ...(d.changeTracking === undefined ? {} : { changeTracking: d.changeTracking }) }));
      const locked = lockedBackendOf(repo)?.lastSnapshot;
      const lock = locked === undefined ? {} : { lock: { lockedUntil: locked.lockedUntil.toISOString(), checked: locked.checked, lookedUp: locked.lookedUp, extended: locked.extended, durationMs: locked.durationMs } };
      if (options.json) {
        context.stdout.write(`${JSON.stringify({ id: snapshot.id, vm: snapshot.vm, time: snapshot.time, parent: snapshot.parent, ...stats, disks: tracking, ...consistency, ...(skipped.length > 0 ? { skipped } : {}), ...lock })}\n`);
      } else {
        const seconds = stats.durationMs / 1000;
        const lines = [
          `vm ${vm}: ${snapshot.disks.length} disk(s), ${formatBytes(stats.bytesLogical)}${snapshot.parent ? `, compared with snapshot ${snapshot.parent.slice(0, 8)}` : ', no parent'}`,
        ];
        for (const d of tracking) {
          const t = d.changeTracking;
          if (t?.method === 'dirty-bitmap') lines.push(`  ${d.name}: read only what ${options.libvirt !== undefined ? 'the libvirt checkpoint' : 'QEMU\'s dirty bitmap'} marked since the last backup`);
          else if (t?.method === 'image-chain') lines.push(`  ${d.name}: read only the image layers written since the last backup`);
          else if (t?.method === 'changed-ranges') lines.push(`  ${d.name}: read only the changed ranges (${t.reason ?? 'given'})`);
          else if (t?.reason !== undefined) lines.push(`  ${d.name}: read in full: ${t.reason}`);
        }
        if (snapshot.consistency !== undefined) lines.push(`consistency: ${consistencyLabel(snapshot)}`);
        for (const d of skipped) lines.push(`  ${d.name}: not backed up: ${d.reason}`);
        if (locked !== undefined) {
          lines.push(`locked until ${locked.lockedUntil.toISOString()} (Object Lock): ${locked.checked} object(s) checked, ${locked.lookedUp} asked, ${locked.extended} extended`);
        }
        lines.push(
          `read ${formatBytes(stats.bytesRead)}, new ${formatBytes(stats.bytesNew)}, stored ${formatBytes(stats.bytesStored)} in ${formatDuration(seconds)} (${formatBytes(stats.bytesRead / Math.max(seconds, 0.001))}/s)`,
          `snapshot ${snapshot.id} saved`,
        );
        context.stdout.write(`${lines.join('\n')}\n`);
      }
      return 0;
    } finally {
      await source.close();
      await lease.release().catch(() => {});
    }
  });
}

/** `--libvirt` excludes disk images, `--qemu` and the image options; `--connect` needs it. */
function checkLibvirtOptions(disks: string[], options: BackupCommandOptions): void {
  if (options.connect !== undefined && options.libvirt === undefined) throw new CofferError('E_USAGE', '--connect URI names the libvirt to reach: use it with --libvirt DOMAIN');
  if (options.libvirt === undefined) return;
  if (options.libvirt === '' || !NAME.test(options.libvirt)) throw new CofferError('E_USAGE', '--libvirt DOMAIN: give a domain name, UUID or id');
  if (options.qemu !== undefined) throw new CofferError('E_USAGE', '--libvirt and --qemu are two ways to reach a running VM: give one');
  if (disks.length > 0) throw new CofferError('E_USAGE', '--libvirt backs up the disks of the running domain: name no disk images with it');
  if (options.imageSnapshot !== undefined) throw new CofferError('E_USAGE', '--image-snapshot applies to image files, not to --libvirt');
  if ((options.changedRanges ?? []).length > 0) throw new CofferError('E_USAGE', '--changed-ranges applies to disk images, not to --libvirt (libvirt checkpoints track changes)');
}

/** Image files, or a running QEMU VM or libvirt domain whose checkpoints the parent snapshot recorded. */
async function openSource(vm: string, disks: string[], options: BackupCommandOptions, parent: { disks: { name: string; changeTracking?: { checkpoint?: string } }[] } | null, context: CommandContext): Promise<VmSource> {
  if (options.qemu === undefined && options.libvirt === undefined) return openImageSource(vm, disks, options.imageSnapshot === undefined ? {} : { imageSnapshot: options.imageSnapshot });
  const previous = new Map<string, string>();
  for (const disk of parent?.disks ?? []) if (disk.changeTracking?.checkpoint !== undefined) previous.set(disk.name, disk.changeTracking.checkpoint);
  const { preCapture, postCapture } = options;
  const hooks = {
    ...(preCapture !== undefined ? { beforeCapture: () => runHook(preCapture, 'pre-capture', vm, context.stderr) } : {}),
    ...(postCapture !== undefined
      ? {
          // The capture happened (or failed) already: a failing post hook is reported, not fatal.
          afterCapture: () => runHook(postCapture, 'post-capture', vm, context.stderr).catch((error: unknown) => {
            context.stderr.write(`coffer: warning: ${(error as Error).message}\n`);
          }),
        }
      : {}),
  };
  if (options.libvirt !== undefined) {
    return openLibvirtSource({
      vm, domain: options.libvirt, ...(options.connect !== undefined ? { connect: options.connect } : {}), previous, signal: context.signal, hooks,
      ...(options.freeze === false ? { freeze: false } : {}),
      onThawFailed: (reason) => context.stderr.write(`coffer: warning: ${reason}\n`),
    });
  }
  const guestAgent = {
    ...(options.guestAgent !== undefined ? { agentSocket: options.guestAgent } : {}),
    ...(options.freeze === false ? { freeze: false } : {}),
    ...(options.freezeTimeout !== undefined ? { freezeTimeoutMs: parseSeconds(options.freezeTimeout, '--freeze-timeout') } : {}),
    onEvent: (event: FreezeEvent) => {
      if (event.type === 'thaw-failed') context.stderr.write(`coffer: warning: ${event.reason}\n`);
    },
  };
  return openQemuSource({ vm, qmp: qmpAddress(options.qemu as string), previous, signal: context.signal, hooks, guestAgent });
}

/** `/run/vm.qmp` (a unix socket) or `HOST:PORT`. */
function qmpAddress(text: string): { path: string } | { host: string; port: number } {
  const tcp = /^([^/:]+|\[[0-9a-f:]+\]):(\d{1,5})$/i.exec(text);
  if (tcp !== null) return { host: (tcp[1] as string).replace(/^\[|\]$/g, ''), port: Number(tcp[2]) };
  return { path: text };
}

/** Each disk's device marked with the changed ranges of its list (files read and checked first). */
async function withRanges(source: VmSource, files: string[]): Promise<VmSource> {
  if (files.length === 0) return source;
  try {
    const disks = [];
    for (const [i, disk] of source.disks.entries()) {
      const file = files[i] as string;
      const ranges = /^nbds?(\+unix)?:\/\//.test(file) ? await rangesFromNbdBitmap(file) : parseChangedRanges(await readRangesFile(file), file);
      // The list replaces any other tracking: no image-chain layers mixed in.
      disks.push({ name: disk.name, format: disk.format, location: disk.location, device: withChangedRanges(disk.device, ranges), changeTracking: { givenRanges: file } });
    }
    return { vm: source.vm, definition: source.definition, disks, close: () => source.close() };
  } catch (error) {
    await source.close();
    throw error;
  }
}

async function readRangesFile(file: string): Promise<string> {
  return readFile(file, 'utf8').catch((error: unknown) => {
    throw new CofferError('E_USAGE', `--changed-ranges ${file}: ${(error as Error).message}`);
  });
}

/**
 * The dirty ranges of a `qemu:dirty-bitmap:NAME` context, from an NBD URI with a `bitmap=NAME`
 * query parameter (e.g. `qemu-nbd -B NAME` or QEMU's own export of a bitmap).
 */
async function rangesFromNbdBitmap(uri: string): Promise<ChangedRange[]> {
  const bitmap = new URL(uri).searchParams.get('bitmap');
  if (bitmap === null || bitmap === '') throw new CofferError('E_USAGE', `--changed-ranges ${uri}: add bitmap=NAME (the qemu:dirty-bitmap context to read)`);
  const device = await NbdBlockDevice.open(uri, { dirtyBitmap: bitmap });
  try {
    const ranges: ChangedRange[] = [];
    for await (const extent of device.extents()) if (extent.changed === true) ranges.push({ offset: extent.offset, length: extent.length });
    return mergeRanges(ranges);
  } finally {
    await device.close();
  }
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
