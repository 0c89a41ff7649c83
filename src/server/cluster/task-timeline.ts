/**
 * Test helpers of the cluster's integration tests (not a test itself): what ran at once, from
 * the tasks' recorded start and end (their rows in the state database) — how a test proves that
 * backups really overlapped, or that a limit kept them apart, without watching the clock itself.
 */

/** A task's row as far as the timeline needs it (PostgreSQL returns BIGINT times as strings). */
export interface TimedRow {
  readonly started_at: number | string | null;
  readonly ended_at: number | string | null;
  readonly worker: string | null;
}

/** The most tasks whose [started, ended) intervals overlap at one instant. */
export function maxOverlap(rows: readonly TimedRow[]): number {
  let now = 0;
  let max = 0;
  for (const [, delta] of edges(rows)) max = Math.max(max, (now += delta));
  return max;
}

/** The most distinct workers running a task at one instant (two backups on one worker count once). */
export function mostWorkersAtOnce(rows: readonly TimedRow[]): number {
  const running = new Map<string, number>();
  let max = 0;
  for (const [, delta, worker] of edges(rows)) {
    const n = (running.get(worker) ?? 0) + delta;
    if (n === 0) running.delete(worker);
    else running.set(worker, n);
    max = Math.max(max, running.size);
  }
  return max;
}

/** Starts (+1) and ends (-1) in time order, an end first at one instant (touching intervals do not overlap). */
function edges(rows: readonly TimedRow[]): [number, number, string][] {
  const list = rows.flatMap((r): [number, number, string][] => {
    if (r.started_at === null || r.ended_at === null) throw new Error('a task that has not both started and ended has no interval');
    return [[Number(r.started_at), 1, r.worker ?? ''], [Number(r.ended_at), -1, r.worker ?? '']];
  });
  return list.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
}
