/** The backup jobs: what each selects, where it writes, and when it runs (in its own time zone). */
import { TextInput } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'react-router';
import { call, type Answer } from '../../api/client';
import { PageTitle } from '../components/PageTitle';
import { PagedTable, type Column } from '../components/PagedTable';
import { QueryView } from '../components/QueryView';

type Job = Answer<'/api/v1/jobs', 'get'>['items'][number];
const PAGE = 25;

/** "tags web, db · hosts hv1" */
export function describeSelection(select: Job['select']): string {
  const parts = [
    select.names?.length ? `VMs ${select.names.join(', ')}` : '',
    select.globs?.length ? `names like ${select.globs.join(', ')}` : '',
    select.tags?.length ? `tags ${select.tags.join(', ')}` : '',
    select.hosts?.length ? `hosts ${select.hosts.join(', ')}` : '',
  ].filter((p) => p !== '');
  return parts.length === 0 ? 'nothing' : parts.join(' · ');
}

const COLUMNS: ReadonlyArray<Column<Job>> = [
  { header: 'Job', cell: (j) => <Link to={`/jobs/${encodeURIComponent(j.name)}`}>{j.name}</Link> },
  { header: 'Selects', cell: (j) => describeSelection(j.select) },
  { header: 'VMs now', cell: (j) => j.vms.length },
  { header: 'Repository', cell: (j) => j.repository },
  { header: 'Schedule', cell: (j) => `${j.schedule} (${j.timezone ?? 'UTC'})` },
];

export function JobsPage() {
  const [page, setPage] = useState(1);
  const [search, setSearch] = useState('');
  const [debounced] = useDebouncedValue(search, 250);
  const jobs = useQuery({
    queryKey: ['jobs', debounced, page],
    queryFn: () => call('get', '/api/v1/jobs', { query: { limit: PAGE, offset: (page - 1) * PAGE, search: debounced } }),
    placeholderData: keepPreviousData,
  });
  return (
    <>
      <PageTitle>Jobs</PageTitle>
      <TextInput label="Search jobs" placeholder="name contains…" value={search} onChange={(e) => { setSearch(e.currentTarget.value); setPage(1); }} maw={320} mb="md" />
      <QueryView query={jobs} context="Reading the jobs">
        {(list) => <PagedTable label="Backup jobs" columns={COLUMNS} rows={list.items} rowKey={(j) => j.name} total={list.total} pageSize={PAGE} page={page} onPage={setPage} empty="No job matches." />}
      </QueryView>
    </>
  );
}
