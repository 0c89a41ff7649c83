/** The workers (docs/scale.md): who takes the tasks, which hosts each reaches, how it is doing; drain one for maintenance. */
import { Stack } from '@mantine/core';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { call } from '../../api/client';
import { useSession } from '../auth/session';
import { PageTitle } from '../components/PageTitle';
import { ProblemAlert } from '../components/ProblemAlert';
import { QueryView } from '../components/QueryView';
import { WorkersTable } from '../workers/WorkersTable';

/** Heartbeats come every few seconds: refresh as often. */
const REFRESH_MS = 5000;

export function WorkersPage() {
  const session = useSession();
  const queryClient = useQueryClient();
  const workers = useQuery({ queryKey: ['workers'], queryFn: () => call('get', '/api/v1/workers'), refetchInterval: REFRESH_MS });
  const drain = useMutation({
    mutationFn: (name: string) => call('post', '/api/v1/workers/{name}/drain', { params: { name } }),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ['workers'] }),
  });
  return (
    <>
      <PageTitle>Workers</PageTitle>
      <Stack>
        {drain.isError && <ProblemAlert error={drain.error} context="Draining the worker" />}
        <QueryView query={workers} context="Reading the workers">
          {(list) => (
            <WorkersTable
              workers={list.items}
              now={workers.dataUpdatedAt}
              canDrain={session.can('config.write')}
              onDrain={(name) => window.confirm(`Drain worker ${name}? It takes no new task and exits once its running tasks end.`) && drain.mutate(name)}
            />
          )}
        </QueryView>
      </Stack>
    </>
  );
}
