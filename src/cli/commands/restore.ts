import { TARGET_FORMATS, type TargetFormat } from '../../disk/index.js';
import { CofferError } from '../../errors/index.js';
import { printableName, printableText } from '../../names/index.js';
import { resolveSnapshot } from '../../repo/index.js';
import { restoreFileSnapshot, restoreSnapshot } from '../../restore/index.js';
import { ExitCode } from '../exit-codes.js';
import { withRepository, type CommandContext, type RepositoryOptions } from '../context.js';
import { refuseInsideRepository } from '../inside-repository.js';
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
  /** File snapshots: what to restore, and whether to read it back. */
  include?: string[];
  exclude?: string[];
  verify?: boolean;
  /** File snapshots: owners by their recorded ids, names ignored. */
  numericOwner?: boolean;
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
    if (to !== undefined) await refuseInsideRepository(repo.location, to, '--to');
    const snapshot = await resolveSnapshot(repo, reference);
    if (snapshot.files !== undefined) {
      if (options.disk !== undefined || options.format !== undefined || options.overwrite === true || to === '-') throw new CofferError('E_USAGE', `snapshot ${snapshot.id.slice(0, 8)} holds files: restore it --to an empty DIR (--disk, --format, --overwrite and - are for disks)`);
      const report = await restoreFileSnapshot(repo, snapshot, { to, include: options.include ?? [], exclude: options.exclude ?? [], verify: options.verify === true, numericOwner: options.numericOwner === true, signal: context.signal });
      if (options.json) context.stdout.write(`${JSON.stringify({ snapshot: snapshot.id, to, ...report })}\n`);
      else {
        for (const p of report.problems) context.stderr.write(`coffer: ${printableName(p.path)}: ${printableText(p.message)}\n`); // bytes that are not UTF-8 as \xNN
        context.stdout.write(`restored ${snapshot.id.slice(0, 8)} to ${printableName(to)}: ${report.files} files (${formatBytes(report.bytes)}), ${report.directories} folders, ${report.symlinks} symlinks, ${report.hardLinks} hard links, ${report.special} special${options.verify === true ? `, ${report.verified} verified` : ''}; read ${formatBytes(report.fetched.bytes)} from the repository${report.problems.length > 0 ? `; ${report.problems.length} problems` : ''}\n`);
      }
      return report.problems.some((p) => /differ|E_CORRUPT|E_MISSING|chunk/.test(p.message)) ? ExitCode.verifyFailed : report.problems.length > 0 ? ExitCode.targetUnwritable : 0;
    }
    if (options.include !== undefined || options.exclude !== undefined || options.verify === true || options.numericOwner === true) throw new CofferError('E_USAGE', '--include, --exclude, --verify and --numeric-owner are for file snapshots');
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
  }, { startThreads: true }); // restoring is decompressing: the threads load while the key is derived
}
