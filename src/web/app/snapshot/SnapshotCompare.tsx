/**
 * "Compare with…" on a snapshot's page: what changed since another snapshot of the same VM
 * (its parent, or the one before it, proposed first: compare-choices.ts), for who may browse
 * files. VM snapshots compare their disks (index pages only: fast), and with "files" ticked
 * the files of each volume (the server walks the filesystems where bytes changed); file
 * snapshots compare their paths. One page of changed paths at a time (SnapshotDiff.tsx).
 */
import { Button, Card, Checkbox, Group, NativeSelect, Stack, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { call } from '../../api/client';
import { useSession } from '../auth/session';
import { QueryView } from '../components/QueryView';
import { formatTime } from '../format';
import { compareChoices } from './compare-choices';
import { SnapshotDiff } from './SnapshotDiff';

/** Changed paths per page. */
const PAGE = 100;
/** Snapshots offered: the newest this many of the VM taken up to this one. */
const CHOICES = 100;

export interface SnapshotCompareProps {
  repo: string;
  snapshot: { id: string; vm: string; time: string; parent?: string | null; disks: unknown[] };
}

export function SnapshotCompare({ repo, snapshot }: SnapshotCompareProps) {
  const session = useSession();
  if (!session.can('files.browse')) return null;
  return <CompareCard repo={repo} snapshot={snapshot} />;
}

function CompareCard({ repo, snapshot }: SnapshotCompareProps) {
  const kind = snapshot.disks.length === 0 ? 'files' : 'disk';
  const list = useQuery({
    queryKey: ['snapshots', repo, 'compare', snapshot.vm, snapshot.time],
    queryFn: () => call('get', '/api/v1/repositories/{repo}/snapshots', { params: { repo }, query: { vm: snapshot.vm, until: snapshot.time, limit: CHOICES } }),
  });
  const [picked, setPicked] = useState<string>();
  const [files, setFiles] = useState(false);
  const [asked, setAsked] = useState<{ against: string; files: boolean; offset: number }>();
  const diff = useQuery({
    queryKey: ['snapshot-diff', repo, snapshot.id, asked],
    queryFn: () => call('get', '/api/v1/repositories/{repo}/snapshots/{snapshot}/diff', { params: { repo, snapshot: snapshot.id }, query: { against: asked?.against ?? '', files: asked?.files ?? false, offset: asked?.offset ?? 0, limit: PAGE } }),
    enabled: asked !== undefined,
    staleTime: 5 * 60_000,
  });
  return (
    <Card withBorder component="section" aria-label="Compare with another snapshot" data-testid="snapshot-compare">
      <Title order={2} size="h4" mb="sm">
        Compare with…
      </Title>
      <QueryView query={list} context="Listing the VM's snapshots">
        {(page) => {
          const { choices, preferred } = compareChoices({ id: snapshot.id, time: snapshot.time, kind, parent: snapshot.parent ?? null }, page.items);
          if (choices.length === 0) {
            return (
              <Text size="sm" c="dimmed">
                No earlier snapshot of {snapshot.vm} to compare with.
              </Text>
            );
          }
          const against = picked ?? preferred ?? (choices[0]?.id as string);
          const submit = (e: FormEvent) => {
            e.preventDefault();
            setAsked({ against, files: kind === 'disk' && files, offset: 0 });
          };
          return (
            <Stack gap="sm">
              <form onSubmit={submit} aria-label="Compare with another snapshot">
                <Group align="end" gap="sm">
                  <NativeSelect
                    label="What changed since"
                    value={against}
                    onChange={(e) => setPicked(e.currentTarget.value)}
                    data={choices.map((c) => ({ value: c.id, label: `${formatTime(c.time)} · ${c.id.slice(0, 8)}${c.mark === 'parent' ? ' (its parent)' : c.mark === 'previous' ? ' (the one before)' : ''}` }))}
                  />
                  {kind === 'disk' && <Checkbox label="and the files of each volume" checked={files} onChange={(e) => setFiles(e.currentTarget.checked)} mb={8} />}
                  <Button type="submit" variant="default">
                    Compare
                  </Button>
                </Group>
              </form>
              {asked !== undefined && (
                <QueryView query={diff} context={asked.files ? 'Comparing the disks and their files' : 'Comparing the snapshots'}>
                  {(answer) => <SnapshotDiff answer={answer} onPage={(offset) => setAsked({ ...asked, offset })} />}
                </QueryView>
              )}
            </Stack>
          );
        }}
      </QueryView>
    </Card>
  );
}
