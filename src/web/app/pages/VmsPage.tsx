/** The VMs of the inventory, paged and searchable: host, source, tags, RPO and the jobs that cover each. */
import { Badge, Group, TextInput } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link } from 'react-router';
import { call, type Answer } from '../../api/client';
import { PageTitle } from '../components/PageTitle';
import { PagedTable, type Column } from '../components/PagedTable';
import { QueryView } from '../components/QueryView';

type Vm = Answer<'/api/v1/vms', 'get'>['items'][number];
const PAGE = 25;

export function sourceKind(source: Vm['source']): string {
  if ('images' in source) return `${source.images.length} image file${source.images.length === 1 ? '' : 's'}`;
  if ('qmp' in source) return 'QEMU (QMP)';
  if ('agent' in source) return `files by agent ${source.agent}`;
  return `libvirt ${source.libvirt.domain}`;
}

const COLUMNS: ReadonlyArray<Column<Vm>> = [
  { header: 'VM', cell: (vm) => <Link to={`/vms/${encodeURIComponent(vm.name)}`}>{vm.name}</Link> },
  { header: 'Host', cell: (vm) => vm.host },
  { header: 'Source', cell: (vm) => sourceKind(vm.source) },
  { header: 'Tags', cell: (vm) => <Group gap={4}>{(vm.tags ?? []).map((t) => <Badge key={t} size="sm" variant="light" tt="none">{t}</Badge>)}</Group> },
  { header: 'RPO', cell: (vm) => vm.rpo ?? '–' },
  { header: 'Jobs', cell: (vm) => (vm.jobs.length === 0 ? <Badge color="red" variant="light">not covered</Badge> : vm.jobs.join(', ')) },
];

export function VmsPage() {
  const [page, setPage] = useState(1);
  const [search, setSearch] = useState('');
  const [debounced] = useDebouncedValue(search, 250);
  const vms = useQuery({
    queryKey: ['vms', debounced, page],
    queryFn: () => call('get', '/api/v1/vms', { query: { limit: PAGE, offset: (page - 1) * PAGE, search: debounced } }),
    placeholderData: keepPreviousData,
  });
  return (
    <>
      <PageTitle>VMs and restore points</PageTitle>
      <TextInput label="Search VMs" placeholder="name contains…" value={search} onChange={(e) => { setSearch(e.currentTarget.value); setPage(1); }} maw={320} mb="md" />
      <QueryView query={vms} context="Reading the VMs">
        {(list) => <PagedTable label="Virtual machines" columns={COLUMNS} rows={list.items} rowKey={(vm) => vm.name} total={list.total} pageSize={PAGE} page={page} onPage={setPage} empty="No VM matches." />}
      </QueryView>
    </>
  );
}
