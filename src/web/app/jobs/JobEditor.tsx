/**
 * The jobs editor: a job's selection, schedule and time zone, window, limit and retention,
 * each with a live preview computed by the server's own code — the VMs the selection matches
 * now (POST /jobs/selection-preview), the next runs in the schedule's time zone (POST
 * /schedules/preview), which existing snapshots the retention would keep and why (POST
 * /repositories/R/retention-preview). Saving changes only this job's keys in the
 * configuration's text (job-yaml.ts) and sends it with the version it was read at, so an edit
 * made meanwhile is refused (409) instead of overwritten.
 */
import { Alert, Badge, Button, Card, Grid, Group, List, SimpleGrid, Stack, Table, Text, TextInput, Title } from '@mantine/core';
import { useDebouncedValue } from '@mantine/hooks';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { ApiProblem, call } from '../../api/client';
import { HorizontalScroll } from '../components/HorizontalScroll';
import { ProblemAlert } from '../components/ProblemAlert';
import { QueryView } from '../components/QueryView';
import { formatTime } from '../format';
import { formFromJob, formProblems, jobFromForm, RETENTION_KEYS, retentionFromForm, selectFromForm, updateJobInText, type JobForm, type JobLike } from './job-yaml';

const DEBOUNCE_MS = 400;

export function JobEditor({ name, job, repository, onDone }: { name: string; job: JobLike; repository: string; onDone: () => void }) {
  const client = useQueryClient();
  const config = useQuery({ queryKey: ['config'], queryFn: () => call('get', '/api/v1/config'), staleTime: Infinity });
  const [form, setForm] = useState<JobForm>(() => formFromJob(job));
  const [debounced] = useDebouncedValue(form, DEBOUNCE_MS);
  const problems = formProblems(form);
  const save = useMutation({
    mutationFn: async () => {
      const loaded = config.data;
      if (loaded === undefined) throw new Error('the configuration is not loaded yet');
      const text = updateJobInText(loaded.text, name, jobFromForm(form));
      return call('put', '/api/v1/config', { body: { text, comment: `job ${name} edited in the console`, expectedVersion: loaded.version } });
    },
    onSuccess: () => {
      for (const key of [['config'], ['jobs'], ['scheduler']]) void client.invalidateQueries({ queryKey: key });
    },
    // Someone changed the configuration meanwhile: read it again, so that saving once more
    // applies this form to their version (the message says so) instead of overwriting it.
    onError: (error) => {
      if (error instanceof ApiProblem && error.status === 409) void config.refetch();
    },
  });
  const conflict = save.error instanceof ApiProblem && save.error.status === 409;
  const set = (patch: Partial<JobForm>) => setForm({ ...form, ...patch });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (problems.length === 0) save.mutate();
  };
  return (
    <Card withBorder component="section" aria-label="Edit the job" mt="md">
      <Title order={2} size="h4" mb="sm">
        Edit the job
      </Title>
      <form onSubmit={submit} aria-label={`Edit job ${name}`}>
        <Grid>
          <Grid.Col span={{ base: 12, md: 6 }}>
            <Stack gap="xs">
              <Text fw={600} size="sm">
                Selection (a VM matching any of these)
              </Text>
              <SimpleGrid cols={{ base: 1, sm: 2 }} spacing="xs">
                <TextInput label="VM names" description="comma-separated" value={form.names} onChange={(e) => set({ names: e.currentTarget.value })} />
                <TextInput label="Tags" value={form.tags} onChange={(e) => set({ tags: e.currentTarget.value })} />
                <TextInput label="Hosts" value={form.hosts} onChange={(e) => set({ hosts: e.currentTarget.value })} />
                <TextInput label="Name patterns" description="web-*, db?" value={form.globs} onChange={(e) => set({ globs: e.currentTarget.value })} />
              </SimpleGrid>
              <SelectionPreview select={selectFromForm(debounced)} />
            </Stack>
          </Grid.Col>
          <Grid.Col span={{ base: 12, md: 6 }}>
            <Stack gap="xs">
              <SimpleGrid cols={{ base: 1, sm: 2 }} spacing="xs">
                <TextInput label="Schedule" description="calendar event (mon..fri 22:00) or cron" value={form.schedule} onChange={(e) => set({ schedule: e.currentTarget.value })} required />
                <TextInput label="Time zone" description="IANA, e.g. Europe/Berlin" value={form.timezone} onChange={(e) => set({ timezone: e.currentTarget.value })} />
              </SimpleGrid>
              <SchedulePreview schedule={debounced.schedule} timezone={debounced.timezone} />
              <SimpleGrid cols={{ base: 1, xs: 3 }} spacing="xs">
                <TextInput label="Window starts" placeholder="22:00" value={form.windowStart} onChange={(e) => set({ windowStart: e.currentTarget.value })} />
                <TextInput label="Window ends" placeholder="06:00" value={form.windowEnd} onChange={(e) => set({ windowEnd: e.currentTarget.value })} />
                <TextInput label="VMs at once" description="this job's limit" value={form.concurrent} onChange={(e) => set({ concurrent: e.currentTarget.value })} />
              </SimpleGrid>
            </Stack>
          </Grid.Col>
          <Grid.Col span={12}>
            <Text fw={600} size="sm">
              Retention
            </Text>
            <SimpleGrid cols={{ base: 2, sm: 4, lg: 7 }} spacing="xs">
              {RETENTION_KEYS.map((key) => (
                <TextInput key={key} label={key} placeholder={key === 'keep-within' ? '30d' : ''} value={form.retention[key]} onChange={(e) => set({ retention: { ...form.retention, [key]: e.currentTarget.value } })} />
              ))}
            </SimpleGrid>
            <RetentionPreview repository={repository} form={debounced} />
          </Grid.Col>
        </Grid>
        {problems.length > 0 && (
          <Alert variant="default" title="Before saving" mt="sm">
            {problems.join(' ')}
          </Alert>
        )}
        <Group mt="md">
          <Button type="submit" disabled={problems.length > 0 || config.data === undefined} loading={save.isPending}>
            Save the job
          </Button>
          <Button variant="default" onClick={onDone}>
            Close the editor
          </Button>
          {config.data !== undefined && (
            <Text size="xs" c="dimmed">
              Editing configuration version {config.data.version}
            </Text>
          )}
        </Group>
        {config.isError && <ProblemAlert error={config.error} context="Reading the configuration" />}
        {save.isError && <ProblemAlert error={save.error} context="Saving the job" />}
        {conflict && (
          <Text size="sm" mt="xs">
            The configuration has been read again: check the previews, then save once more to apply your changes to the new version.
          </Text>
        )}
        {save.data !== undefined && (
          <Text size="sm" mt="xs" data-testid="job-saved">
            {save.data.changed ? `Saved: the configuration is now version ${save.data.version}.` : 'Nothing changed.'}
          </Text>
        )}
      </form>
    </Card>
  );
}

function SelectionPreview({ select }: { select: ReturnType<typeof selectFromForm> }) {
  const empty = Object.keys(select).length === 0;
  const preview = useQuery({ queryKey: ['selection-preview', select], queryFn: () => call('post', '/api/v1/jobs/selection-preview', { body: { select } }), enabled: !empty });
  if (empty) return <Text size="sm" c="dimmed">No VM: the selection is empty.</Text>;
  return (
    <QueryView query={preview} context="Matching the VMs">
      {(p) => (
        <Group gap={4} aria-label="VMs the selection matches" data-testid="selection-preview">
          <Text size="sm">Matches now ({p.vms.length}):</Text>
          {p.vms.length === 0 ? <Text size="sm" c="dimmed">no VM</Text> : p.vms.map((vm) => <Badge key={vm.name} variant="light" tt="none">{vm.name}</Badge>)}
        </Group>
      )}
    </QueryView>
  );
}

function SchedulePreview({ schedule, timezone }: { schedule: string; timezone: string }) {
  const preview = useQuery({
    queryKey: ['schedule-preview', schedule, timezone],
    queryFn: () => call('post', '/api/v1/schedules/preview', { body: { schedule, timezone: timezone === '' ? 'UTC' : timezone, count: 5 } }),
    enabled: schedule.trim() !== '',
    retry: false,
  });
  if (schedule.trim() === '') return null;
  return (
    <QueryView query={preview} context="Reading the next runs">
      {(p) => (
        <div>
          <Text size="sm">Next runs ({p.timezone}):</Text>
          <List size="sm" aria-label="Next runs of this schedule" data-testid="schedule-preview">
            {p.runs.map((r) => (
              <List.Item key={r}>{formatTime(r, p.timezone)}</List.Item>
            ))}
          </List>
        </div>
      )}
    </QueryView>
  );
}

function RetentionPreview({ repository, form }: { repository: string; form: JobForm }) {
  const retention = retentionFromForm(form);
  const preview = useQuery({
    queryKey: ['retention-preview', repository, retention],
    queryFn: () => call('post', '/api/v1/repositories/{repo}/retention-preview', { params: { repo: repository }, body: { retention: retention ?? {} } }),
    enabled: retention !== undefined,
    retry: false,
  });
  if (retention === undefined) return <Text size="sm" c="dimmed" mt="xs">No retention: this job never removes snapshots.</Text>;
  return (
    <QueryView query={preview} context="Applying the retention to the existing snapshots">
      {(p) =>
        p.vms.length === 0 ? (
          <Text size="sm" c="dimmed" mt="xs">No snapshot in {repository} yet.</Text>
        ) : (
          <Stack gap="xs" mt="xs" data-testid="retention-preview">
            {p.vms.map((vm) => {
              // A VM's file snapshots are retained apart from its disk snapshots, one group per set of paths (as forget does).
              const group = vm.files === undefined ? vm.vm : `${vm.vm} (files ${vm.files.stdinName !== undefined ? `stdin ${vm.files.stdinName}` : vm.files.paths.join(', ')})`;
              return (
                <div key={group}>
                  <Text size="sm" fw={600}>
                    {group}: keeps {vm.keep}, removes {vm.remove}
                  </Text>
                  <HorizontalScroll label={`Retention of ${group} (scrolls sideways)`}>
                    <Table aria-label={`Retention of ${group}`} verticalSpacing={2}>
                      <Table.Tbody>
                        {vm.snapshots.map((s) => (
                          <Table.Tr key={s.id}>
                            <Table.Td>{formatTime(s.time)}</Table.Td>
                            <Table.Td>
                              <Badge color={s.keep ? 'teal.9' : 'red.9'} variant="filled">
                                {s.keep ? 'keep' : 'remove'}
                              </Badge>
                            </Table.Td>
                            <Table.Td>{s.reasons.join(', ')}</Table.Td>
                          </Table.Tr>
                        ))}
                      </Table.Tbody>
                    </Table>
                  </HorizontalScroll>
                </div>
              );
            })}
          </Stack>
        )
      }
    </QueryView>
  );
}
