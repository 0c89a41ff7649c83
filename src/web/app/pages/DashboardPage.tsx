/**
 * The morning view: what is not protected (VMs no job covers, VMs past their recovery point
 * objective), repository space and what dedup and compression save, the next scheduled runs,
 * and last night's results per job and VM once the server offers runs.
 */
import { Badge, Card, Group, List, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { useQueries, useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { call } from '../../api/client';
import { useApiOffers } from '../api-offers';
import { EChart } from '../components/EChart';
import { HorizontalScroll } from '../components/HorizontalScroll';
import { NotAvailable } from '../components/NotAvailable';
import { PageTitle } from '../components/PageTitle';
import { ProblemAlert } from '../components/ProblemAlert';
import { QueryView } from '../components/QueryView';
import { formatAge, formatBytes, formatRatio, formatTime } from '../format';

export function DashboardPage() {
  return (
    <>
      <PageTitle>Dashboard</PageTitle>
      <SimpleGrid cols={{ base: 1, md: 2 }} spacing="md">
        <LastNightCard />
        <ProtectionCard />
        <RepositoriesCard />
        <NextRunsCard />
      </SimpleGrid>
    </>
  );
}

function DashCard({ title, children, testId }: { title: string; children: React.ReactNode; testId: string }) {
  return (
    <Card withBorder padding="md" component="section" aria-label={title} data-testid={testId}>
      <Title order={2} size="h4" mb="sm">
        {title}
      </Title>
      {children}
    </Card>
  );
}

function LastNightCard() {
  const offersRuns = useApiOffers('/api/v1/runs');
  return (
    <DashCard title="Last night" testId="last-night">
      {offersRuns === false && <NotAvailable what="Last night's results per job and VM" route="/api/v1/runs" />}
      {offersRuns === true && <Text size="sm">This server reports runs; their summary here is the console's next step (see docs/console.md).</Text>}
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
                      <Badge key={vm} color="red" variant="light" component={Link} to={`/vms/${encodeURIComponent(vm)}`} style={{ cursor: 'pointer' }}>
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
  const jobs = useQuery({ queryKey: ['jobs', 'all'], queryFn: () => call('get', '/api/v1/jobs', { query: { limit: 100 } }) });
  const names = jobs.data?.items.map((j) => j.name) ?? [];
  const runs = useQueries({ queries: names.map((job) => ({ queryKey: ['jobs', job, 'next-runs', 1], queryFn: () => call('get', '/api/v1/jobs/{job}/next-runs', { params: { job }, query: { count: 1 } }) })) });
  const upcoming = names
    .flatMap((job, i) => {
      const r = runs[i]?.data;
      const at = r?.runs[0];
      return r === undefined || at === undefined ? [] : [{ job, at, timezone: r.timezone }];
    })
    .sort((a, b) => a.at.localeCompare(b.at));
  return (
    <DashCard title="Next runs" testId="next-runs">
      <QueryView query={jobs} context="Reading the jobs">
        {(list) =>
          list.items.length === 0 ? (
            <Text c="dimmed">No job is configured.</Text>
          ) : (
            <List size="sm" spacing={4}>
              {upcoming.map((u) => (
                <List.Item key={u.job}>
                  <Link to={`/jobs/${encodeURIComponent(u.job)}`}>{u.job}</Link>: {formatTime(u.at, u.timezone)} ({u.timezone})
                </List.Item>
              ))}
            </List>
          )
        }
      </QueryView>
    </DashCard>
  );
}
