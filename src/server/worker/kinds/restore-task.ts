/**
 * The `restore` kind: a snapshot's disks back as images of any format Coffer writes (a file
 * for one disk, a folder for several), or as a clone VM with a new identity (`restoreAsVm`:
 * disks plus a libvirt XML or QEMU script); a file snapshot's files into a folder
 * (`restoreFileSnapshot`). The same library calls as `coffer restore`. Read-only on the
 * repository; a cancelled restore leaves a partial target, reported.
 */
import { printableName } from '../../../names/index.js';
import { resolveSnapshot, type Repository, type Snapshot } from '../../../repo/index.js';
import { restoreAsVm, restoreFileSnapshot, restoreSnapshot, type RestoreProgress } from '../../../restore/index.js';
import type { RestoreSpec } from './kind-specs.js';
import { withTaskRepository } from './open-repository.js';
import type { KindContext, TaskReport } from './task-report.js';

export async function runRestoreTask(spec: RestoreSpec, context: KindContext): Promise<TaskReport> {
  return withTaskRepository(spec.repository, async (repo): Promise<TaskReport> => {
    const snapshot = await resolveSnapshot(repo, spec.snapshot);
    if (snapshot.files !== undefined) return restoreFiles(repo, snapshot, spec, context);
    const total = spec.disk === undefined ? snapshot.disks.reduce((n, d) => n + d.size, 0) : undefined;
    const done = new Map<string, number>();
    const onProgress = (p: RestoreProgress) => {
      done.set(p.disk, p.bytesDone);
      const sum = [...done.values()].reduce((a, b) => a + b, 0);
      context.progress(sum, total ?? p.bytesTotal);
    };
    const started = Date.now();
    if (spec.asVm !== undefined) {
      context.log(`restoring snapshot ${snapshot.id.slice(0, 8)} of ${snapshot.vm} as a new VM ${spec.asVm} in ${spec.to} (${spec.format})`);
      const vm = await restoreAsVm(repo, snapshot, { name: spec.asVm, to: spec.to, format: spec.format, overwrite: spec.overwrite, signal: context.signal, onProgress });
      const bytes = vm.disks.reduce((n, d) => n + d.bytes, 0);
      return {
        summary: `restored ${snapshot.vm} as ${vm.name} (${vm.disks.length} disk(s)) in ${spec.to}; definition ${vm.definitionPath}`,
        warnings: vm.notes,
        figures: { disks: vm.disks.length, bytes, durationMs: Date.now() - started },
        detail: { snapshot: snapshot.id, vm: snapshot.vm, clone: vm },
      };
    }
    context.log(`restoring snapshot ${snapshot.id.slice(0, 8)} of ${snapshot.vm} to ${spec.to} as ${spec.format}`);
    const results = await restoreSnapshot(repo, snapshot, {
      to: spec.to, format: spec.format, overwrite: spec.overwrite, signal: context.signal, onProgress,
      ...(spec.disk === undefined ? {} : { disk: spec.disk }),
    });
    for (const r of results) context.log(`disk ${r.disk}: ${r.progress.bytesTotal} bytes to ${r.path} (${r.progress.bytesWritten} written, the rest left sparse)`);
    const bytes = results.reduce((n, r) => n + r.progress.bytesTotal, 0);
    const written = results.reduce((n, r) => n + r.progress.bytesWritten, 0);
    return {
      summary: `restored ${results.length} disk(s) of ${snapshot.vm} (snapshot ${snapshot.id.slice(0, 8)}) to ${spec.to} as ${spec.format}`,
      warnings: [],
      figures: { disks: results.length, bytes, bytesWritten: written, durationMs: Date.now() - started },
      detail: { snapshot: snapshot.id, vm: snapshot.vm, format: spec.format, disks: results.map((r) => ({ disk: r.disk, path: r.path, bytes: r.progress.bytesTotal })) },
    };
  });
}

/** Warnings listed for a file restore's problems, at most (the summary counts them all). */
const MAX_PROBLEM_WARNINGS = 50;

/**
 * A file snapshot's files into the folder `spec.to`. What could not be restored as recorded
 * (an owner or attribute the host refuses, a damaged file) does not stop the rest, as in
 * `coffer restore`: each is a warning (the task ends `warning`), the first ones listed.
 */
async function restoreFiles(repo: Repository, snapshot: Snapshot, spec: RestoreSpec, context: KindContext): Promise<TaskReport> {
  const started = Date.now();
  const total = snapshot.stats.bytesLogical;
  context.log(`restoring the files of snapshot ${snapshot.id.slice(0, 8)} of ${snapshot.vm} (${snapshot.files?.paths.join(', ') ?? ''}) into ${spec.to}`);
  const report = await restoreFileSnapshot(repo, snapshot, { to: spec.to, signal: context.signal, onProgress: (p) => context.progress(p.bytes, Math.max(total, p.bytes)) });
  const problems = report.problems.map((p) => `${printableName(p.path)}: ${p.message}`);
  const warnings = problems.slice(0, MAX_PROBLEM_WARNINGS);
  if (problems.length > warnings.length) warnings.push(`and ${problems.length - warnings.length} more entries not restored as recorded`);
  return {
    summary: `restored ${report.files} files (${report.bytes} bytes), ${report.directories} folders of ${snapshot.vm} (snapshot ${snapshot.id.slice(0, 8)}) into ${spec.to}${problems.length > 0 ? `; ${problems.length} not as recorded` : ''}`,
    warnings,
    figures: { files: report.files, directories: report.directories, symlinks: report.symlinks, bytes: report.bytes, problems: problems.length, durationMs: Date.now() - started },
    detail: { snapshot: snapshot.id, vm: snapshot.vm, to: spec.to, files: report.files, directories: report.directories, symlinks: report.symlinks, hardLinks: report.hardLinks, special: report.special, bytes: report.bytes },
  };
}
