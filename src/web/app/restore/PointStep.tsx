/** The wizard's second step: the VM's restore points from every repository, on a calendar. */
import { Button, Card, Grid, Group, Stack, Text, Title } from '@mantine/core';
import { useQueries, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { call } from '../../api/client';
import { ProblemAlert } from '../components/ProblemAlert';
import { SnapshotCalendar } from '../components/SnapshotCalendar';
import { dayKey, formatTime } from '../format';
import { FileSearch } from './FileSearch';
import type { SnapshotKind } from './wizard';

export interface RestorePoint {
  repo: string;
  id: string;
  time: string;
  /** Disks, or a file snapshot's files (undefined: not said, read as disks). */
  kind?: SnapshotKind | undefined;
}

/** Every snapshot of a VM across the repositories the caller may read. */
export function useRestorePoints(vm: string | undefined): { points: RestorePoint[]; loading: boolean; problems: { repo: string; error: unknown; retry: () => void }[] } {
  const repositories = useQuery({ queryKey: ['repositories'], queryFn: () => call('get', '/api/v1/repositories', { query: { limit: 100 } }), enabled: vm !== undefined });
  const names = repositories.data?.items.map((r) => r.name) ?? [];
  const lists = useQueries({
    queries: names.map((repo) => ({ queryKey: ['snapshots', repo, vm], queryFn: () => call('get', '/api/v1/repositories/{repo}/snapshots', { params: { repo }, query: { vm: vm ?? '', limit: 500 } }), enabled: vm !== undefined })),
  });
  const points = names.flatMap((repo, i) => (lists[i]?.data?.items ?? []).map((s) => ({ repo, id: s.id, time: s.time, kind: s.kind }))).sort((a, b) => b.time.localeCompare(a.time));
  const problems = [
    ...(repositories.isError ? [{ repo: '', error: repositories.error, retry: () => void repositories.refetch() }] : []),
    ...names.flatMap((repo, i) => {
      const l = lists[i];
      return l?.isError === true ? [{ repo, error: l.error, retry: () => void l.refetch() }] : [];
    }),
  ];
  return { points, loading: vm !== undefined && repositories.isPending || lists.some((l) => l.isPending), problems };
}

export function PointStep({ vm, onChoose }: { vm: string; onChoose: (point: RestorePoint) => void }) {
  const { points, loading, problems } = useRestorePoints(vm);
  const newest = points[0];
  const [day, setDay] = useState<string | undefined>(undefined);
  const shownDay = day ?? (newest === undefined ? undefined : dayKey(new Date(newest.time)));
  const onDay = points.filter((p) => shownDay !== undefined && dayKey(new Date(p.time)) === shownDay);
  return (
    <Grid>
      <Grid.Col span={{ base: 12, md: 6 }}>
        <Card withBorder component="section" aria-label="Restore points">
          <Title order={2} size="h4" mb="sm">
            Restore points of {vm}
          </Title>
          {problems.map((p) => (
            <ProblemAlert key={p.repo} error={p.error} onRetry={p.retry} context={p.repo === '' ? 'Reading the repositories' : `Repository ${p.repo}`} />
          ))}
          {!loading && points.length === 0 ? (
            <Text c="dimmed">No snapshot of {vm} yet: nothing to restore.</Text>
          ) : (
            <SnapshotCalendar key={points.length} snapshots={points} selectedDay={shownDay} onSelectDay={setDay} />
          )}
          {onDay.length > 0 && (
            <Stack gap={4} mt="md" role="list" aria-label={`Restore points on ${shownDay ?? ''}`}>
              {onDay.map((p) => (
                <Group key={`${p.repo}/${p.id}`} role="listitem" gap="xs">
                  <Button size="xs" variant="light" onClick={() => onChoose(p)}>
                    {formatTime(p.time)}
                  </Button>
                  <Text size="xs" c="dimmed">
                    in {p.repo} · {p.id.slice(0, 12)}
                  </Text>
                </Group>
              ))}
            </Stack>
          )}
        </Card>
      </Grid.Col>
      <Grid.Col span={{ base: 12, md: 6 }}>
        <Card withBorder component="section" aria-label="Search by file name">
          <Title order={2} size="h4" mb="sm">
            Looking for one file?
          </Title>
          <FileSearch vm={vm} onOpen={(repo, id) => onChoose({ repo, id, time: points.find((p) => p.id === id)?.time ?? '' })} />
        </Card>
      </Grid.Col>
    </Grid>
  );
}
