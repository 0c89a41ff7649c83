/**
 * "Which night still had this file?": a file name (a glob: `*.docx`, `report-202?.pdf`)
 * searched in a VM's snapshots, newest first, one page of snapshots at a time
 * (`GET /vms/V/files/search`). The answer is one line per snapshot searched: the files it
 * holds with that name, or "not in this snapshot", and first the newest snapshot that has it
 * (and whether newer ones no longer do). A match opens that snapshot's files.
 */
import { Anchor, Button, Group, List, Stack, Text, TextInput } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { call, type Answer } from '../../api/client';
import { QueryView } from '../components/QueryView';
import { formatBytes, formatTime } from '../format';

export function FileSearch({ vm, onOpen }: { vm: string; onOpen: (repo: string, snapshot: string) => void }) {
  const [name, setName] = useState('');
  const [asked, setAsked] = useState<{ name: string; offset: number } | undefined>(undefined);
  const search = useQuery({
    queryKey: ['file-search', vm, asked],
    queryFn: () => call('get', '/api/v1/vms/{vm}/files/search', { params: { vm }, query: { name: asked?.name ?? '', offset: asked?.offset ?? 0, limit: 10 } }),
    enabled: asked !== undefined,
    staleTime: 60_000,
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (name.trim() !== '') setAsked({ name: name.trim(), offset: 0 });
  };
  return (
    <Stack gap="xs">
      <form onSubmit={submit} aria-label="Search by file name">
        <Group align="end" gap="xs">
          <TextInput label="Which night still had this file?" description="A file name; * and ? match any characters" placeholder="report.docx" value={name} onChange={(e) => setName(e.currentTarget.value)} />
          <Button type="submit" variant="default">
            Search {vm}'s snapshots
          </Button>
        </Group>
      </form>
      {asked !== undefined && (
        <QueryView query={search} context="Searching the snapshots">
          {(r) => <FileSearchResults name={asked.name} answer={r} onOpen={onOpen} onOlder={(offset) => setAsked({ name: asked.name, offset })} />}
        </QueryView>
      )}
    </Stack>
  );
}

type SearchAnswer = Answer<'/api/v1/vms/{vm}/files/search', 'get'>;
type Match = SearchAnswer['items'][number];

/** The answer of one page of the search, snapshot by snapshot. */
export function FileSearchResults({ name, answer, onOpen, onOlder }: { name: string; answer: SearchAnswer; onOpen: (repo: string, snapshot: string) => void; onOlder: (offset: number) => void }) {
  const searched = answer.searchedSnapshots ?? [];
  const matchesOf = (repo: string, snapshot: string): Match[] => answer.items.filter((m) => m.repository === repo && m.snapshot === snapshot);
  const newestWith = searched.findIndex((s) => s.matches > 0);
  return (
    <Stack gap={4}>
      <Text size="sm" data-testid="search-summary">
        {newestWith === -1
          ? `No file named “${name}” in the ${searched.length} snapshots searched (of ${answer.snapshots}).`
          : newestWith === 0
            ? `The newest snapshot searched has “${name}” (${formatTime(searched[0]?.time)}).`
            : `The newest snapshot that has “${name}” is from ${formatTime(searched[newestWith]?.time)}; not in the ${newestWith} newer ${newestWith === 1 ? 'snapshot' : 'snapshots'} above.`}
      </Text>
      <List size="sm" spacing={4} aria-label="Search results" data-testid="search-results">
        {searched.map((s) => {
          const matches = matchesOf(s.repository, s.snapshot);
          return (
            <List.Item key={`${s.repository}/${s.snapshot}`} data-testid="search-snapshot" data-matches={s.matches}>
              <Text span size="sm" fw={600}>
                {formatTime(s.time)}
              </Text>
              {s.matches === 0 ? (
                <Text span size="sm" c="dimmed">
                  {' '}
                  not in this snapshot
                </Text>
              ) : (
                <>
                  {' '}
                  <Anchor component="button" type="button" size="sm" underline="always" onClick={() => onOpen(s.repository, s.snapshot)}>
                    open this snapshot
                  </Anchor>
                  <List size="sm" withPadding listStyleType="none">
                    {matches.map((m, i) => (
                      <List.Item key={`${m.volume ?? ''}${m.path ?? ''}${i}`}>
                        <code>
                          {m.volume}
                          {m.path}
                        </code>{' '}
                        ({formatBytes(m.size)}
                        {m.mtime == null ? '' : `, changed ${formatTime(m.mtime)}`})
                      </List.Item>
                    ))}
                  </List>
                </>
              )}
            </List.Item>
          );
        })}
      </List>
      {answer.truncated && <Text size="xs">Some volumes had more matches than shown, or the search ran out of time: narrow the name.</Text>}
      {answer.next !== null && answer.next !== undefined && (
        <Group>
          <Button size="xs" variant="default" onClick={() => onOlder(answer.next as number)}>
            Search older snapshots
          </Button>
        </Group>
      )}
    </Stack>
  );
}
