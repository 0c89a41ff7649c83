/**
 * What an agent reports at a task's end, checked at the boundary (an agent is a guest: its
 * words are untrusted input), and the task's usual backup result built from it, so task logs,
 * the timeline, RPO and notifications read an agent's backup as any other.
 *
 * The body of `POST /agent/v1/tasks/ID/end` (docs/agent.md):
 * `{"result": {snapshot, parent, snapshotTime, entries, bytesLogical, bytesRead, bytesNew,
 *   bytesStored, durationMs, warnings: [text…]}}` or `{"error": {code, message}}`.
 */
import type { VmBackupResult } from '../../backup/index.js';

/** A file backup's figures as the agent reports them. */
export interface AgentBackupReport {
  snapshot: string;
  parent: string | null;
  snapshotTime: string;
  entries: number;
  bytesLogical: number;
  bytesRead: number;
  bytesNew: number;
  bytesStored: number;
  durationMs: number;
  warnings: string[];
}

export type AgentEnd = { result: AgentBackupReport } | { error: { code: string; message: string } };

const ID = /^[0-9a-f]{64}$/;
const count = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const line = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max && !/[\u0000-\u0008\u000b-\u001f]/.test(v);

/** The end an agent sent, or a one-line reason it is malformed. */
export function parseAgentEnd(body: unknown): AgentEnd | string {
  if (typeof body !== 'object' || body === null) return 'the body is not a JSON object';
  const b = body as { result?: unknown; error?: unknown };
  if (b.error !== undefined) {
    const e = b.error as { code?: unknown; message?: unknown };
    if (typeof e !== 'object' || e === null || !line(e.code, 64) || !/^E_[A-Z_]+$/.test(e.code) || !line(e.message, 2000)) return 'error: expected {code: "E_…", message}';
    return { error: { code: e.code, message: e.message } };
  }
  const r = b.result as Record<string, unknown> | undefined;
  if (typeof r !== 'object' || r === null) return 'expected {result} or {error}';
  if (typeof r.snapshot !== 'string' || !ID.test(r.snapshot)) return 'result.snapshot: a snapshot id (64 hex digits)';
  if (!(r.parent === null || (typeof r.parent === 'string' && ID.test(r.parent)))) return 'result.parent: a snapshot id or null';
  if (typeof r.snapshotTime !== 'string' || Number.isNaN(Date.parse(r.snapshotTime))) return 'result.snapshotTime: an ISO 8601 time';
  for (const key of ['entries', 'bytesLogical', 'bytesRead', 'bytesNew', 'bytesStored', 'durationMs'] as const) {
    if (!count(r[key])) return `result.${key}: a whole number ≥ 0`;
  }
  if (!Array.isArray(r.warnings) || r.warnings.length > 10_000 || !r.warnings.every((w) => line(w, 4000))) return 'result.warnings: up to 10000 lines of text';
  return {
    result: {
      snapshot: r.snapshot, parent: r.parent, snapshotTime: r.snapshotTime, entries: r.entries as number,
      bytesLogical: r.bytesLogical as number, bytesRead: r.bytesRead as number, bytesNew: r.bytesNew as number,
      bytesStored: r.bytesStored as number, durationMs: r.durationMs as number, warnings: r.warnings as string[],
    },
  };
}

/** The task's backup result from an agent's report. */
export function backupResultOf(report: AgentBackupReport, task: { vm: string; host: string; job?: string; started: number; ended: number }): VmBackupResult {
  const durationMs = Math.max(0, task.ended - task.started);
  return {
    snapshot: report.snapshot,
    vm: task.vm,
    host: task.host,
    ...(task.job === undefined ? {} : { job: task.job }),
    started: new Date(task.started).toISOString(),
    ended: new Date(task.ended).toISOString(),
    durationMs,
    bytesLogical: report.bytesLogical,
    bytesRead: report.bytesRead,
    bytesNew: report.bytesNew,
    bytesStored: report.bytesStored,
    throughput: durationMs === 0 ? 0 : Math.round(report.bytesRead / (durationMs / 1000)),
    changeRate: report.bytesLogical === 0 ? 0 : Math.min(1, report.bytesNew / report.bytesLogical),
    mode: report.parent === null ? 'full' : 'incremental',
    modeReason: report.parent === null ? 'no earlier snapshot of these paths' : `unchanged files skipped by their metadata against snapshot ${report.parent.slice(0, 8)}`,
    consistency: 'unknown',
    consistencyReason: `files read by the agent while in use (${report.entries} entries)`,
    warnings: report.warnings,
    bottleneck: 'source',
    time: { sourceMs: 0, repositoryMs: 0, throttleMs: 0, cpuMs: 0, wallMs: durationMs },
    parent: report.parent,
    snapshotTime: report.snapshotTime,
    backupMs: report.durationMs,
    disks: [],
    skipped: [],
  };
}
