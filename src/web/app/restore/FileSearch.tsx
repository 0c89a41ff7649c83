/**
 * "Which night still had this file?": a file name (a glob: `*.docx`, `report-202?.pdf`)
 * searched in a VM's snapshots, newest first, one page of snapshots at a time
 * (`GET /vms/V/files/search`). A match opens that snapshot's files.
 */
import { Anchor, Button, Group, List, Stack, Text, TextInput } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { call } from '../../api/client';
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
          {(r) => (
            <>
              {r.items.length === 0 ? (
                <Text size="sm" c="dimmed">
                  No file named “{asked.name}” in the {r.searched ?? 0} snapshots searched (of {r.snapshots}).
                </Text>
              ) : (
                <List size="sm" spacing={2} aria-label="Search results" data-testid="search-results">
                  {r.items.map((m, i) => (
                    <List.Item key={`${m.snapshot ?? ''}${m.volume ?? ''}${m.path ?? ''}${i}`}>
                      {formatTime(m.time)}: <code>{m.volume}{m.path}</code> ({formatBytes(m.size)}){' '}
                      {m.repository !== undefined && m.snapshot !== undefined && (
                        <Anchor component="button" type="button" size="sm" underline="always" onClick={() => onOpen(m.repository as string, m.snapshot as string)}>
                          open this snapshot
                        </Anchor>
                      )}
                    </List.Item>
                  ))}
                </List>
              )}
              {r.truncated && <Text size="xs">Some volumes had more matches than shown, or the search ran out of time: narrow the name.</Text>}
              {r.next !== null && r.next !== undefined && (
                <Button size="xs" variant="default" onClick={() => setAsked({ name: asked.name, offset: r.next as number })}>
                  Search older snapshots
                </Button>
              )}
            </>
          )}
        </QueryView>
      )}
    </Stack>
  );
}
