/**
 * The figures of one VM backup (issue #8, "per task and per VM") from its snapshot and the
 * run's measures: what the server stores per task and `coffer backup` prints.
 */
import type { Snapshot } from '../repo/index.js';
import type { TimeBreakdown } from './backup-meter.js';
import type { VmBackupRequest, VmBackupResult } from './vm-backup-spec.js';

/** What the run measured besides the snapshot. */
export interface VmBackupRun {
  started: Date;
  ended: Date;
  time: TimeBreakdown;
  warnings: string[];
  skipped: { name: string; reason: string }[];
  objectLock: VmBackupResult['objectLock'];
  /** Bytes read whose blocks matched their fingerprints (not hashed). */
  bytesMatched?: number;
}

/** The result of a backup that saved `snapshot`. */
export function vmBackupFigures(request: VmBackupRequest, snapshot: Snapshot, run: VmBackupRun): VmBackupResult {
  const { stats } = snapshot;
  const durationMs = Math.max(0, run.ended.getTime() - run.started.getTime());
  const { bottleneck, ...breakdown } = run.time;
  const mode = snapshot.parent === null ? 'full' : 'incremental';
  const modeReason = snapshot.parent === null
    ? 'no earlier snapshot of this VM'
    : `against snapshot ${snapshot.parent.slice(0, 8)}; ${snapshot.disks.map((d) => `${d.name}: ${trackingLabel(d.changeTracking)}`).join('; ')}`;
  return {
    snapshot: snapshot.id,
    vm: snapshot.vm,
    host: snapshot.hostname,
    ...(request.job === undefined ? {} : { job: request.job }),
    started: run.started.toISOString(),
    ended: run.ended.toISOString(),
    durationMs,
    bytesLogical: stats.bytesLogical,
    bytesRead: stats.bytesRead,
    ...(run.bytesMatched === undefined || run.bytesMatched === 0 ? {} : { bytesMatched: run.bytesMatched }),
    bytesNew: stats.bytesNew,
    bytesStored: stats.bytesStored,
    throughput: Math.round(stats.bytesRead / Math.max(durationMs / 1000, 0.001)),
    changeRate: stats.bytesLogical === 0 ? 0 : stats.bytesNew / stats.bytesLogical,
    mode,
    modeReason,
    consistency: snapshot.consistency?.level ?? 'unknown',
    ...(snapshot.consistency?.reason === undefined ? {} : { consistencyReason: snapshot.consistency.reason }),
    warnings: run.warnings,
    bottleneck,
    time: breakdown,
    parent: snapshot.parent,
    snapshotTime: snapshot.time,
    backupMs: stats.durationMs,
    disks: snapshot.disks.map((d) => ({ name: d.name, ...(d.changeTracking === undefined ? {} : { changeTracking: { ...d.changeTracking } }) })),
    skipped: run.skipped,
    ...(snapshot.consistency === undefined ? {} : { consistencyRecord: { ...snapshot.consistency } }),
    ...(run.objectLock === undefined ? {} : { objectLock: run.objectLock }),
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
