/**
 * The audit log, newest first, filtered by who, what (`config.*` for a family), target,
 * outcome and time; it pages by cursor (the API's `next`), so "Older entries" walks back.
 * Each entry's details in words (audit/audit-details.ts), not raw JSON.
 */
import { Badge, Button, Group, Select, Stack, Text, TextInput } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { call, type Answer } from '../../api/client';
import { detailLines } from '../audit/audit-details';
import { PageTitle } from '../components/PageTitle';
import { PagedTable, type Column } from '../components/PagedTable';
import { QueryView } from '../components/QueryView';
import { formatTime } from '../format';

type Entry = Answer<'/api/v1/audit', 'get'>['items'][number];
const PAGE = 50;
const OUTCOME_COLOR: Record<string, string> = { success: 'teal', failure: 'red', denied: 'grape', pending: 'blue' };

const COLUMNS: ReadonlyArray<Column<Entry>> = [
  // The time on one line; a long target (a snapshot's 64-digit ID) breaks anywhere rather than push the details off the screen.
  { header: 'When', cell: (e) => <span style={{ whiteSpace: 'nowrap' }}>{formatTime(e.at)}</span> },
  { header: 'Who', cell: (e) => e.actor },
  { header: 'From', cell: (e) => e.address },
  { header: 'Action', cell: (e) => e.action },
  { header: 'Target', cell: (e) => <span style={{ overflowWrap: 'anywhere' }}>{e.target}</span> },
  { header: 'Outcome', cell: (e) => <Badge color={OUTCOME_COLOR[e.outcome] ?? 'gray'} variant="light">{e.outcome}</Badge> },
  {
    header: 'Details',
    cell: (e) => (
      <Stack gap={0}>
        {detailLines(e.details).map((line, i) => (
          <Text key={i} size="xs" style={{ overflowWrap: 'anywhere' }}>
            {line}
          </Text>
        ))}
      </Stack>
    ),
  },
];

export function AuditPage() {
  const [filters, setFilters] = useState({ actor: '', action: '', target: '', outcome: '' });
  const [debounced] = useDebouncedValue(filters, 300);
  /** Cursors of the pages seen, to go back; undefined: the newest page. */
  const [cursors, setCursors] = useState<Array<string | undefined>>([undefined]);
  const cursor = cursors[cursors.length - 1];
  const audit = useQuery({
    queryKey: ['audit', debounced, cursor],
    queryFn: () => {
      const { outcome, ...text } = debounced;
      return call('get', '/api/v1/audit', { query: { limit: PAGE, ...text, ...(cursor === undefined ? {} : { cursor }), ...(outcome === '' ? {} : { outcome: outcome as Entry['outcome'] }) } });
    },
    placeholderData: keepPreviousData,
  });
  const set = (key: keyof typeof filters) => (value: string) => {
    setFilters({ ...filters, [key]: value });
    setCursors([undefined]);
  };
  return (
    <>
      <PageTitle>Audit log</PageTitle>
      <Group mb="md" align="end">
        <TextInput label="Who" placeholder="user:alice" value={filters.actor} onChange={(e) => set('actor')(e.currentTarget.value)} />
        <TextInput label="Action" placeholder="config.* or auth.login" value={filters.action} onChange={(e) => set('action')(e.currentTarget.value)} />
        <TextInput label="Target" placeholder="/users/bob" value={filters.target} onChange={(e) => set('target')(e.currentTarget.value)} />
        <Select label="Outcome" data={[{ value: '', label: 'any' }, 'success', 'failure', 'denied', 'pending']} value={filters.outcome} onChange={(v) => set('outcome')(v ?? '')} allowDeselect={false} w={140} />
      </Group>
      <QueryView query={audit} context="Reading the audit log">
        {(list) => (
          <>
            <PagedTable label="Audit log entries" columns={COLUMNS} rows={list.items} rowKey={(e) => e.id} total={list.items.length} pageSize={PAGE} page={1} onPage={() => {}} empty="No entry matches these filters." />
            <Group mt="sm">
              <Button variant="default" size="xs" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
                Newer entries
              </Button>
              <Button variant="default" size="xs" disabled={list.next === null} onClick={() => list.next !== null && setCursors([...cursors, list.next])}>
                Older entries
              </Button>
            </Group>
          </>
        )}
      </QueryView>
    </>
  );
}
