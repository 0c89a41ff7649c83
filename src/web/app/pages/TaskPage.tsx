/**
 * One task: what it works on, its state with live progress, its figures (bytes read, new and
 * stored, throughput, bottleneck, where the time went; another kind's report, a clone's new
 * identity, a file restore's entries: tasks/ReportFigures.tsx), its error, and its log, which
 * grows live while it runs (the events stream's `log` events for this task, after the lines
 * read from `GET /tasks/ID/log`). Cancel while it is queued or running.
 */
import { Alert, Anchor, Badge, Button, Card, Code, Group, ScrollArea, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { Link, useParams } from 'react-router';
import { call } from '../../api/client';
import { useSession } from '../auth/session';
import { KeyValues } from '../components/KeyValues';
import { PageTitle } from '../components/PageTitle';
import { ProblemAlert } from '../components/ProblemAlert';
import { QueryView } from '../components/QueryView';
import { StatusBadge } from '../components/StatusBadge';
import { TaskProgress } from '../components/TaskProgress';
import { formatBytes, formatTime } from '../format';
import { useEvents, type LogLine, type Task } from '../live/events';
import { ReportFigures } from '../tasks/ReportFigures';

/** How often a task that has not ended is read again besides its events. */
const STILL_RUNNING_POLL_MS = 5_000;

/** The log's first pages read before following it live (1000 lines each). */
const LOG_PAGES = 10;

async function readLog(id: string): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  let after = 0;
  for (let page = 0; page < LOG_PAGES; page++) {
    const answer = await call('get', '/api/v1/tasks/{id}/log', { params: { id }, query: { after, limit: 1000 } });
    lines.push(...answer.items.map((l) => ({ ...l, taskId: id })));
    if (answer.next === null) break;
    after = answer.next;
  }
  return lines;
}


export function TaskPage() {
  const id = useParams().id ?? '';
  const client = useQueryClient();
  const session = useSession();
  // Events keep it current; while it has not ended it is also read every 5 s, so a missed
  // event (the stream has no replay after a reconnection) never leaves it shown as running.
  const task = useQuery({
    queryKey: ['task', id],
    queryFn: () => call('get', '/api/v1/tasks/{id}', { params: { id } }),
    refetchInterval: (q) => (q.state.data?.status === 'running' || q.state.data?.status === 'queued' ? STILL_RUNNING_POLL_MS : false),
  });
  const log = useQuery({ queryKey: ['task-log', id], queryFn: () => readLog(id) });
  const [liveLines, setLiveLines] = useState<LogLine[]>([]);
  const live = useEvents({ types: 'task,log', task: id }, {
    task: (t) => client.setQueryData(['task', t.id], t),
    log: (line) => setLiveLines((lines) => [...lines, line]),
    reconnected: () => {
      void log.refetch();
      void task.refetch();
    },
  });
  const lines = useMemo(() => {
    const bySeq = new Map<number, LogLine>();
    for (const line of [...(log.data ?? []), ...liveLines]) bySeq.set(line.seq, line);
    return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  }, [log.data, liveLines]);
  const cancel = useMutation({
    mutationFn: () => call('post', '/api/v1/tasks/{id}/cancel', { params: { id } }),
    // The answer says the task as it was when the cancel was asked (usually still running); an
    // event may already have brought its end, which a late answer must not undo.
    onSuccess: (t) => {
      client.setQueryData(['task', id], (cached: typeof t | undefined) => (cached !== undefined && cached.status !== 'running' && cached.status !== 'queued' ? cached : t));
      void task.refetch();
    },
  });

  return (
    <>
      <PageTitle>{`Task ${id.slice(0, 8)}`}</PageTitle>
      <QueryView query={task} context="Reading the task">
        {(t) => (
          <Stack gap="md">
            <Group gap="sm">
              <StatusBadge status={t.status} />
              {(t.status === 'running' || t.status === 'queued') && (
                <Badge variant="dot" color={live === 'live' ? 'teal' : 'gray'}>
                  {live === 'live' ? 'live' : 'not live: reload to update'}
                </Badge>
              )}
              {t.status === 'running' && <TaskProgress progress={t.progress} label={`Progress of ${t.kind} ${t.vm ?? ''}`} />}
              {(t.status === 'running' || t.status === 'queued') && session.can('job.cancel') && (
                <Button color="red" variant="light" size="xs" loading={cancel.isPending} onClick={() => cancel.mutate()}>
                  Cancel this task
                </Button>
              )}
            </Group>
            {cancel.isError && <ProblemAlert error={cancel.error} context="Cancelling the task" />}
            {t.error !== null && (
              <Alert color="red" title={`Failed: ${t.error.code}`} data-testid="task-error">
                {t.error.message}
              </Alert>
            )}
            <SimpleGrid cols={{ base: 1, md: 2 }} spacing="md">
              <Card withBorder component="section" aria-label="What it works on">
                <Title order={2} size="h4" mb="sm">
                  What it works on
                </Title>
                <TaskFacts task={t} />
              </Card>
              <Card withBorder component="section" aria-label="Figures">
                <Title order={2} size="h4" mb="sm">
                  Figures
                </Title>
                <TaskFigures task={t} />
              </Card>
            </SimpleGrid>
            <Card withBorder component="section" aria-label="Log">
              <Title order={2} size="h4" mb="sm">
                Log
              </Title>
              <QueryView query={log} context="Reading the log">
                {() =>
                  lines.length === 0 ? (
                    <Text c="dimmed">No log line yet.</Text>
                  ) : (
                    <ScrollArea.Autosize mah={400} type="auto">
                      <Code block data-testid="task-log" tabIndex={0} aria-label="Task log">
                        {lines.map((l) => (
                          <div key={l.seq} style={{ fontWeight: l.level === 'info' ? undefined : 700 }}>
                            {new Date(l.at).toLocaleTimeString('en-GB')} {l.level === 'info' ? '' : `${l.level.toUpperCase()} `}
                            {l.line}
                          </div>
                        ))}
                      </Code>
                    </ScrollArea.Autosize>
                  )
                }
              </QueryView>
            </Card>
          </Stack>
        )}
      </QueryView>
    </>
  );
}

function TaskFacts({ task: t }: { task: Task }) {
  const rows: Array<[string, React.ReactNode]> = [
    ['Kind', t.kind],
    ['VM', t.vm === null ? '–' : <Anchor component={Link} to={`/vms/${encodeURIComponent(t.vm)}`}>{t.vm}</Anchor>],
    ['Host', t.host ?? '–'],
    ['Job', t.job === null ? '–' : <Anchor component={Link} to={`/jobs/${encodeURIComponent(t.job)}`}>{t.job}</Anchor>],
    ['Repository', t.repository ?? '–'],
    ['Run', t.runId === null ? '–' : <Anchor component={Link} to={`/tasks?run=${encodeURIComponent(t.runId)}`}>{t.runId.slice(0, 8)}</Anchor>],
    ['Started by', t.owner],
    ['Attempt', String(t.attempt)],
    ['Created', formatTime(t.created)],
    ['Started', formatTime(t.started)],
    ['Ended', formatTime(t.ended)],
  ];
  return (
    <Table aria-label="Task" verticalSpacing={4}>
      <Table.Tbody>
        {rows.map(([key, value]) => (
          <Table.Tr key={key}>
            <Table.Th scope="row" w="40%">
              {key}
            </Table.Th>
            <Table.Td>{value}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

/** A backup's figures in words, then everything else the result holds (other kinds' reports). */
export function TaskFigures({ task: t }: { task: Task }) {
  const r = t.result;
  if ((r === null || r === undefined) && t.report !== null && t.report !== undefined) return <ReportFigures report={t.report} />;
  if (r === null || r === undefined) return <Text c="dimmed">{t.status === 'running' || t.status === 'queued' ? 'Figures come when it ends.' : 'No figures recorded.'}</Text>;
  const { time, warnings, bytesLogical, bytesRead, bytesNew, bytesStored, throughput, bottleneck, durationMs, changeRate, ...rest } = r;
  const main: Record<string, unknown> = {
    ...(bytesLogical === undefined ? {} : { 'Logical (disk size)': formatBytes(bytesLogical) }),
    ...(bytesRead === undefined ? {} : { Read: formatBytes(bytesRead) }),
    ...(bytesNew === undefined ? {} : { New: formatBytes(bytesNew) }),
    ...(bytesStored === undefined ? {} : { Stored: formatBytes(bytesStored) }),
    ...(throughput === undefined ? {} : { Throughput: `${formatBytes(throughput)}/s` }),
    ...(changeRate === undefined ? {} : { 'Change rate': `${(changeRate * 100).toFixed(1)}%` }),
    ...(durationMs === undefined ? {} : { Duration: `${(durationMs / 1000).toFixed(1)} s` }),
    ...(bottleneck === undefined ? {} : { Bottleneck: bottleneck }),
  };
  const breakdown = Object.entries(time ?? {});
  const total = breakdown.reduce((sum, [, ms]) => sum + ms, 0);
  return (
    <Stack gap="sm">
      <KeyValues label="Backup figures" values={main} />
      {breakdown.length > 0 && (
        <div>
          <Text fw={600} size="sm">
            Where the time went
          </Text>
          <KeyValues label="Time breakdown" values={Object.fromEntries(breakdown.map(([k, ms]) => [k, `${(ms / 1000).toFixed(1)} s${total > 0 ? ` (${Math.round((ms / total) * 100)}%)` : ''}`]))} />
        </div>
      )}
      {warnings !== undefined && warnings.length > 0 && (
        <Alert variant="default" title="Warnings">
          {warnings.join('; ')}
        </Alert>
      )}
      {Object.keys(rest).length > 0 && <KeyValues label="More figures" values={rest as Record<string, unknown>} />}
    </Stack>
  );
}
