import { TARGET_FORMATS, type TargetFormat } from '../../disk/index.js';
import { CofferError } from '../../errors/index.js';
import { resolveSnapshot } from '../../repo/index.js';
import { restoreSnapshot } from '../../restore/index.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { formatBytes } from '../format.js';
import { ProgressReporter } from '../progress.js';
import { restoreAsVmCommand } from './restore-as-vm.js';
import { restoreToVmCommand } from './restore-to-vm.js';

export interface RestoreCommandOptions extends RepositoryOptions {
  disk?: string;
  format?: string;
  to?: string;
  overwrite?: boolean;
  /** Restore as a new VM of this name (restore-as-vm.ts). */
  asVm?: string;
  define?: boolean;
  connect?: string;
  /** Move the running VM behind this QMP monitor onto local storage (restore-to-vm.ts). */
  toVm?: string;
}

/** `coffer restore SNAPSHOT --to PATH [--format F]`: disks back as images, byte for byte. */
export async function restoreCommand(reference: string | undefined, options: RestoreCommandOptions, context: CommandContext): Promise<number> {
  if (options.toVm !== undefined) return restoreToVmCommand(reference, { ...options, toVm: options.toVm }, context);
  if (reference === undefined) throw new CofferError('E_USAGE', 'name the snapshot to restore (an id or prefix, latest, or NAME:latest)');
  if (options.asVm !== undefined) return restoreAsVmCommand(reference, { ...options, asVm: options.asVm }, context);
  if (options.define === true || options.connect !== undefined) throw new CofferError('E_USAGE', '--define and --connect go with --as-vm');
  if (options.to === undefined) throw new CofferError('E_USAGE', '--to PATH is required (a file, a block device, - for standard output, or a directory for several disks)');
  const to = options.to;
  const format = options.format ?? 'raw';
  if (!(TARGET_FORMATS as readonly string[]).includes(format)) throw new CofferError('E_USAGE', `--format ${format}: choose one of ${TARGET_FORMATS.join(', ')}`);
  return withRepository(options, context, async (repo) => {
    const snapshot = await resolveSnapshot(repo, reference);
    const progress = ProgressReporter.for(context.stderr, options.json === true);
    const results = await restoreSnapshot(repo, snapshot, {
      to,
      ...(options.disk !== undefined ? { disk: options.disk } : {}),
      format: format as TargetFormat,
      overwrite: options.overwrite === true,
      stdout: context.stdout,
      signal: context.signal,
      onProgress: (p) => progress.update({ label: `restore ${p.disk}`, done: p.bytesDone, total: p.bytesTotal }),
    });
    progress.done();
    const summary = results.map((r) => ({ disk: r.disk, path: r.path, bytes: r.progress.bytesTotal, bytesWritten: r.progress.bytesWritten }));
    if (to === '-') {
      if (options.json) context.stderr.write(`${JSON.stringify({ snapshot: snapshot.id, disks: summary })}\n`);
    } else if (options.json) {
      context.stdout.write(`${JSON.stringify({ snapshot: snapshot.id, disks: summary })}\n`);
    } else {
      for (const r of summary) context.stdout.write(`restored ${snapshot.id.slice(0, 8)} ${r.disk} (${formatBytes(r.bytes)}) to ${r.path}\n`);
    }
    return 0;
  });
}
