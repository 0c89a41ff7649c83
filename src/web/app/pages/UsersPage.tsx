/**
 * Users and their role grants. Everyone with users.read sees the list; only users.write
 * (Admin) sees the controls to add a user, change grants and delete (which may need a second
 * administrator's approval: the answer then says so).
 */
import { Badge, Button, Card, CloseButton, Group, PasswordInput, Select, Stack, Text, TextInput, Title } from '@mantine/core';
import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { call, type Answer } from '../../api/client';
import { useSession } from '../auth/session';
import { PageTitle } from '../components/PageTitle';
import { PagedTable, type Column } from '../components/PagedTable';
import { ProblemAlert } from '../components/ProblemAlert';
import { QueryView } from '../components/QueryView';
import { formatTime } from '../format';

type User = Answer<'/api/v1/users', 'get'>['items'][number];
type Grant = User['grants'][number];
export const ROLES: ReadonlyArray<Grant['role']> = ['Admin', 'Operator', 'BackupOperator', 'RestoreOperator', 'Auditor'];
const PAGE = 25;

export function UsersPage() {
  const session = useSession();
  const canWrite = session.can('users.write');
  const queryClient = useQueryClient();
  const [page, setPage] = useState(1);
  const [notice, setNotice] = useState<string>();
  const users = useQuery({ queryKey: ['users', page], queryFn: () => call('get', '/api/v1/users', { query: { limit: PAGE, offset: (page - 1) * PAGE } }), placeholderData: keepPreviousData });
  const refresh = () => void queryClient.invalidateQueries({ queryKey: ['users'] });
  const remove = useMutation({
    mutationFn: (name: string) => call('delete', '/api/v1/users/{name}', { params: { name } }),
    onSuccess: (answer, name) => {
      setNotice(answer !== undefined && typeof answer === 'object' && 'approval' in answer ? `Deleting ${name} waits for a second administrator's approval.` : `User ${name} deleted.`);
      refresh();
    },
  });
  const grants = useMutation({
    mutationFn: ({ name, next }: { name: string; next: Grant[] }) => call('put', '/api/v1/users/{name}/grants', { params: { name }, body: { grants: next } }),
    onSuccess: refresh,
  });

  const columns: Array<Column<User>> = [
    { header: 'User', cell: (u) => u.name },
    {
      header: 'Grants',
      cell: (u) => (
        <Group gap={4}>
          {u.grants.map((g) => (
            // tt="none": a grant's path is case-sensitive; Mantine's uppercase badge showed /jobs/nightly as /JOBS/NIGHTLY.
            <Badge key={`${g.role}@${g.path}`} variant="light" tt="none" rightSection={canWrite ? <CloseButton size="xs" aria-label={`Remove ${g.role} on ${g.path} from ${u.name}`} onClick={() => grants.mutate({ name: u.name, next: u.grants.filter((x) => x !== g) })} /> : undefined}>
              {g.role} on {g.path}
            </Badge>
          ))}
          {canWrite && <AddGrant onAdd={(g) => grants.mutate({ name: u.name, next: [...u.grants, g] })} user={u.name} />}
        </Group>
      ),
    },
    { header: 'Password', cell: (u) => (u.mustChangePassword ? <Badge color="blue" variant="light">one-time</Badge> : 'set') },
    { header: 'Created', cell: (u) => formatTime(u.createdAt) },
  ];
  if (canWrite) {
    columns.push({
      header: 'Actions',
      cell: (u) =>
        u.name === session.me?.user ? null : (
          <Button size="xs" color="red" variant="light" onClick={() => window.confirm(`Delete user ${u.name}?`) && remove.mutate(u.name)} aria-label={`Delete user ${u.name}`}>
            Delete
          </Button>
        ),
    });
  }

  return (
    <>
      <PageTitle>Users and grants</PageTitle>
      <Stack>
        {notice !== undefined && <Text role="status">{notice}</Text>}
        {remove.isError && <ProblemAlert error={remove.error} context="Deleting the user" />}
        {grants.isError && <ProblemAlert error={grants.error} context="Changing the grants" />}
        <QueryView query={users} context="Reading the users">
          {(list) => <PagedTable label="Users" columns={columns} rows={list.items} rowKey={(u) => u.name} total={list.total} pageSize={PAGE} page={page} onPage={setPage} />}
        </QueryView>
        {canWrite && <NewUser onCreated={refresh} />}
      </Stack>
    </>
  );
}

function AddGrant({ onAdd, user }: { onAdd: (grant: Grant) => void; user: string }) {
  const [open, setOpen] = useState(false);
  const [role, setRole] = useState<Grant['role']>('Auditor');
  const [path, setPath] = useState('/');
  if (!open)
    return (
      <Button size="compact-xs" variant="subtle" onClick={() => setOpen(true)} aria-label={`Add a grant to ${user}`}>
        + grant
      </Button>
    );
  return (
    <Group gap={4}>
      <Select aria-label="Role" size="xs" data={[...ROLES]} value={role} onChange={(v) => v !== null && setRole(v as Grant['role'])} allowDeselect={false} w={150} />
      <TextInput aria-label="Path" size="xs" value={path} onChange={(e) => setPath(e.currentTarget.value)} w={140} />
      <Button size="compact-xs" onClick={() => { onAdd({ role, path }); setOpen(false); }}>
        Add
      </Button>
    </Group>
  );
}

function NewUser({ onCreated }: { onCreated: () => void }) {
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Grant['role']>('Auditor');
  const [path, setPath] = useState('/');
  const create = useMutation({
    mutationFn: () => call('post', '/api/v1/users', { body: { name, password, grants: [{ role, path }], mustChangePassword: true } }),
    onSuccess: () => {
      setName('');
      setPassword('');
      onCreated();
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <Card withBorder component="section" aria-label="Add a user">
      <Title order={2} size="h4" mb="sm">
        Add a user
      </Title>
      <form onSubmit={submit}>
        <Group align="end">
          <TextInput label="Name" value={name} onChange={(e) => setName(e.currentTarget.value)} required />
          <PasswordInput label="One-time password" description="at least 10 characters; changed at first login" value={password} onChange={(e) => setPassword(e.currentTarget.value)} required autoComplete="new-password" />
          <Select label="Role" data={[...ROLES]} value={role} onChange={(v) => v !== null && setRole(v as Grant['role'])} allowDeselect={false} w={170} />
          <TextInput label="On path" value={path} onChange={(e) => setPath(e.currentTarget.value)} w={150} />
          <Button type="submit" loading={create.isPending}>
            Add user
          </Button>
        </Group>
      </form>
      {create.isError && <ProblemAlert error={create.error} context="Adding the user" />}
    </Card>
  );
}
