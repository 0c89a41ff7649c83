/**
 * The `coffer worker` processes sharing the PostgreSQL state database (docs/scale.md), as
 * GET /api/v1/workers answers: the hosts each reaches, its state, tasks running of its slots,
 * tasks done, throughput, the last heartbeat, and a Drain button for maintenance (it takes
 * nothing new and exits once its tasks end). Pure: the page fetches, this shows.
 */
import { Badge, Button, Code, Text } from '@mantine/core';
import type { Answer } from '../../api/client';
import { PagedTable, type Column } from '../components/PagedTable';
import { formatAge, formatBytes, formatTime } from '../format';

export type WorkerRow = Answer<'/api/v1/workers', 'get'>['items'][number];

/** What an administrator needs to know first about a worker. */
export type WorkerState = 'working' | 'draining' | 'stopped' | 'silent';

/** `stopped`: it said so; `silent`: no heartbeat for a while (killed, cut off); `draining`: asked to finish and go. */
export function workerState(w: WorkerRow): WorkerState {
  if (w.stopped !== null) return 'stopped';
  if (!w.alive) return 'silent';
  return w.draining ? 'draining' : 'working';
}

/** Filled badges in shade 9 (yellow 4 with dark text) keep WCAG AA, as StatusBadge. */
const STATE_COLOR: Record<WorkerState, string> = { working: 'teal.9', draining: 'yellow.4', stopped: 'gray.9', silent: 'red.9' };

/** "12 s ago" under two minutes, then "3 min ago", "2 h 5 min ago". */
export function heartbeatAge(iso: string, now: number): string {
  const ms = Math.max(0, now - Date.parse(iso));
  return ms < 120_000 ? `${Math.round(ms / 1000)} s ago` : `${formatAge(ms)} ago`;
}

export interface WorkersTableProps {
  workers: readonly WorkerRow[];
  /** The caller's clock, ms (the heartbeat's age). */
  now: number;
  /** Whether the caller may drain (config.write); no button otherwise. */
  canDrain: boolean;
  onDrain: (name: string) => void;
}

export function WorkersTable({ workers, now, canDrain, onDrain }: WorkersTableProps) {
  const columns: ReadonlyArray<Column<WorkerRow>> = [
    { header: 'Worker', cell: (w) => <><Text fw={600} size="sm">{w.name}</Text><Text size="xs" c="dimmed">{w.machine ?? '?'}{w.pid === null ? '' : `, pid ${w.pid}`} · {w.version}</Text></> },
    { header: 'Hosts', cell: (w) => (w.hosts === null ? 'every host' : w.hosts.join(', ')) },
    { header: 'State', cell: (w) => { const state = workerState(w); return <Badge color={STATE_COLOR[state]} variant="filled" data-state={state}>{state}</Badge>; } },
    { header: 'Tasks running', cell: (w) => `${w.tasksRunning} of ${w.capacity}` },
    { header: 'Tasks done', cell: (w) => w.tasksDone },
    { header: 'Throughput', cell: (w) => `${formatBytes(w.throughput)}/s (${formatBytes(w.bytesRead)} read)` },
    { header: 'Last heartbeat', cell: (w) => <span title={formatTime(w.lastHeartbeat)}>{heartbeatAge(w.lastHeartbeat, now)}</span> },
    {
      header: 'Actions',
      cell: (w) => (canDrain && workerState(w) === 'working' ? (
        <Button size="xs" variant="default" aria-label={`Drain worker ${w.name}`} onClick={() => onDrain(w.name)}>Drain</Button>
      ) : null),
    },
  ];
  return (
    <PagedTable
      label="Workers"
      columns={columns}
      rows={workers}
      rowKey={(w) => w.name}
      total={workers.length}
      pageSize={Math.max(1, workers.length)}
      page={1}
      onPage={() => undefined}
      empty={<>No worker shares this server's state database: with SQLite the server runs every task itself; with PostgreSQL, start <Code>coffer worker</Code> near the hypervisors (docs/scale.md).</>}
    />
  );
}
