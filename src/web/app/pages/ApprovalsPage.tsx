/**
 * Four-eyes approvals: destructive operations waiting for a second administrator (the
 * requester cannot approve their own, through a session or a token: the API names the user
 * behind a request, `requestedByUser`), and the decided ones with their result.
 */
import { Badge, Button, Group, SegmentedControl, Stack } from '@mantine/core';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { call, type Answer } from '../../api/client';
import { useSession } from '../auth/session';
import { PageTitle } from '../components/PageTitle';
import { PagedTable, type Column } from '../components/PagedTable';
import { ProblemAlert } from '../components/ProblemAlert';
import { QueryView } from '../components/QueryView';
import { formatTime } from '../format';

type Approval = Answer<'/api/v1/approvals', 'get'>['items'][number];
const PAGE = 25;
const COLOR: Record<string, string> = { pending: 'blue', approved: 'teal', rejected: 'gray', failed: 'red' };

export function ApprovalsPage() {
  const session = useSession();
  const queryClient = useQueryClient();
  const [status, setStatus] = useState<'pending' | 'all'>('pending');
  const [page, setPage] = useState(1);
  const approvals = useQuery({
    queryKey: ['approvals', status, page],
    queryFn: () => call('get', '/api/v1/approvals', { query: { limit: PAGE, offset: (page - 1) * PAGE, ...(status === 'all' ? {} : { status }) } }),
    placeholderData: keepPreviousData,
  });
  const decide = useMutation({
    mutationFn: ({ id, verdict }: { id: string; verdict: 'approve' | 'reject' }) =>
      verdict === 'approve' ? call('post', '/api/v1/approvals/{id}/approve', { params: { id } }) : call('post', '/api/v1/approvals/{id}/reject', { params: { id } }),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ['approvals'] }),
  });
  const columns: ReadonlyArray<Column<Approval>> = [
    { header: 'Requested', cell: (a) => formatTime(a.requestedAt) },
    { header: 'By', cell: (a) => a.requestedBy },
    { header: 'Operation', cell: (a) => a.summary },
    { header: 'Status', cell: (a) => <Badge color={COLOR[a.status] ?? 'gray'} variant="light">{a.status}</Badge> },
    { header: 'Decided', cell: (a) => (a.decidedBy == null ? '' : `${a.decidedBy}, ${formatTime(a.decidedAt)}${a.result == null ? '' : `: ${a.result}`}`) },
    {
      header: 'Actions',
      cell: (a) =>
        a.status === 'pending' && a.requestedByUser !== session.me?.user ? (
          <Group gap={4}>
            <Button size="xs" onClick={() => decide.mutate({ id: a.id, verdict: 'approve' })}>Approve</Button>
            <Button size="xs" variant="default" onClick={() => decide.mutate({ id: a.id, verdict: 'reject' })}>Reject</Button>
          </Group>
        ) : null,
    },
  ];
  return (
    <>
      <PageTitle>Approvals</PageTitle>
      <Stack>
        <SegmentedControl aria-label="Which requests" data={[{ value: 'pending', label: 'Waiting' }, { value: 'all', label: 'All' }]} value={status} onChange={(v) => { setStatus(v as 'pending' | 'all'); setPage(1); }} w={220} />
        {decide.isError && <ProblemAlert error={decide.error} context="Deciding the request" />}
        <QueryView query={approvals} context="Reading the approvals">
          {(list) => <PagedTable label="Approval requests" columns={columns} rows={list.items} rowKey={(a) => a.id} total={list.total} pageSize={PAGE} page={page} onPage={setPage} empty="No request waits for a decision." />}
        </QueryView>
      </Stack>
    </>
  );
}
