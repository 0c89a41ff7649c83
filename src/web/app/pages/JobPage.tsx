/**
 * One job: the VMs its selection matches now, its settings, and its next runs in the
 * schedule's time zone; plus a schedule tryout (POST /schedules/preview) to see when another
 * calendar event or time zone would fire before editing the job.
 */
import { Badge, Button, Card, Grid, Group, List, Stack, Text, TextInput, Title } from '@mantine/core';
import { useMutation, useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link, useParams } from 'react-router';
import { call } from '../../api/client';
import { useSession } from '../auth/session';
import { PageTitle } from '../components/PageTitle';
import { ProblemAlert } from '../components/ProblemAlert';
import { QueryView } from '../components/QueryView';
import { RunJobButtons } from '../components/RunJobButtons';
import { formatTime } from '../format';
import { JobEditor } from '../jobs/JobEditor';
import { describeSelection } from './JobsPage';

export function JobPage() {
  const name = useParams().job ?? '';
  const session = useSession();
  const job = useQuery({ queryKey: ['jobs', 'one', name], queryFn: () => call('get', '/api/v1/jobs/{job}', { params: { job: name } }) });
  const [editing, setEditing] = useState(false);
  const next = useQuery({ queryKey: ['jobs', name, 'next-runs', 5], queryFn: () => call('get', '/api/v1/jobs/{job}/next-runs', { params: { job: name }, query: { count: 5 } }) });
  return (
    <>
      <PageTitle
        actions={
          <Group gap="xs">
            <RunJobButtons job={name} />
            {session.can('config.write') && !editing && (
              <Button size="xs" variant="default" onClick={() => setEditing(true)}>
                Edit the job
              </Button>
            )}
          </Group>
        }
      >{`Job ${name}`}</PageTitle>
      {editing && job.data !== undefined && <JobEditor name={name} job={job.data} repository={job.data.repository} onDone={() => setEditing(false)} />}
      <Grid>
        <Grid.Col span={{ base: 12, md: 6 }}>
          <Card withBorder component="section" aria-label="Selection">
            <Title order={2} size="h4" mb="sm">
              Selection
            </Title>
            <QueryView query={job} context="Reading the job">
              {(j) => (
                <Stack gap={6}>
                  <Text size="sm">Selects {describeSelection(j.select)}; writes to repository {j.repository}.</Text>
                  <Text size="sm" fw={600}>
                    Matches now ({j.vms.length}):
                  </Text>
                  <Group gap={6} data-testid="job-vms">
                    {j.vms.length === 0 ? <Text c="dimmed">no VM</Text> : j.vms.map((vm) => <Badge key={vm} variant="light" tt="none" component={Link} to={`/vms/${encodeURIComponent(vm)}`} style={{ cursor: 'pointer' }}>{vm}</Badge>)}
                  </Group>
                  {j.window !== undefined && <Text size="sm">Window: {j.window.start}–{j.window.end}</Text>}
                  {j.limits?.concurrent !== undefined && <Text size="sm">At most {j.limits.concurrent} of its VMs at once</Text>}
                  {j.retention !== undefined && <Text size="sm">Retention: {Object.entries(j.retention).map(([k, v]) => `${k} ${String(v)}`).join(', ')}</Text>}
                  {j.after !== undefined && <Text size="sm">Runs after job {j.after}</Text>}
                  {j['repeat-missed'] === true && <Text size="sm">A run missed while the server was down runs once at start.</Text>}
                </Stack>
              )}
            </QueryView>
          </Card>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 6 }}>
          <Card withBorder component="section" aria-label="Next runs">
            <Title order={2} size="h4" mb="sm">
              Next runs
            </Title>
            <QueryView query={next} context="Reading the next runs">
              {(n) => (
                <>
                  <Text size="sm" mb={4}>
                    <code>{n.schedule}</code> ({n.syntax ?? 'calendar'}), time zone {n.timezone}
                  </Text>
                  <List size="sm" data-testid="next-runs-list">
                    {n.runs.map((r) => (
                      <List.Item key={r}>{formatTime(r, n.timezone)}</List.Item>
                    ))}
                  </List>
                </>
              )}
            </QueryView>
          </Card>
          {session.can('config.read') && job.data !== undefined && <ScheduleTryout schedule={job.data.schedule} timezone={job.data.timezone ?? 'UTC'} />}
        </Grid.Col>
      </Grid>
    </>
  );
}

function ScheduleTryout({ schedule, timezone }: { schedule: string; timezone: string }) {
  const [text, setText] = useState(schedule);
  const [zone, setZone] = useState(timezone);
  const preview = useMutation({ mutationFn: () => call('post', '/api/v1/schedules/preview', { body: { schedule: text, timezone: zone, count: 5 } }) });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    preview.mutate();
  };
  return (
    <Card withBorder component="section" aria-label="Try a schedule" mt="md">
      <Title order={2} size="h4" mb="sm">
        Try a schedule
      </Title>
      <form onSubmit={submit}>
        <Group align="end">
          <TextInput label="Calendar event or cron" value={text} onChange={(e) => setText(e.currentTarget.value)} required />
          <TextInput label="Time zone" value={zone} onChange={(e) => setZone(e.currentTarget.value)} required />
          <Button type="submit" variant="light" loading={preview.isPending}>
            Preview
          </Button>
        </Group>
      </form>
      {preview.isError && <ProblemAlert error={preview.error} />}
      {preview.data !== undefined && (
        <List size="sm" mt="sm" aria-label="Previewed runs">
          {preview.data.runs.map((r) => (
            <List.Item key={r}>{formatTime(r, preview.data.timezone)}</List.Item>
          ))}
        </List>
      )}
    </Card>
  );
}
