/**
 * API tokens for scripts: my tokens (and, with users.read, everyone's), a new token whose
 * secret is shown once, right after it is made (only its hash is stored), and revocation.
 */
import { Alert, Button, Card, Checkbox, Code, CopyButton, Group, Stack, Text, TextInput, Title } from '@mantine/core';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { call, type Answer } from '../../api/client';
import { useSession } from '../auth/session';
import { PageTitle } from '../components/PageTitle';
import { PagedTable, type Column } from '../components/PagedTable';
import { ProblemAlert } from '../components/ProblemAlert';
import { QueryView } from '../components/QueryView';
import { formatTime } from '../format';

type Token = Answer<'/api/v1/tokens', 'get'>['items'][number];
const PAGE = 25;

export function TokensPage() {
  const session = useSession();
  const queryClient = useQueryClient();
  const [page, setPage] = useState(1);
  const [all, setAll] = useState(false);
  const tokens = useQuery({ queryKey: ['tokens', all, page], queryFn: () => call('get', '/api/v1/tokens', { query: { limit: PAGE, offset: (page - 1) * PAGE, all } }), placeholderData: keepPreviousData });
  const revoke = useMutation({ mutationFn: (id: string) => call('delete', '/api/v1/tokens/{id}', { params: { id } }), onSuccess: () => void queryClient.invalidateQueries({ queryKey: ['tokens'] }) });
  const columns: ReadonlyArray<Column<Token>> = [
    { header: 'Name', cell: (t) => t.name },
    { header: 'Owner', cell: (t) => t.user },
    { header: 'Grants', cell: (t) => t.grants.map((g) => `${g.role} on ${g.path}`).join(', ') },
    { header: 'Created', cell: (t) => formatTime(t.createdAt) },
    { header: 'Expires', cell: (t) => (t.expiresAt === null ? 'never' : formatTime(t.expiresAt)) },
    { header: 'Last used', cell: (t) => (t.lastUsedAt === null ? 'never' : formatTime(t.lastUsedAt)) },
    {
      header: 'Actions',
      cell: (t) =>
        t.user === session.me?.user || session.can('users.write') ? (
          <Button size="xs" color="red" variant="light" aria-label={`Revoke token ${t.name}`} onClick={() => window.confirm(`Revoke token ${t.name}? Scripts using it stop working.`) && revoke.mutate(t.id)}>
            Revoke
          </Button>
        ) : null,
    },
  ];
  return (
    <>
      <PageTitle>API tokens</PageTitle>
      <Stack>
        <NewToken onCreated={() => void queryClient.invalidateQueries({ queryKey: ['tokens'] })} />
        {session.can('users.read') && <Checkbox label="Show everyone's tokens" checked={all} onChange={(e) => { setAll(e.currentTarget.checked); setPage(1); }} />}
        {revoke.isError && <ProblemAlert error={revoke.error} context="Revoking the token" />}
        <QueryView query={tokens} context="Reading the tokens">
          {(list) => <PagedTable label="API tokens" columns={columns} rows={list.items} rowKey={(t) => t.id} total={list.total} pageSize={PAGE} page={page} onPage={setPage} empty="No token yet." />}
        </QueryView>
      </Stack>
    </>
  );
}

function NewToken({ onCreated }: { onCreated: () => void }) {
  const [name, setName] = useState('');
  const [days, setDays] = useState('90');
  const create = useMutation({
    mutationFn: () => {
      const n = Number(days);
      const expiresAt = days.trim() === '' || !(n > 0) ? undefined : new Date(Date.now() + n * 86_400_000).toISOString();
      return call('post', '/api/v1/tokens', { body: { name, ...(expiresAt === undefined ? {} : { expiresAt }) } });
    },
    onSuccess: () => {
      setName('');
      onCreated();
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <Card withBorder component="section" aria-label="New token">
      <Title order={2} size="h4" mb="sm">
        New token
      </Title>
      <form onSubmit={submit}>
        <Group align="end">
          <TextInput label="Name" description="what the script is" value={name} onChange={(e) => setName(e.currentTarget.value)} required />
          <TextInput label="Expires in days" description="empty: never" value={days} onChange={(e) => setDays(e.currentTarget.value)} inputMode="numeric" w={140} />
          <Button type="submit" loading={create.isPending}>
            Create token
          </Button>
        </Group>
      </form>
      <Text size="xs" c="dimmed" mt="xs">
        The token gets your grants. Send it as <code>Authorization: Bearer …</code>.
      </Text>
      {create.isError && <ProblemAlert error={create.error} context="Creating the token" />}
      {create.data !== undefined && (
        <Alert color="teal" variant="light" mt="sm" title={`Token ${create.data.token.name}: copy the secret now`} data-testid="token-secret">
          <Text size="sm">It is shown only this once; the server keeps only its hash.</Text>
          <Group mt={6} gap="xs" wrap="nowrap">
            <Code style={{ wordBreak: 'break-all' }}>{create.data.secret}</Code>
            <CopyButton value={create.data.secret}>{({ copied, copy }) => <Button size="xs" variant="light" onClick={copy}>{copied ? 'Copied' : 'Copy'}</Button>}</CopyButton>
          </Group>
        </Alert>
      )}
    </Card>
  );
}
