/**
 * The backup window timeline: one night's backups as a Gantt chart, a row per host, with the
 * window's end and the VMs that did not get their turn; the same facts as a table (with the
 * links to each task: its figures and log). Live while backups run.
 */
import { Alert, Anchor, Group, List, NativeSelect, Stack, Table, Text } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { call } from '../../api/client';
import { HorizontalScroll } from '../components/HorizontalScroll';
import { PageTitle } from '../components/PageTitle';
import { QueryView } from '../components/QueryView';
import { STATUS_COLOR, StatusBadge } from '../components/StatusBadge';
import { useLiveTasks, type Task } from '../live/events';
import { GanttChart } from '../timeline/GanttChart';
import { ganttData, nightOf, type GanttData } from '../timeline/gantt-data';

const LAST_24H = 'last24';
/** The task pages read at most (500 each, newest first) to cover a night. */
const MAX_PAGES = 4;

function nightChoices(now: Date): { value: string; label: string }[] {
  const nights = Array.from({ length: 7 }, (_, i) => new Date(now.getFullYear(), now.getMonth(), now.getDate() - i - (now.getHours() < 12 ? 1 : 0)));
  return [
    { value: LAST_24H, label: 'The last 24 hours' },
    ...nights.map((d) => ({ value: String(d.getTime()), label: `Night of ${d.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short' })}` })),
  ];
}

async function tasksSince(from: number): Promise<Task[]> {
  const tasks: Task[] = [];
  // Keyset pages (`cursor`): tasks added while reading never repeat or push one out.
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const answer = await call('get', '/api/v1/tasks', { query: { limit: 500, ...(cursor === undefined ? {} : { cursor }) } });
    tasks.push(...answer.items);
    const oldest = answer.items[answer.items.length - 1];
    if (answer.next === null || answer.next === undefined || oldest === undefined || Date.parse(oldest.created) < from - 24 * 3600_000) break;
    cursor = answer.next;
  }
  return tasks;
}

const clock = (ms: number) => new Date(ms).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
/** The table's times carry seconds: a backup of a few seconds otherwise read "23:01 to 23:01". */
const clockSeconds = (ms: number) => new Date(ms).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });

export function TimelinePage() {
  const [choice, setChoice] = useState(LAST_24H);
  const choices = useMemo(() => nightChoices(new Date()), []);
  const period = useMemo(() => (choice === LAST_24H ? { from: Date.now() - 24 * 3600_000, to: Date.now() + 60_000 } : nightOf(new Date(Number(choice)))), [choice]);
  useLiveTasks();
  const tasks = useQuery({ queryKey: ['tasks', 'timeline', period.from], queryFn: () => tasksSince(period.from) });
  const runs = useQuery({ queryKey: ['runs', 'timeline'], queryFn: () => call('get', '/api/v1/runs', { query: { limit: 200 } }) });
  const navigate = useNavigate();
  return (
    <>
      <PageTitle>Backup window</PageTitle>
      <NativeSelect label="Period" data={choices} value={choice} onChange={(e) => setChoice(e.currentTarget.value)} w={260} mb="md" />
      <QueryView query={tasks} context="Reading the tasks">
        {(list) => (
          <QueryView query={runs} context="Reading the runs">
            {(r) => <Timeline tasks={list} runs={r.items} period={period} onOpenTask={(id) => void navigate(`/tasks/${id}`)} />}
          </QueryView>
        )}
      </QueryView>
    </>
  );
}

function Timeline({ tasks, runs, period, onOpenTask }: { tasks: Task[]; runs: Parameters<typeof ganttData>[1]; period: { from: number; to: number }; onOpenTask: (id: string) => void }) {
  // Computed again when the tasks or runs change (live while backups run), not on every render:
  // a new chart option each render re-drew the chart under the pointer.
  const data: GanttData = useMemo(() => ganttData(tasks, runs, { ...period, now: Date.now() }), [tasks, runs, period]);
  if (data.bars.length === 0 && data.missed.length === 0) return <Text c="dimmed">No backup ran in this period.</Text>;
  return (
    <Stack gap="md">
      <Group gap="md" aria-label="Colours" role="list">
        {['succeeded', 'warning', 'failed', 'cancelled', 'interrupted', 'running'].map((s) => (
          <Group gap={4} key={s} role="listitem">
            <span aria-hidden style={{ display: 'inline-block', width: 12, height: 12, borderRadius: 2, background: `var(--mantine-color-${STATUS_COLOR[s] ?? 'gray'}-6)` }} />
            <Text size="sm">{s}</Text>
          </Group>
        ))}
      </Group>
      <GanttChart data={data} onOpenTask={onOpenTask} />
      {data.overlaps.length > 0 && (
        <Alert variant="default" title="Backups overlapped on a host">
          {data.overlaps.map((o) => `${o.host}: ${o.vms.join(' and ')}`).join('; ')}
        </Alert>
      )}
      {data.missed.length > 0 && (
        <Alert color="red" title={`Did not get their turn (${data.missed.length})`} data-testid="missed">
          <List size="sm">
            {data.missed.map((m) => (
              <List.Item key={m.taskId}>
                <Anchor component={Link} underline="always" to={`/tasks/${m.taskId}`}>{m.vm}</Anchor> on {m.host}: {m.reason}
              </List.Item>
            ))}
          </List>
        </Alert>
      )}
      <HorizontalScroll label="Backups in this period (scrolls sideways)">
        <Table aria-label="Backups in this period" verticalSpacing={4} striped>
          <Table.Thead>
            <Table.Tr>
              <Table.Th scope="col">Host</Table.Th>
              <Table.Th scope="col">VM</Table.Th>
              <Table.Th scope="col">From</Table.Th>
              <Table.Th scope="col">To</Table.Th>
              <Table.Th scope="col">Result</Table.Th>
              <Table.Th scope="col">Error</Table.Th>
            </Table.Tr>
          </Table.Thead>
          <Table.Tbody>
            {data.bars.map((b) => (
              <Table.Tr key={b.taskId} data-testid="timeline-bar" data-host={b.host} data-start={b.start} data-end={b.end}>
                <Table.Td>{b.host}</Table.Td>
                <Table.Td>
                  <Anchor component={Link} to={`/tasks/${b.taskId}`}>{b.vm}</Anchor>
                </Table.Td>
                <Table.Td>{clockSeconds(b.start)}</Table.Td>
                <Table.Td>{b.result === 'running' ? 'running' : clockSeconds(b.end)}</Table.Td>
                <Table.Td>
                  <StatusBadge status={b.result} />
                </Table.Td>
                <Table.Td>{b.error ?? ''}</Table.Td>
              </Table.Tr>
            ))}
          </Table.Tbody>
        </Table>
      </HorizontalScroll>
      {data.windowEnds.length > 0 && <Text size="sm">Window ends: {data.windowEnds.map((w) => `${clock(w.at)}${w.job === null ? '' : ` (${w.job})`}`).join(', ')}</Text>}
    </Stack>
  );
}
