/**
 * One restore point: when and where it was taken, its tags (and, when `coffer tag` changed
 * them, when, and those it was backed up with; an administrator adds and removes them here:
 * snapshot/SnapshotTags.tsx), its disks (size, source format), what changed since another
 * snapshot of its VM (snapshot/SnapshotCompare.tsx), its figures (bytes read, new, stored…),
 * its consistency (application or crash), and what happened to it since: verification, test
 * restore, tapes (snapshot/SnapshotRecords.tsx).
 */
import { Anchor, Card, Code, Grid, Group, Stack, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { Link, useParams } from 'react-router';
import { call } from '../../api/client';
import { KeyValues } from '../components/KeyValues';
import { PageTitle } from '../components/PageTitle';
import { QueryView } from '../components/QueryView';
import { formatBytes, formatTime } from '../format';
import { SnapshotCompare } from '../snapshot/SnapshotCompare';
import { SnapshotRecords } from '../snapshot/SnapshotRecords';
import { SnapshotTags } from '../snapshot/SnapshotTags';

export function SnapshotPage() {
  const { repo = '', snapshot = '' } = useParams();
  const query = useQuery({ queryKey: ['snapshot', repo, snapshot], queryFn: () => call('get', '/api/v1/repositories/{repo}/snapshots/{snapshot}', { params: { repo, snapshot } }) });
  return (
    <>
      <PageTitle>{`Snapshot ${snapshot.slice(0, 12)}`}</PageTitle>
      <QueryView query={query} context="Reading the snapshot">
        {(s) => (
          <Stack>
            <Group gap="md">
              <Text>
                VM <Anchor component={Link} to={`/vms/${encodeURIComponent(s.vm)}`}>{s.vm}</Anchor>
              </Text>
              <Text>taken {formatTime(s.time)}</Text>
              <Text>on {s.hostname}</Text>
              <Text>in repository {repo}</Text>
            </Group>
            <SnapshotTags repo={repo} snapshot={s} />
            <Text size="sm">
              Id <Code>{s.id}</Code>
              {s.parent != null && (
                <>
                  {' '}· incremental on <Anchor component={Link} underline="always" to={`/repositories/${encodeURIComponent(repo)}/snapshots/${s.parent}`}>{s.parent.slice(0, 12)}</Anchor>
                </>
              )}
            </Text>
            <Card withBorder component="section" aria-label="Disks">
              <Title order={2} size="h4" mb="sm">
                Disks ({s.disks.length}){s.bytesLogical === undefined ? '' : `, ${formatBytes(s.bytesLogical)} in all`}
              </Title>
              <Table aria-label="Disks of the snapshot">
                <Table.Thead>
                  <Table.Tr>
                    <Table.Th scope="col">Disk</Table.Th>
                    <Table.Th scope="col">Size</Table.Th>
                    <Table.Th scope="col">Source format</Table.Th>
                    <Table.Th scope="col">Source</Table.Th>
                    <Table.Th scope="col">Block size</Table.Th>
                  </Table.Tr>
                </Table.Thead>
                <Table.Tbody>
                  {s.disks.map((d) => (
                    <Table.Tr key={d.name}>
                      <Table.Td>{d.name}</Table.Td>
                      <Table.Td>{formatBytes(d.size)}</Table.Td>
                      <Table.Td>{d.sourceFormat}</Table.Td>
                      <Table.Td style={{ wordBreak: 'break-all' }}>{d.source}</Table.Td>
                      <Table.Td>{formatBytes(d.blockSize)}</Table.Td>
                    </Table.Tr>
                  ))}
                </Table.Tbody>
              </Table>
            </Card>
            <SnapshotCompare repo={repo} snapshot={s} />
            <Grid>
              <Grid.Col span={{ base: 12, md: 6 }}>
                <Card withBorder component="section" aria-label="Figures">
                  <Title order={2} size="h4" mb="sm">
                    Figures
                  </Title>
                  <KeyValues label="Figures of the backup" values={s.stats} />
                </Card>
              </Grid.Col>
              <Grid.Col span={{ base: 12, md: 6 }}>
                <Card withBorder component="section" aria-label="Consistency">
                  <Title order={2} size="h4" mb="sm">
                    Consistency
                  </Title>
                  <KeyValues label="Consistency of the snapshot" values={s.consistency} />
                </Card>
              </Grid.Col>
            </Grid>
            <SnapshotRecords repo={repo} snapshot={s.id} />
          </Stack>
        )}
      </QueryView>
    </>
  );
}
