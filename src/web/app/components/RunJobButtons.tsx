/**
 * "Run now" and "Run failed again" for a job (POST /jobs/J/run, /jobs/J/run-failed): each
 * starts a run and opens its tasks, where their progress shows live. Shown only to a role with
 * `job.run` on the job; the server checks anyway. `RunFailedAgainButton` alone is what the
 * dashboard offers beside a failed run of last night.
 */
import { Button, Group } from '@mantine/core';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useNavigate } from 'react-router';
import { call } from '../../api/client';
import { useSession } from '../auth/session';
import { ProblemAlert } from './ProblemAlert';

/** What a started run leads to: its tasks (the runs read again). */
function useOpenStartedRun(): (run: { id: string }) => void {
  const navigate = useNavigate();
  const client = useQueryClient();
  return (run) => {
    void client.invalidateQueries({ queryKey: ['runs'] });
    void navigate(`/tasks?run=${encodeURIComponent(run.id)}`);
  };
}

export function RunFailedAgainButton({ job }: { job: string }) {
  const session = useSession();
  const started = useOpenStartedRun();
  const runFailed = useMutation({ mutationFn: () => call('post', '/api/v1/jobs/{job}/run-failed', { params: { job } }), onSuccess: started });
  if (!session.canOn('job.run', `/jobs/${job}`)) return null;
  return (
    <>
      <Button size="xs" variant="default" loading={runFailed.isPending} onClick={() => runFailed.mutate()}>
        Run failed again
      </Button>
      {runFailed.error !== null && <ProblemAlert error={runFailed.error} context="Starting the run" />}
    </>
  );
}

export function RunJobButtons({ job }: { job: string }) {
  const session = useSession();
  const started = useOpenStartedRun();
  const runNow = useMutation({ mutationFn: () => call('post', '/api/v1/jobs/{job}/run', { params: { job } }), onSuccess: started });
  const runFailed = useMutation({ mutationFn: () => call('post', '/api/v1/jobs/{job}/run-failed', { params: { job } }), onSuccess: started });
  if (!session.canOn('job.run', `/jobs/${job}`)) return null;
  const problem = runNow.error ?? runFailed.error;
  return (
    <Group gap="xs">
      <Button size="xs" loading={runNow.isPending} onClick={() => runNow.mutate()}>
        Run now
      </Button>
      <Button size="xs" variant="default" loading={runFailed.isPending} onClick={() => runFailed.mutate()}>
        Run failed again
      </Button>
      {problem !== null && <ProblemAlert error={problem} context="Starting the run" />}
    </Group>
  );
}
