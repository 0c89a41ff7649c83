/**
 * The morning view: last night per job and VM (the newest run of each job in the last day,
 * with each VM's result and error), what runs now (live progress from the events stream),
 * what is not protected (VMs no job covers, VMs past their recovery point objective),
 * repository space and what dedup and compression save, and the next runs with tonight's
 * forecast (the VMs that will not fit the window).
 */
import { Badge, Card, Group, List, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { useQueries, useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { call, type Answer } from '../../api/client';
import { EChart } from '../components/EChart';
import { HorizontalScroll } from '../components/HorizontalScroll';
import { PageTitle } from '../components/PageTitle';
import { ProblemAlert } from '../components/ProblemAlert';
import { QueryView } from '../components/QueryView';
import { RunFailedAgainButton } from '../components/RunJobButtons';
import { lastAttempts } from '../dashboard/last-attempts';
import { StatusBadge } from '../components/StatusBadge';
import { TaskProgress } from '../components/TaskProgress';
import { formatAge, formatBytes, formatRatio, formatTime } from '../format';
import { useLiveTasks } from '../live/events';

const DAY_MS = 24 * 3600_000;

export function DashboardPage() {
  return (
    <>
      <PageTitle>Dashboard</PageTitle>
      <SimpleGrid cols={{ base: 1, md: 2 }} spacing="md">
        <LastNightCard />
        <RunningCard />
        <ProtectionCard />
        <RepositoriesCard />
        <NextRunsCard />
      </SimpleGrid>
    </>
  );
}

function DashCard({ title, children, testId }: { title: string; children: React.ReactNode; testId: string }) {
  return (
    // minWidth 0: a grid cell would otherwise grow to its widest content (a wide table) and
    // push the card past the screen's edge instead of letting the table scroll inside it.
    <Card withBorder padding="md" component="section" aria-label={title} data-testid={testId} style={{ minWidth: 0 }}>
      <Title order={2} size="h4" mb="sm">
        {title}
      </Title>
      {children}
    </Card>
  );
}

function LastNightCard() {
  const runs = useQuery({ queryKey: ['runs', 'recent'], queryFn: () => call('get', '/api/v1/runs', { query: { limit: 100 } }) });
  // The newest run of each job within the last day (a scheduled night, or one started by hand).
  const since = Date.now() - DAY_MS;
  const latest = [...new Map((runs.data?.items ?? []).filter((r) => Date.parse(r.created) >= since).reverse().map((r) => [r.job ?? '(no job)', r])).values()].sort((a, b) => (a.job ?? '').localeCompare(b.job ?? ''));
  const details = useQueries({ queries: latest.map((r) => ({ queryKey: ['runs', r.id], queryFn: () => call('get', '/api/v1/runs/{id}', { params: { id: r.id } }) })) });
  return (
    <DashCard title="Last night" testId="last-night">
      <QueryView query={runs} context="Reading the runs">
        {() =>
          latest.length === 0 ? (
            <Text c="dimmed">No job ran in the last 24 hours.</Text>
          ) : (
            <Stack gap="sm">
              {latest.map((run, i) => {
                const d = details[i];
                return (
                  <div key={run.id} data-testid={`last-night-${run.job ?? 'none'}`}>
                    <Group gap="xs">
                      <Text fw={600}>{run.job === null ? 'VMs backed up by hand' : <Link to={`/jobs/${encodeURIComponent(run.job)}`}>{run.job}</Link>}</Text>
                      <StatusBadge status={run.status} />
                      <Text size="xs" c="dimmed">
                        {formatTime(run.created)} · <Link to={`/tasks?run=${run.id}`}>tasks</Link>
                      </Text>
                      {run.job !== null && (run.status === 'failed' || run.status === 'cancelled') && <RunFailedAgainButton job={run.job} />}
                    </Group>
                    {d?.isError === true && <ProblemAlert error={d.error} onRetry={() => void d.refetch()} />}
                    {d?.data !== undefined && (
                      <List size="sm" spacing={2} mt={4} listStyleType="none">
                        {lastAttempts(d.data.tasks).map((t) => (
                          <List.Item key={t.id}>
                            <Group gap={6} wrap="nowrap" align="start">
                              <StatusBadge status={t.status} />
                              <Text size="sm" style={{ overflowWrap: 'anywhere' }}>
                                <Link to={`/tasks/${t.id}`}>{t.vm ?? t.kind}</Link>
                                {t.attempt > 1 && ` (attempt ${t.attempt})`}
                                {t.error !== null && `: ${t.error.message}`}
                                {t.result?.warnings !== undefined && t.result.warnings.length > 0 && `: ${t.result.warnings.join('; ')}`}
                              </Text>
                            </Group>
                          </List.Item>
                        ))}
                      </List>
                    )}
                  </div>
                );
              })}
            </Stack>
          )
        }
      </QueryView>
    </DashCard>
  );
}

function RunningCard() {
  const live = useLiveTasks();
  const running = useQuery({ queryKey: ['tasks', 'running'], queryFn: () => call('get', '/api/v1/tasks', { query: { status: 'running', limit: 50 } }) });
  const queued = useQuery({ queryKey: ['tasks', 'queued-count'], queryFn: () => call('get', '/api/v1/tasks', { query: { status: 'queued', limit: 1 } }) });
  return (
    <DashCard title="Running now" testId="running">
      <QueryView query={running} context="Reading the running tasks">
        {(list) => (
          <Stack gap="xs">
            {list.items.length === 0 ? (
              <Text c="dimmed">Nothing is running.</Text>
            ) : (
              <List size="sm" spacing={4} listStyleType="none">
                {list.items.map((t) => (
                  <List.Item key={t.id} data-testid="running-task">
                    <Group gap="xs" wrap="wrap">
                      <Link to={`/tasks/${t.id}`}>{`${t.kind} ${t.vm ?? t.repository ?? ''}`.trim()}</Link>
                      <TaskProgress progress={t.progress} label={`Progress of ${t.kind} ${t.vm ?? ''}`} />
                    </Group>
                  </List.Item>
                ))}
              </List>
            )}
            <Text size="xs" c="dimmed">
              {queued.data === undefined ? '' : `${queued.data.total} queued · `}
              {live === 'live' ? 'updated live' : 'live updates unavailable'} · <Link to="/tasks">all tasks</Link>
            </Text>
          </Stack>
        )}
      </QueryView>
    </DashCard>
  );
}

function ProtectionCard() {
  const report = useQuery({ queryKey: ['reports', 'protection'], queryFn: () => call('get', '/api/v1/reports/protection') });
  return (
    <DashCard title="Protection" testId="protection">
      <QueryView query={report} context="Reading the protection report">
        {(r) =>
          r.uncovered.length === 0 && r.pastRpo.length === 0 ? (
            <Text c="teal">Every VM is covered by a job and within its recovery point objective.</Text>
          ) : (
            <Stack gap="sm">
              {r.uncovered.length > 0 && (
                <div>
                  <Text fw={600} size="sm">
                    Not covered by any job ({r.uncovered.length})
                  </Text>
                  <Group gap={6} mt={4}>
                    {r.uncovered.map((vm) => (
                      <Badge key={vm} color="red" variant="light" tt="none" component={Link} to={`/vms/${encodeURIComponent(vm)}`} style={{ cursor: 'pointer' }}>
                        {vm}
                      </Badge>
                    ))}
                  </Group>
                </div>
              )}
              {r.pastRpo.length > 0 && (
                <div>
                  <Text fw={600} size="sm">
                    Past their recovery point objective ({r.pastRpo.length})
                  </Text>
                  <List size="sm" mt={4}>
                    {r.pastRpo.map((p) => (
                      <List.Item key={p.vm}>
                        <Link to={`/vms/${encodeURIComponent(p.vm)}`}>{p.vm}</Link>: RPO {p.rpo}, last good backup {p.lastBackup === null ? 'never' : `${formatAge(p.ageMs)} ago`}
                      </List.Item>
                    ))}
                  </List>
                </div>
              )}
              <Text size="xs" c="dimmed">
                As of {formatTime(r.at)}
              </Text>
            </Stack>
          )
        }
      </QueryView>
    </DashCard>
  );
}

function RepositoriesCard() {
  const repositories = useQuery({ queryKey: ['repositories'], queryFn: () => call('get', '/api/v1/repositories', { query: { limit: 100 } }) });
  const names = repositories.data?.items.map((r) => r.name) ?? [];
  const stats = useQueries({ queries: names.map((name) => ({ queryKey: ['repositories', name, 'stats'], queryFn: () => call('get', '/api/v1/repositories/{repo}/stats', { params: { repo: name } }) })) });
  const loaded = names.flatMap((name, i) => {
    const data = stats[i]?.data;
    return data === undefined ? [] : [{ name, ...data }];
  });
  return (
    <DashCard title="Repository space" testId="repositories">
      <QueryView query={repositories} context="Reading the repositories">
        {(list) =>
          list.items.length === 0 ? (
            <Text c="dimmed">No repository is configured.</Text>
          ) : (
            <Stack gap="sm">
              <HorizontalScroll label="Repository space (scrolls sideways)">
              <Table aria-label="Repository space and savings" verticalSpacing={4}>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th scope="col">Repository</Table.Th>
                    <Table.Th scope="col">Snapshots</Table.Th>
                    <Table.Th scope="col">Protected</Table.Th>
                    <Table.Th scope="col">Stored</Table.Th>
                    <Table.Th scope="col">Dedup</Table.Th>
                    <Table.Th scope="col">Compression</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {list.items.map((repo, i) => {
                    const s = stats[i];
                    if (s?.isError === true)
                      return (
                        <Table.Tr key={repo.name}>
                          <Table.Td>{repo.name}</Table.Td>
                          <Table.Td colSpan={5}>
                            <ProblemAlert error={s.error} onRetry={() => void s.refetch()} />
                          </Table.Td>
                        </Table.Tr>
                      );
                    const d = s?.data;
                    return (
                      <Table.Tr key={repo.name} data-testid={`repository-${repo.name}`}>
                        <Table.Td>{repo.name}</Table.Td>
                        <Table.Td>{d?.snapshots ?? '…'}</Table.Td>
                        <Table.Td>{formatBytes(d?.bytesLogical)}</Table.Td>
                        <Table.Td>{formatBytes(d?.bytesStored)}</Table.Td>
                        <Table.Td>{formatRatio(d?.dedupRatio)}</Table.Td>
                        <Table.Td>{formatRatio(d?.compressionRatio)}</Table.Td>
                      </Table.Tr>
                    );
                  })}
                </Table.Tbody>
              </Table>
              </HorizontalScroll>
              {loaded.map((r) => (
                <Text size="sm" key={r.name}>
                  {r.name}: dedup and compression save {formatBytes(Math.max(0, (r.bytesLogical ?? 0) - (r.bytesStored ?? 0)))} ({formatRatio(r.totalRatio)} overall)
                </Text>
              ))}
              {loaded.length > 0 && (
                <EChart
                  label="Protected and stored bytes per repository"
                  height={160}
                  option={{
                    tooltip: { trigger: 'axis', valueFormatter: (v: unknown) => formatBytes(Number(v)) },
                    legend: { bottom: 0 },
                    grid: { left: 8, right: 8, top: 8, bottom: 28, containLabel: true },
                    xAxis: { type: 'value', axisLabel: { formatter: (v: number) => formatBytes(v) } },
                    yAxis: { type: 'category', data: loaded.map((r) => r.name) },
                    series: [
                      { name: 'Protected (logical)', type: 'bar', data: loaded.map((r) => r.bytesLogical ?? 0) },
                      { name: 'Stored', type: 'bar', data: loaded.map((r) => r.bytesStored ?? 0) },
                    ],
                  }}
                />
              )}
            </Stack>
          )
        }
      </QueryView>
    </DashCard>
  );
}

function NextRunsCard() {
  const preview = useQuery({ queryKey: ['scheduler', 'preview'], queryFn: () => call('get', '/api/v1/scheduler/preview', { query: { count: 1 } }) });
  return (
    <DashCard title="Next runs" testId="next-runs">
      <QueryView query={preview} context="Reading the schedule">
        {(p) =>
          p.jobs.length === 0 ? (
            <Text c="dimmed">No job is configured.</Text>
          ) : (
            <List size="sm" spacing={6}>
              {[...p.jobs]
                .sort((a, b) => (a.nextRuns[0] ?? '').localeCompare(b.nextRuns[0] ?? ''))
                .map((j) => (
                  <List.Item key={j.job}>
                    <Link to={`/jobs/${encodeURIComponent(j.job)}`}>{j.job}</Link>: {j.running ? 'running now; next ' : ''}
                    {formatTime(j.nextRuns[0], j.timezone)} ({j.timezone})
                    <Forecast forecast={j.forecast} problem={j.problem} timezone={j.timezone} />
                  </List.Item>
                ))}
            </List>
          )
        }
      </QueryView>
    </DashCard>
  );
}

type Preview = Answer<'/api/v1/scheduler/preview', 'get'>;

/** Tonight's forecast of one job: whether every VM fits its window, from their last durations. */
function Forecast({ forecast, problem, timezone }: { forecast: Preview['jobs'][number]['forecast']; problem?: string | undefined; timezone: string }) {
  if (forecast === null) return problem === undefined ? null : <Text size="xs" c="dimmed">No forecast: {problem}</Text>;
  if (forecast.willNotStart.length === 0 && forecast.overruns.length === 0)
    return (
      <Text size="xs" c="dimmed" data-testid="forecast">
        {forecast.entries.length === 1 ? '1 VM, expected' : `${forecast.entries.length} VMs, all expected`} to fit{forecast.windowEnd === null ? '' : ` before ${formatTime(forecast.windowEnd, timezone)}`}
        {forecast.end === null ? '' : `; last ends about ${formatTime(forecast.end, timezone)}`}
      </Text>
    );
  return (
    <Text size="xs" c="red" data-testid="forecast">
      {forecast.willNotStart.length > 0 && `Will not start before the window ends: ${forecast.willNotStart.join(', ')}. `}
      {forecast.overruns.length > 0 && `Expected to overrun the window: ${forecast.overruns.join(', ')}.`}
    </Text>
  );
}
