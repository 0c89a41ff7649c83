/**
 * One VM: its inventory record, and its restore points from every repository on a calendar;
 * a day's snapshots link to their details.
 */
import { Anchor, Badge, Card, Grid, Group, List, Stack, Text, Title } from '@mantine/core';
import { useQueries, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { Link, useParams } from 'react-router';
import { call } from '../../api/client';
import { PageTitle } from '../components/PageTitle';
import { ProblemAlert } from '../components/ProblemAlert';
import { QueryView } from '../components/QueryView';
import { SnapshotCalendar } from '../components/SnapshotCalendar';
import { dayKey, formatTime } from '../format';
import { sourceKind } from './VmsPage';

export function VmPage() {
  const name = useParams().vm ?? '';
  const vm = useQuery({ queryKey: ['vms', 'one', name], queryFn: () => call('get', '/api/v1/vms/{vm}', { params: { vm: name } }) });
  const repositories = useQuery({ queryKey: ['repositories'], queryFn: () => call('get', '/api/v1/repositories', { query: { limit: 100 } }) });
  const repoNames = repositories.data?.items.map((r) => r.name) ?? [];
  const lists = useQueries({
    queries: repoNames.map((repo) => ({ queryKey: ['snapshots', repo, name], queryFn: () => call('get', '/api/v1/repositories/{repo}/snapshots', { params: { repo }, query: { vm: name, limit: 500 } }) })),
  });
  const snapshots = repoNames.flatMap((repo, i) => (lists[i]?.data?.items ?? []).map((s) => ({ ...s, repo })));
  const [day, setDay] = useState<string>();
  const onDay = snapshots.filter((s) => day !== undefined && dayKey(new Date(s.time)) === day);

  return (
    <>
      <PageTitle>{`VM ${name}`}</PageTitle>
      <Grid>
        <Grid.Col span={{ base: 12, md: 5 }}>
          <Card withBorder component="section" aria-label="Inventory">
            <Title order={2} size="h4" mb="sm">
              Inventory
            </Title>
            <QueryView query={vm} context="Reading the VM">
              {(v) => (
                <Stack gap={4}>
                  <Text size="sm">Host: {v.host}{v.datastore === undefined ? '' : ` · datastore ${v.datastore}`}</Text>
                  <Text size="sm">Source: {sourceKind(v.source)}</Text>
                  <Text size="sm">Recovery point objective: {v.rpo ?? 'none set'}</Text>
                  <Group gap={4}>{(v.tags ?? []).map((t) => <Badge key={t} size="sm" variant="light" tt="none">{t}</Badge>)}</Group>
                  <Text size="sm">
                    Jobs: {v.jobs.length === 0 ? <Badge color="red" variant="light">not covered by any job</Badge> : v.jobs.map((j, i) => <span key={j}>{i > 0 && ', '}<Link to={`/jobs/${encodeURIComponent(j)}`}>{j}</Link></span>)}
                  </Text>
                </Stack>
              )}
            </QueryView>
          </Card>
        </Grid.Col>
        <Grid.Col span={{ base: 12, md: 7 }}>
          <Card withBorder component="section" aria-label="Restore points">
            <Title order={2} size="h4" mb="sm">
              Restore points ({snapshots.length})
            </Title>
            {lists.map((l, i) => (l.isError ? <ProblemAlert key={repoNames[i]} error={l.error} context={`Repository ${repoNames[i] ?? ''}`} onRetry={() => void l.refetch()} /> : null))}
            {repositories.isError && <ProblemAlert error={repositories.error} onRetry={() => void repositories.refetch()} />}
            {snapshots.length === 0 && lists.every((l) => l.isSuccess) ? (
              <Text c="dimmed">No snapshot of this VM yet.</Text>
            ) : (
              <SnapshotCalendar key={snapshots.length} snapshots={snapshots} selectedDay={day} onSelectDay={setDay} />
            )}
            {onDay.length > 0 && (
              <List mt="md" size="sm" aria-label={`Snapshots on ${day ?? ''}`}>
                {onDay.map((s) => (
                  <List.Item key={`${s.repo}/${s.id}`}>
                    <Anchor component={Link} underline="always" to={`/repositories/${encodeURIComponent(s.repo)}/snapshots/${s.id}`}>
                      {formatTime(s.time)}
                    </Anchor>{' '}
                    in {s.repo} <Text span c="dimmed" size="xs">{s.id.slice(0, 12)}</Text>
                  </List.Item>
                ))}
              </List>
            )}
          </Card>
        </Grid.Col>
      </Grid>
    </>
  );
}
