/**
 * The `sync` kind: copies the snapshots another configured repository lacks (the library's
 * `syncSnapshots`, as `coffer sync`): chunks and index pages first, each read back from the
 * destination, the manifest last, so a cancelled sync leaves the destination consistent.
 * A snapshot that fails (damaged source, a copy that did not read back) is a warning; the
 * others go on.
 */
import { syncSnapshots } from '../../../repo/index.js';
import type { SyncSpec } from './kind-specs.js';
import { withTaskRepository } from './open-repository.js';
import type { KindContext, TaskReport } from './task-report.js';

export async function runSyncTask(spec: SyncSpec, context: KindContext): Promise<TaskReport> {
  return withTaskRepository(spec.repository, (src) => withTaskRepository(spec.to, async (dst) => {
    const started = Date.now();
    const r = await syncSnapshots(src, dst, {
      vm: spec.vm,
      since: spec.since === undefined ? undefined : new Date(spec.since),
      signal: context.signal,
      onWait: (holders) => context.log(`waiting for a prune of the destination to end: ${holders.map((h) => `${h.kind} on ${h.host} (pid ${h.pid})`).join('; ')}`),
      onProgress: (p) => context.progress(p.done, p.total),
    });
    const failed = r.snapshots.filter((s) => s.status === 'failed');
    for (const s of failed) context.log(`FAILED ${s.source.slice(0, 8)} ${s.vm} ${s.time}: ${s.error?.message ?? ''}`, 'error');
    return {
      summary: `${spec.repository.name} → ${spec.to.name}: ${r.copied} snapshot(s) copied, ${r.present} already there, ${r.failed} failed; sent ${r.chunksSent} chunk(s), ${r.chunkBytesSent} bytes`,
      warnings: failed.map((s) => `snapshot ${s.source.slice(0, 8)} of ${s.vm} not copied: ${s.error?.message ?? 'failed'}`),
      figures: { copied: r.copied, present: r.present, failed: r.failed, chunksSent: r.chunksSent, chunkBytesSent: r.chunkBytesSent, bytesRead: r.bytesRead, bytesWritten: r.bytesWritten, durationMs: Date.now() - started },
      // `from` and `to`: the console's health page shows the sync on both repositories' cards (the task's repository is the source).
      detail: { from: spec.repository.name, to: spec.to.name, sameKeys: r.sameKeys, snapshots: r.snapshots },
    };
  }));
}
