/**
 * The backup window timeline's data, apart from drawing: backup tasks of a period become bars,
 * one row per host. A host's row is split into lanes only when two of its backups ran at the
 * same time (so no bar hides another, and the overlap is named); the runs' window ends are
 * marked; the VMs whose turn never came (cancelled with E_WINDOW_CLOSED before starting, or
 * still queued when the window had closed) are listed apart.
 */
import type { Answer } from '../../api/client';

export type Task = Answer<'/api/v1/tasks/{id}', 'get'>;
export type Run = Answer<'/api/v1/runs/{id}', 'get'>;
type RunLike = Pick<Run, 'id' | 'job' | 'windowEnd'>;
type TaskLike = Pick<Task, 'id' | 'kind' | 'vm' | 'host' | 'job' | 'runId' | 'status' | 'started' | 'ended' | 'created' | 'error' | 'progress'>;

export type BarResult = 'succeeded' | 'warning' | 'failed' | 'cancelled' | 'interrupted' | 'running';

export interface GanttBar {
  taskId: string;
  host: string;
  vm: string;
  job: string | null;
  /** Row index in {@link GanttData.rows}. */
  row: number;
  start: number;
  /** The task's end, or `now` while it runs. */
  end: number;
  result: BarResult;
  error: string | null;
}

export interface GanttRow {
  host: string;
  /** 0 for the host's first lane; more lanes only when backups overlapped. */
  lane: number;
  label: string;
}

export interface GanttData {
  rows: GanttRow[];
  bars: GanttBar[];
  /** The windows' ends of the period's runs (epoch ms), each with its job. */
  windowEnds: { job: string | null; at: number }[];
  /** VMs that did not get their turn. */
  missed: { vm: string; host: string; job: string | null; taskId: string; reason: string }[];
  /** Hosts on which two backups ran at the same time, with the VMs. */
  overlaps: { host: string; vms: [string, string] }[];
}

/** A host's name, or this when the task has none (a VM outside the inventory's hosts). */
export const NO_HOST = '(no host)';

function resultOf(status: TaskLike['status']): BarResult | undefined {
  switch (status) {
    case 'succeeded':
    case 'warning':
    case 'failed':
    case 'cancelled':
    case 'interrupted':
    case 'running':
      return status;
    default:
      return undefined;
  }
}

/**
 * Maps the tasks (any order; only backups that started within [from, to) are drawn) and the
 * runs of a period to rows and bars. Pure: `now` ends the bars of running tasks.
 */
export function ganttData(tasks: readonly TaskLike[], runs: readonly RunLike[], period: { from: number; to: number; now: number }): GanttData {
  const backups = tasks.filter((t) => t.kind === 'backup');
  const windowEndOf = new Map(runs.map((r) => [r.id, r.windowEnd === null || r.windowEnd === undefined ? undefined : Date.parse(r.windowEnd)]));
  const started = backups
    .filter((t) => t.started !== null)
    .map((t) => ({ task: t, start: Date.parse(t.started as string), end: t.ended === null ? period.now : Date.parse(t.ended) }))
    .filter((b) => b.start >= period.from && b.start < period.to && resultOf(b.task.status) !== undefined)
    .sort((a, b) => a.start - b.start || (a.task.vm ?? '').localeCompare(b.task.vm ?? ''));

  // Greedy lanes per host: a bar goes to the first lane free at its start.
  const laneEnds = new Map<string, number[]>();
  const overlaps: GanttData['overlaps'] = [];
  const lastInLane = new Map<string, string[]>();
  const placed = started.map((b) => {
    const host = b.task.host ?? NO_HOST;
    const ends = laneEnds.get(host) ?? [];
    const vms = lastInLane.get(host) ?? [];
    let lane = ends.findIndex((end) => end <= b.start);
    if (lane === -1) {
      lane = ends.length;
      const busy = ends.findIndex((end) => end > b.start);
      if (busy !== -1) overlaps.push({ host, vms: [vms[busy] ?? '?', b.task.vm ?? '?'] });
    }
    ends[lane] = b.end;
    vms[lane] = b.task.vm ?? '?';
    laneEnds.set(host, ends);
    lastInLane.set(host, vms);
    return { ...b, host, lane };
  });

  const rows: GanttRow[] = [...laneEnds.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .flatMap(([host, ends]) => ends.map((_, lane) => ({ host, lane, label: lane === 0 ? host : `${host} (${lane + 1})` })));
  const rowIndex = new Map(rows.map((r, i) => [`${r.host}\u0000${r.lane}`, i]));
  const bars: GanttBar[] = placed.map((p) => ({
    taskId: p.task.id,
    host: p.host,
    vm: p.task.vm ?? '?',
    job: p.task.job,
    row: rowIndex.get(`${p.host}\u0000${p.lane}`) ?? 0,
    start: p.start,
    end: p.end,
    result: resultOf(p.task.status) as BarResult,
    error: p.task.error?.message ?? null,
  }));

  const inPeriod = (t: TaskLike) => {
    const created = Date.parse(t.created);
    return created >= period.from && created < period.to;
  };
  const missed = backups
    .filter((t) => t.started === null && inPeriod(t))
    .flatMap((t) => {
      const windowEnd = t.runId === null ? undefined : windowEndOf.get(t.runId);
      if (t.status === 'cancelled' && t.error?.code === 'E_WINDOW_CLOSED') return [{ t, reason: t.error.message }];
      if (t.status === 'queued' && windowEnd !== undefined && windowEnd <= period.now) return [{ t, reason: 'still waiting after the window closed' }];
      return [];
    })
    .map(({ t, reason }) => ({ vm: t.vm ?? '?', host: t.host ?? NO_HOST, job: t.job, taskId: t.id, reason }));

  const windowEnds = runs
    .flatMap((r) => (r.windowEnd === null || r.windowEnd === undefined ? [] : [{ job: r.job, at: Date.parse(r.windowEnd) }]))
    .filter((w) => w.at >= period.from && w.at < period.to + 12 * 3600_000)
    .filter((w, i, all) => all.findIndex((o) => o.at === w.at && o.job === w.job) === i);

  return { rows, bars, windowEnds, missed, overlaps };
}

/** A night: from noon of `day` (local time) to noon of the next day. */
export function nightOf(day: Date): { from: number; to: number } {
  const from = new Date(day.getFullYear(), day.getMonth(), day.getDate(), 12, 0, 0, 0);
  const to = new Date(day.getFullYear(), day.getMonth(), day.getDate() + 1, 12, 0, 0, 0);
  return { from: from.getTime(), to: to.getTime() };
}
