/**
 * Every task, newest first, filtered by state, VM, job and run (the filters live in the
 * address, so a run's link opens its tasks), kept current by the events stream: progress
 * moves as the task runs, and new tasks appear.
 */
import { Anchor, Badge, Group, Select, Text, TextInput } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useSearchParams } from 'react-router';
import { call } from '../../api/client';
import { PageTitle } from '../components/PageTitle';
import { PagedTable, type Column } from '../components/PagedTable';
import { QueryView } from '../components/QueryView';
import { StatusBadge } from '../components/StatusBadge';
import { TaskProgress } from '../components/TaskProgress';
import { formatTime } from '../format';
import { useLiveTasks, type Task } from '../live/events';

const PAGE = 50;
const STATUSES = ['queued', 'running', 'succeeded', 'warning', 'failed', 'cancelled', 'interrupted'] as const;
type Status = (typeof STATUSES)[number];

const COLUMNS: ReadonlyArray<Column<Task>> = [
  { header: 'Task', cell: (t) => <Anchor component={Link} to={`/tasks/${t.id}`}>{`${t.kind} ${t.vm ?? t.repository ?? ''}`.trim()}</Anchor> },
  { header: 'State', cell: (t) => <StatusBadge status={t.status} /> },
  { header: 'Progress', cell: (t) => (t.status === 'running' ? <TaskProgress progress={t.progress} label={`Progress of ${t.kind} ${t.vm ?? ''}`} /> : '') },
  { header: 'Host', cell: (t) => t.host ?? '–' },
  { header: 'Job', cell: (t) => t.job ?? '–' },
  { header: 'Created', cell: (t) => formatTime(t.created) },
  { header: 'Ended', cell: (t) => formatTime(t.ended) },
  { header: 'Error', cell: (t) => (t.error === null ? '' : <Text size="sm">{t.error.message}</Text>) },
];

export function TasksPage() {
  const [params, setParams] = useSearchParams();
  const [page, setPage] = useState(1);
  const filters = { status: params.get('status') ?? '', vm: params.get('vm') ?? '', job: params.get('job') ?? '', run: params.get('run') ?? '' };
  const [debounced] = useDebouncedValue(filters, 300);
  const live = useLiveTasks();
  const tasks = useQuery({
    queryKey: ['tasks', 'list', debounced, page],
    queryFn: () =>
      call('get', '/api/v1/tasks', {
        query: { limit: PAGE, offset: (page - 1) * PAGE, ...(debounced.status === '' ? {} : { status: debounced.status as Status }), vm: debounced.vm, job: debounced.job, run: debounced.run },
      }),
    placeholderData: keepPreviousData,
  });
  const set = (key: keyof typeof filters) => (value: string) => {
    const next = new URLSearchParams(params);
    if (value === '') next.delete(key);
    else next.set(key, value);
    setParams(next, { replace: true });
    setPage(1);
  };
  return (
    <>
      <PageTitle actions={<Badge variant="dot" color={live === 'live' ? 'teal' : 'gray'}>{live === 'live' ? 'Live updates on' : 'Live updates off'}</Badge>}>Tasks</PageTitle>
      <Group mb="md" align="end">
        <Select label="State" data={[{ value: '', label: 'any' }, ...STATUSES]} value={filters.status} onChange={(v) => set('status')(v ?? '')} allowDeselect={false} w={150} />
        <TextInput label="VM" value={filters.vm} onChange={(e) => set('vm')(e.currentTarget.value)} />
        <TextInput label="Job" value={filters.job} onChange={(e) => set('job')(e.currentTarget.value)} />
        <TextInput label="Run" value={filters.run} onChange={(e) => set('run')(e.currentTarget.value)} />
      </Group>
      <QueryView query={tasks} context="Reading the tasks">
        {(list) => <PagedTable label="Tasks" columns={COLUMNS} rows={list.items} rowKey={(t) => t.id} total={list.total} pageSize={PAGE} page={page} onPage={setPage} empty="No task matches these filters." />}
      </QueryView>
    </>
  );
}
