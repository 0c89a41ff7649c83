/**
 * The `restore` kind: a snapshot's disks back as images of any format Coffer writes (a file
 * for one disk, a folder for several), or as a clone VM with a new identity (`restoreAsVm`:
 * disks plus a libvirt XML or QEMU script). The same library calls as `coffer restore`.
 * Read-only on the repository; a cancelled restore leaves a partial target, reported.
 */
import { resolveSnapshot } from '../../../repo/index.js';
import { restoreAsVm, restoreSnapshot, type RestoreProgress } from '../../../restore/index.js';
import type { RestoreSpec } from './kind-specs.js';
import { withTaskRepository } from './open-repository.js';
import type { KindContext, TaskReport } from './task-report.js';

export async function runRestoreTask(spec: RestoreSpec, context: KindContext): Promise<TaskReport> {
  return withTaskRepository(spec.repository, async (repo): Promise<TaskReport> => {
    const snapshot = await resolveSnapshot(repo, spec.snapshot);
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
