/**
 * A repository's media catalog (GET /repositories/{repo}/tape-catalog): every snapshot written
 * to tape with `coffer tape export` (or brought back by `tape import`), its tape set and volumes,
 * when, and whether it is still in the repository — a forgotten snapshot stays listed, since
 * that is when an operator needs to know which tapes to import it back from. Newest first.
 */
import { Badge, Stack, Table, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { call } from '../../api/client';
import { HorizontalScroll } from '../components/HorizontalScroll';
import { QueryView } from '../components/QueryView';
import { formatTime } from '../format';

export function TapeCatalog({ repo }: { repo: string }) {
  const catalog = useQuery({ queryKey: ['repositories', repo, 'tape-catalog'], queryFn: () => call('get', '/api/v1/repositories/{repo}/tape-catalog', { params: { repo } }) });
  return (
    <Stack gap={4} mt="md" data-testid="tape-catalog">
      <Title order={3} size="h5">
        Tape catalog
      </Title>
      <QueryView query={catalog} context="Reading the tape catalog">
        {({ entries, damagedNotes }) => (
          <>
            {damagedNotes > 0 && (
              <Text size="sm" c="red.9">
                {damagedNotes} catalog entr{damagedNotes === 1 ? 'y' : 'ies'} could not be read: verify the repository.
              </Text>
            )}
            {entries.length === 0 ? (
              <Text size="sm" c="dimmed">
                No snapshot of this repository was ever written to tape (coffer tape export).
              </Text>
            ) : (
              <HorizontalScroll label={`Tape catalog of ${repo} (scrolls sideways)`}>
                <Table aria-label={`Tape catalog of ${repo}`} verticalSpacing={4} striped>
                  <Table.Thead>
                    <Table.Tr>
                      <Table.Th scope="col">VM</Table.Th>
                      <Table.Th scope="col">Snapshot</Table.Th>
                      <Table.Th scope="col">Tape set</Table.Th>
                      <Table.Th scope="col">Volumes</Table.Th>
                      <Table.Th scope="col">Written</Table.Th>
                      <Table.Th scope="col">In the repository</Table.Th>
                    </Table.Tr>
                  </Table.Thead>
                  <Table.Tbody>
                    {[...entries].reverse().map((e) => (
                      <Table.Tr key={`${e.snapshot}-${e.tapeSet ?? ''}-${e.written}`}>
                        <Table.Td>{e.vm ?? '?'}</Table.Td>
                        <Table.Td>
                          {e.inRepository ? <Link to={`/repositories/${repo}/snapshots/${e.snapshot}`}>{e.time === null ? e.snapshot.slice(0, 12) : formatTime(e.time)}</Link> : e.time === null ? e.snapshot.slice(0, 12) : formatTime(e.time)}
                        </Table.Td>
                        <Table.Td>
                          <code>{e.tapeSet?.slice(0, 8) ?? '?'}</code>
                        </Table.Td>
                        <Table.Td>{e.volumes.map((v) => (v.name === '' ? `#${v.sequence}` : `#${v.sequence} ${v.name}`)).join(', ')}</Table.Td>
                        <Table.Td>
                          {formatTime(e.written)}
                          {e.imported && ' (imported from it)'}
                        </Table.Td>
                        <Table.Td>
                          {e.inRepository ? (
                            'yes'
                          ) : (
                            <Badge color="orange.9" variant="light" title="Forgotten from the repository: import it back from these volumes">
                              forgotten: on tape only
                            </Badge>
                          )}
                        </Table.Td>
                      </Table.Tr>
                    ))}
                  </Table.Tbody>
                </Table>
              </HorizontalScroll>
            )}
          </>
        )}
      </QueryView>
    </Stack>
  );
}
