/**
 * Storage over time, per repository: the logical data protected and the bytes stored per day
 * over the last 60 days, or per month over 12 (storage/storage-series.ts), what dedup and compression save now, the
 * growth per day and when the storage fills at that growth: from the free space the server
 * reads (GET …/space: statfs of a local repository's filesystem), or, where it cannot know it
 * (S3, a repository server), from the size the user types (storage/FillForecast.tsx);
 * per VM: its protected bytes per day or month (a stacked chart), snapshots, latest size,
 * bytes stored in the period.
 */
import { Card, Group, Loader, NativeSelect, SegmentedControl, SimpleGrid, Stack, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { call } from '../../api/client';
import { EChart } from '../components/EChart';
import { HorizontalScroll } from '../components/HorizontalScroll';
import { PageTitle } from '../components/PageTitle';
import { ProblemAlert } from '../components/ProblemAlert';
import { QueryView } from '../components/QueryView';
import { formatBytes, formatRatio } from '../format';
import { FillForecast } from '../storage/FillForecast';
import { byMonth, storageSeries } from '../storage/storage-series';

/** The two periods: 60 days day by day, or 12 months (365 days grouped by month). */
const PERIODS = { days: { days: 60, label: '60 days', unit: 'day' }, months: { days: 365, label: '12 months', unit: 'month' } } as const;
type Period = keyof typeof PERIODS;

export function StoragePage() {
  const repositories = useQuery({ queryKey: ['repositories'], queryFn: () => call('get', '/api/v1/repositories', { query: { limit: 100 } }) });
  const [chosen, setChosen] = useState<string | undefined>(undefined);
  const repo = chosen ?? repositories.data?.items[0]?.name;
  return (
    <>
      <PageTitle>Storage over time</PageTitle>
      <QueryView query={repositories} context="Reading the repositories">
        {(list) =>
          list.items.length === 0 || repo === undefined ? (
            <Text c="dimmed">No repository is configured.</Text>
          ) : (
            <Stack gap="md">
              {list.items.length > 1 && <NativeSelect label="Repository" data={list.items.map((r) => r.name)} value={repo} onChange={(e) => setChosen(e.currentTarget.value)} w={260} />}
              <RepositoryStorage key={repo} repo={repo} />
            </Stack>
          )
        }
      </QueryView>
    </>
  );
}

function RepositoryStorage({ repo }: { repo: string }) {
  const stats = useQuery({ queryKey: ['repositories', repo, 'stats'], queryFn: () => call('get', '/api/v1/repositories/{repo}/stats', { params: { repo } }) });
  const snapshots = useQuery({ queryKey: ['snapshots', repo, 'all'], queryFn: () => call('get', '/api/v1/repositories/{repo}/snapshots', { params: { repo }, query: { limit: 500 } }) });
  const tasks = useQuery({
    queryKey: ['tasks', 'stored', repo],
    queryFn: async () => {
      const pages = await Promise.all((['succeeded', 'warning'] as const).map((status) => call('get', '/api/v1/tasks', { query: { status, limit: 500 } })));
      return pages.flatMap((p) => p.items).filter((t) => t.kind === 'backup' && t.repository === repo);
    },
  });
  const [period, setPeriod] = useState<Period>('days');
  const dayCount = PERIODS[period].days;
  const series = useMemo(
    () => (snapshots.data === undefined || tasks.data === undefined ? undefined : storageSeries(snapshots.data.items, tasks.data.map((t) => ({ vm: t.vm, ended: t.ended, bytesStored: t.result?.bytesStored })), new Date(), dayCount)),
    [snapshots.data, tasks.data, dayCount],
  );
  const points = series === undefined ? undefined : period === 'days' ? series.days : byMonth(series.days);
  const unit = PERIODS[period].unit;
  return (
    <Stack gap="md">
      <SimpleGrid cols={{ base: 1, md: 3 }} spacing="md">
        <Card withBorder component="section" aria-label="Now" style={{ minWidth: 0 }}>
          <Title order={2} size="h4" mb="xs">
            Now
          </Title>
          <QueryView query={stats} context="Reading the repository's figures">
            {(s) => (
              <Stack gap={2}>
                <Text size="sm">Protected (logical): {formatBytes(s.bytesLogical)}</Text>
                <Text size="sm">Stored: {formatBytes(s.bytesStored)}</Text>
                <Text size="sm">
                  Saved by dedup ({formatRatio(s.dedupRatio)}) and compression ({formatRatio(s.compressionRatio)}): {formatBytes(Math.max(0, (s.bytesLogical ?? 0) - (s.bytesStored ?? 0)))}
                </Text>
              </Stack>
            )}
          </QueryView>
        </Card>
        <Card withBorder component="section" aria-label="Growth" style={{ minWidth: 0 }} data-testid="growth">
          <Title order={2} size="h4" mb="xs">
            Growth
          </Title>
          {series === undefined ? (
            <Text size="sm">…</Text>
          ) : (
            <Text size="sm">{series.growthPerDay === 0 ? 'Nothing stored in the last 7 days.' : `${formatBytes(series.growthPerDay)} stored per day (the last 7 days' average).`}</Text>
          )}
        </Card>
        <FillForecast repo={repo} stored={stats.data?.bytesStored} growthPerDay={series?.growthPerDay} />
      </SimpleGrid>
      {snapshots.isError && <ProblemAlert error={snapshots.error} onRetry={() => void snapshots.refetch()} context="Reading the snapshots" />}
      {tasks.isError && <ProblemAlert error={tasks.error} onRetry={() => void tasks.refetch()} context="Reading the backups' figures" />}
      {series === undefined && !snapshots.isError && !tasks.isError && <Loader size="sm" aria-label="Reading the history…" />}
      <SegmentedControl aria-label="Period" w="fit-content" value={period} onChange={(v) => setPeriod(v as Period)} data={Object.entries(PERIODS).map(([value, p]) => ({ value, label: `${p.label}, by ${p.unit}` }))} />
      {series !== undefined && points !== undefined && (
        <>
          <EChart
            label={`Protected and stored bytes of ${repo} per ${unit} over the last ${PERIODS[period].label} (figures in the table below)`}
            height={260}
            option={{
              tooltip: { trigger: 'axis', valueFormatter: (v: unknown) => formatBytes(Number(v)) },
              legend: { bottom: 0 },
              grid: { left: 8, right: 8, top: 8, bottom: 28, containLabel: true },
              xAxis: { type: 'category', data: points.map((d) => (period === 'days' ? d.key.slice(5) : d.key)) },
              yAxis: { type: 'value', axisLabel: { formatter: (v: number) => formatBytes(v) } },
              series: [
                { name: 'Protected (logical)', type: 'line', data: points.map((d) => d.protected), showSymbol: false },
                { name: 'Stored in the period', type: 'line', data: points.map((d) => d.storedSum), showSymbol: false },
                { name: `Stored that ${unit}`, type: 'bar', data: points.map((d) => d.storedAdded) },
              ],
            }}
          />
          {series.perVm.length > 0 && (
            <EChart
              label={`Protected bytes of each VM in ${repo} per ${unit} over the last ${PERIODS[period].label} (${series.perVm.length} VMs; their latest sizes in the table below)`}
              height={240}
              option={{
                tooltip: { trigger: 'axis', valueFormatter: (v: unknown) => formatBytes(Number(v)) },
                legend: { bottom: 0, type: 'scroll' },
                grid: { left: 8, right: 8, top: 8, bottom: 28, containLabel: true },
                xAxis: { type: 'category', data: points.map((d) => (period === 'days' ? d.key.slice(5) : d.key)) },
                yAxis: { type: 'value', axisLabel: { formatter: (v: number) => formatBytes(v) } },
                // Stacked: the bars' height is the protected total of the chart above, each VM its share.
                series: series.perVm.map((v) => ({ name: v.vm, type: 'bar', stack: 'vms', data: points.map((d) => d.protectedByVm[v.vm] ?? 0) })),
              }}
            />
          )}
          <Group align="start" grow wrap="wrap">
            <HorizontalScroll label="Storage per VM (scrolls sideways)">
              <Table aria-label="Storage per VM" verticalSpacing={4} striped>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th scope="col">VM</Table.Th>
                    <Table.Th scope="col">Snapshots</Table.Th>
                    <Table.Th scope="col">Latest size</Table.Th>
                    <Table.Th scope="col">Stored in {PERIODS[period].label}</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {series.perVm.map((v) => (
                    <Table.Tr key={v.vm}>
                      <Table.Td>{v.vm}</Table.Td>
                      <Table.Td>{v.snapshots}</Table.Td>
                      <Table.Td>{formatBytes(v.latestLogical)}</Table.Td>
                      <Table.Td>{formatBytes(v.storedInPeriod)}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </HorizontalScroll>
            {series.days.every((d) => d.storedAdded === 0) ? (
              <Text size="sm" c="dimmed">
                No backup run by the server stored new data in the last {PERIODS[period].label} (backups made with the command line are not tasks, so they are not counted here).
              </Text>
            ) : (
            <HorizontalScroll label={`Storage per ${unit} (scrolls sideways)`}>
              <Table aria-label={`Storage per ${unit}`} verticalSpacing={2}>
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th scope="col">{unit === 'day' ? 'Day' : 'Month'}</Table.Th>
                    <Table.Th scope="col">Protected</Table.Th>
                    <Table.Th scope="col">Stored that {unit}</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {points.filter((d) => d.storedAdded > 0).reverse().map((d) => (
                    <Table.Tr key={d.key}>
                      <Table.Td>{d.key}</Table.Td>
                      <Table.Td>{formatBytes(d.protected)}</Table.Td>
                      <Table.Td>{formatBytes(d.storedAdded)}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </HorizontalScroll>
            )}
          </Group>
        </>
      )}
    </Stack>
  );
}
