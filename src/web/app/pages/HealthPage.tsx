/**
 * Repository health: per repository, the last verification (and the damage it found, with
 * the snapshots it touches), the last prune (what it freed, or with a dry run what it would
 * free), the last sync from or to another repository (an offsite copy: its card says what it
 * last received); and the actions that refresh them: verify now (`job.run`), "what would prune
 * free?" (a dry-run prune, `snapshot.delete`), sync now to another repository, all of it or one
 * VM (`job.run` on both repositories). All of that from
 * the tasks the server ran (GET /tasks), kept current by the events stream. Below it, the
 * repository's tape catalog (health/TapeCatalog.tsx, its own API).
 */
import { Alert, Anchor, Button, Card, Code, Group, List, NativeSelect, SimpleGrid, Stack, Text, TextInput, Title } from '@mantine/core';
import { useMutation, useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link, useNavigate } from 'react-router';
import { call } from '../../api/client';
import { useSession } from '../auth/session';
import { PageTitle } from '../components/PageTitle';
import { ProblemAlert } from '../components/ProblemAlert';
import { QueryView } from '../components/QueryView';
import { StatusBadge } from '../components/StatusBadge';
import { formatBytes, formatTime } from '../format';
import { TapeCatalog } from '../health/TapeCatalog';
import { useLiveTasks, type Task } from '../live/events';

type Report = { summary?: string; detail?: { damaged?: unknown[]; affected?: unknown; to?: unknown } };

/** A sync's destination, from its report (a running sync has none yet: it shows on its source's card only). */
const syncedTo = (task: Task): unknown => ((task.report ?? null) as Report | null)?.detail?.to;

export function HealthPage() {
  const repositories = useQuery({ queryKey: ['repositories'], queryFn: () => call('get', '/api/v1/repositories', { query: { limit: 100 } }) });
  const tasks = useQuery({ queryKey: ['tasks', 'health'], queryFn: () => call('get', '/api/v1/tasks', { query: { limit: 500 } }) });
  useLiveTasks();
  return (
    <>
      <PageTitle>Repository health</PageTitle>
      <QueryView query={repositories} context="Reading the repositories">
        {(list) =>
          list.items.length === 0 ? (
            <Text c="dimmed">No repository is configured.</Text>
          ) : (
            <QueryView query={tasks} context="Reading the tasks">
              {(t) => (
                <Stack gap="md">
                  {list.items.map((r) => (
                    <RepositoryHealth
                      key={r.name}
                      repo={r.name}
                      others={list.items.map((o) => o.name).filter((n) => n !== r.name)}
                      tasks={t.items.filter((task) => task.repository === r.name || (task.kind === 'sync' && syncedTo(task) === r.name))}
                    />
                  ))}
                </Stack>
              )}
            </QueryView>
          )
        }
      </QueryView>
    </>
  );
}

function RepositoryHealth({ repo, others, tasks }: { repo: string; others: string[]; tasks: Task[] }) {
  const session = useSession();
  const navigate = useNavigate();
  const latest = (kind: string) => tasks.find((t) => t.kind === kind && (kind === 'sync' || t.repository === repo));
  const opened = (answer: unknown) => {
    const id = (answer as { id?: unknown }).id;
    if (typeof id === 'string') void navigate(`/tasks/${id}`);
  };
  const verify = useMutation({ mutationFn: () => call('post', '/api/v1/repositories/{repo}/verify', { params: { repo }, body: {} }), onSuccess: opened });
  const dryPrune = useMutation({ mutationFn: () => call('post', '/api/v1/repositories/{repo}/prune', { params: { repo }, body: { dryRun: true } }), onSuccess: opened });
  const path = `/repositories/${repo}`;
  return (
    <Card withBorder component="section" aria-label={`Repository ${repo}`} data-testid={`health-${repo}`}>
      <Group justify="space-between" mb="sm">
        <Title order={2} size="h4">
          {repo}
        </Title>
        <Group gap="xs">
          {session.canOn('job.run', path) && (
            <Button size="xs" variant="default" loading={verify.isPending} onClick={() => verify.mutate()}>
              Verify now
            </Button>
          )}
          {session.canOn('snapshot.delete', path) && (
            <Button size="xs" variant="default" loading={dryPrune.isPending} onClick={() => dryPrune.mutate()}>
              What would prune free?
            </Button>
          )}
        </Group>
      </Group>
      {verify.isError && <ProblemAlert error={verify.error} context="Starting the verification" />}
      {dryPrune.isError && <ProblemAlert error={dryPrune.error} context="Starting the dry-run prune" />}
      <SimpleGrid cols={{ base: 1, md: 3 }} spacing="md">
        <Latest repo={repo} title="Last verification" task={latest('verify')} never="Never verified by this server." />
        <Latest repo={repo} title="Last prune" task={latest('prune')} never="Never pruned by this server." />
        <Latest repo={repo} title="Last sync" task={latest('sync')} never="Never synced from or to another repository by this server." />
      </SimpleGrid>
      {others.some((o) => session.canOn('job.run', path) && session.canOn('job.run', `/repositories/${o}`)) && (
        <SyncNow repo={repo} targets={others.filter((o) => session.canOn('job.run', `/repositories/${o}`))} onStarted={opened} />
      )}
      <TapeCatalog repo={repo} />
    </Card>
  );
}

/** Copies the snapshots another repository lacks (all, or one VM's): POST /repositories/R/sync, then its task. */
function SyncNow({ repo, targets, onStarted }: { repo: string; targets: string[]; onStarted: (answer: unknown) => void }) {
  const [to, setTo] = useState(targets[0] ?? '');
  const [vm, setVm] = useState('');
  const sync = useMutation({
    mutationFn: () => call('post', '/api/v1/repositories/{repo}/sync', { params: { repo }, body: { to, ...(vm.trim() === '' ? {} : { vm: vm.trim() }) } }),
    onSuccess: onStarted,
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    sync.mutate();
  };
  return (
    <form onSubmit={submit} aria-label={`Sync ${repo} to another repository`}>
      <Group align="end" gap="xs" mt="sm">
        <NativeSelect size="xs" label="Copy to" data={targets} value={to} onChange={(e) => setTo(e.currentTarget.value)} w={160} />
        <TextInput size="xs" label="Only this VM (empty: all)" value={vm} onChange={(e) => setVm(e.currentTarget.value)} w={190} />
        <Button size="xs" variant="default" type="submit" loading={sync.isPending}>
          Sync now
        </Button>
      </Group>
      {sync.isError && <ProblemAlert error={sync.error} context="Starting the sync" />}
    </form>
  );
}

function Latest({ repo, title, task, never }: { repo: string; title: string; task: Task | undefined; never: string }) {
  const report = (task?.report ?? null) as Report | null;
  const damaged = report?.detail?.damaged ?? [];
  return (
    <div data-testid={title}>
      <Text fw={600} size="sm">
        {title}
      </Text>
      {task === undefined ? (
        <Text size="sm" c="dimmed">
          {never}
        </Text>
      ) : (
        <Stack gap={4}>
          <Group gap="xs">
            <StatusBadge status={task.status} />
            <Text size="xs">{formatTime(task.ended ?? task.started ?? task.created)}</Text>
          </Group>
          {report?.summary !== undefined && <Text size="sm">{report.summary}</Text>}
          {task.error !== null && <Text size="sm">{task.error.message}</Text>}
          {damaged.length > 0 && (
            <Alert color="red" title={`Damage found (${damaged.length})`}>
              <Text size="sm">What it touches:</Text>
              <Touched repo={repo} affected={report?.detail?.affected} damaged={damaged} />
            </Alert>
          )}
        </Stack>
      )}
    </div>
  );
}

type Affected = { snapshot: string; vm: string; time: string; disk: string; ranges: { start: number; end: number }[] };
const isAffected = (a: unknown): a is Affected =>
  typeof a === 'object' && a !== null && typeof (a as Affected).snapshot === 'string' && typeof (a as Affected).vm === 'string' && typeof (a as Affected).disk === 'string' && Array.isArray((a as Affected).ranges);

/** The snapshots, disks and byte ranges a verification's damage touches, in words (as JSON when the report has another shape). */
function Touched({ repo, affected, damaged }: { repo: string; affected: unknown; damaged: unknown[] }) {
  if (!Array.isArray(affected) || !affected.every(isAffected)) return <Code block>{JSON.stringify(affected ?? damaged, null, 2)}</Code>;
  if (affected.length === 0) return <Text size="sm">No snapshot uses the damaged objects.</Text>;
  return (
    <List size="sm" data-testid="damage-touches">
      {affected.map((a) => (
        <List.Item key={`${a.snapshot}/${a.disk}`}>
          {a.vm}, snapshot{' '}
          <Anchor component={Link} fz="sm" underline="always" to={`/repositories/${encodeURIComponent(repo)}/snapshots/${a.snapshot}`}>
            {a.snapshot.slice(0, 12)}
          </Anchor>{' '}
          of {formatTime(a.time)}, disk {a.disk}: bytes {a.ranges.map((r) => `${formatBytes(r.start)} to ${formatBytes(r.end)}`).join(', ')}
        </List.Item>
      ))}
    </List>
  );
}
