/**
 * Opens the source of a {@link VmBackupRequest}: image files (their disks marked with the
 * given changed ranges, if any), a running QEMU VM (guest freeze through its agent, capture
 * hooks) or a libvirt domain (capture hooks; libvirt freezes). A live source starts from the
 * checkpoints the parent snapshot recorded, so only what changed since is read.
 */
import { stat } from 'node:fs/promises';
import { CofferError } from '../errors/index.js';
import type { Snapshot } from '../repo/index.js';
import { openImageSource, openLibvirtSource, openQemuSource, readChangedRanges, withChangedRanges, type CaptureHooks, type VmSource } from '../source/index.js';
import { runCaptureHook } from './capture-hook.js';
import type { CaptureHookCommands, VmBackupEvent, VmBackupRequest } from './vm-backup-spec.js';

/** The source, and the disks it leaves out (a libvirt domain's unreadable ones). */
export interface OpenedVmSource {
  source: VmSource;
  skipped: { name: string; reason: string }[];
}

/**
 * Opens the request's source. `emit` is told of hook output and of warnings (a failed thaw,
 * a failed post-capture hook).
 * @throws CofferError from the source; E_USAGE for a request that names no image or not one
 * ranges list per image.
 */
export async function openVmSource(request: VmBackupRequest, how: { parent: Snapshot | null; signal?: AbortSignal; emit: (event: VmBackupEvent) => void }): Promise<OpenedVmSource> {
  const { source } = request;
  const { signal, emit } = how;
  if ('images' in source) {
    if (source.images.length === 0) throw new CofferError('E_USAGE', `VM ${request.vm}: its source names no disk image`);
    const ranges = source.changedRanges ?? [];
    if (ranges.length > 0 && ranges.length !== source.images.length) {
      throw new CofferError('E_USAGE', `VM ${request.vm}: give one changed-ranges list per disk, in the same order (${source.images.length} disk(s), ${ranges.length} list(s))`);
    }
    const images = await openImageSource(request.vm, [...source.images], {
      ...(source.imageSnapshot === undefined ? {} : { imageSnapshot: source.imageSnapshot }),
      ...(source.sourceFormat === undefined ? {} : { format: source.sourceFormat }),
    });
    if (source.sourceFormat === undefined) await warnOfProbedDevices(source.images, images, emit);
    return { source: await withRanges(images, ranges), skipped: [] };
  }
  if ('agent' in source) throw new CofferError('E_USAGE', `VM ${request.vm}: its files are backed up by the agent ${source.agent} (coffer agent), not by this process`);
  // The checkpoints the parent left: a live source reads only what changed since.
  const previous = new Map<string, string>();
  for (const disk of how.parent?.disks ?? []) if (disk.changeTracking?.checkpoint !== undefined) previous.set(disk.name, disk.changeTracking.checkpoint);
  const hooks = captureHooks(request.vm, source.hooks, emit);
  const warn = (about: 'thaw' | 'post-capture-hook') => (message: string) => emit({ type: 'warning', about, message });
  if ('libvirt' in source) {
    const opened = await openLibvirtSource({
      vm: request.vm, domain: source.libvirt.domain, previous, hooks,
      ...(source.libvirt.uri !== undefined ? { connect: source.libvirt.uri } : {}),
      ...(signal ? { signal } : {}),
      ...(source.libvirt.freeze === false ? { freeze: false } : {}),
      ...(source.scratch?.dir !== undefined ? { scratchDir: source.scratch.dir } : {}),
      ...(source.scratch?.minFreeBytes !== undefined ? { scratchMinFreeBytes: source.scratch.minFreeBytes } : {}),
      onThawFailed: warn('thaw'),
    });
    return { source: opened, skipped: opened.skipped.map((d) => ({ name: d.name, reason: d.reason })) };
  }
  const opened = await openQemuSource({
    vm: request.vm, qmp: qmpAddress(source.qmp), previous, hooks,
    ...(signal ? { signal } : {}),
    ...(source.scratch?.dir !== undefined ? { scratchDir: source.scratch.dir } : {}),
    ...(source.scratch?.minFreeBytes !== undefined ? { scratchMinFreeBytes: source.scratch.minFreeBytes } : {}),
    guestAgent: {
      ...(source.guestAgent !== undefined ? { agentSocket: source.guestAgent } : {}),
      ...(source.freeze === false ? { freeze: false } : {}),
      ...(source.freezeTimeoutMs !== undefined ? { freezeTimeoutMs: source.freezeTimeoutMs } : {}),
      onEvent: (event) => {
        if (event.type === 'thaw-failed') warn('thaw')(event.reason);
      },
    },
  });
  return { source: opened, skipped: [] };
}

/**
 * A block device (a logical volume, a LUN) whose content shows an image with a backing file
 * was read as that chain because nothing said its format. That is right for qcow2 on logical
 * volumes (oVirt's block storage), and wrong for a guest's raw disk whose guest wrote an image
 * header at its start: the chain it names (any host file) was read into the backup. Told, so
 * the administrator says which: `--source-format raw`, or the format to confirm.
 */
async function warnOfProbedDevices(paths: readonly string[], source: VmSource, emit: (event: VmBackupEvent) => void): Promise<void> {
  for (const [i, disk] of source.disks.entries()) {
    const path = paths[i];
    if (path === undefined || disk.format === 'raw' || disk.otherFiles === undefined) continue;
    const isDevice = await stat(path).then((s) => s.isBlockDevice(), () => false);
    if (!isDevice) continue;
    const chain = disk.otherFiles.join(', ');
    emit({
      type: 'warning',
      about: 'probed-device',
      message: `block device ${path} holds a ${disk.format} image that made Coffer read other files (${chain}) into this backup: if it is a guest's raw disk, its guest wrote that header and named those files; back it up with --source-format raw (or --source-format ${disk.format} to confirm it is an image)`,
    });
  }
}

/** The hook commands as the capture's hooks: a failing pre hook refuses the capture, a failing post hook is a warning (the capture happened, or failed, already). */
function captureHooks(vm: string, commands: CaptureHookCommands | undefined, emit: (event: VmBackupEvent) => void): CaptureHooks {
  const output = (data: Buffer) => emit({ type: 'hook-output', data });
  const { pre, post } = commands ?? {};
  return {
    ...(pre !== undefined ? { beforeCapture: () => runCaptureHook(pre, { phase: 'pre-capture', vm, output }) } : {}),
    ...(post !== undefined
      ? {
          afterCapture: () => runCaptureHook(post, { phase: 'post-capture', vm, output }).catch((error: unknown) => {
            emit({ type: 'warning', about: 'post-capture-hook', message: (error as Error).message });
          }),
        }
      : {}),
  };
}

/** `/run/vm.qmp` (a unix socket) or `HOST:PORT`. */
function qmpAddress(text: string): { path: string } | { host: string; port: number } {
  const tcp = /^([^/:]+|\[[0-9a-f:]+\]):(\d{1,5})$/i.exec(text);
  if (tcp !== null) return { host: (tcp[1] as string).replace(/^\[|\]$/g, ''), port: Number(tcp[2]) };
  return { path: text };
}

/** Each disk's device marked with the changed ranges of its list (read and checked first); the source closed on failure. */
async function withRanges(source: VmSource, lists: readonly string[]): Promise<VmSource> {
  if (lists.length === 0) return source;
  try {
    const disks = [];
    for (const [i, disk] of source.disks.entries()) {
      const list = lists[i] as string;
      const ranges = await readChangedRanges(list);
      // The list replaces any other tracking: no image-chain layers mixed in.
      disks.push({ name: disk.name, format: disk.format, location: disk.location, device: withChangedRanges(disk.device, ranges), changeTracking: { givenRanges: list } });
    }
    return { vm: source.vm, definition: source.definition, disks, close: () => source.close() };
  } catch (error) {
    await source.close();
    throw error;
  }
}
