/**
 * A snapshot's files: its volumes (partitions, LVM volumes, the filesystem on each; a file
 * snapshot's one volume, `files`, opened at once as any lone volume is), then a volume's
 * directories one page at a time (with the owners' names where the snapshot recorded them), with a path bar to go back up. A file opens a
 * preview (text and images, from `…/files/content`) with its download; a folder downloads as
 * tar or zip (`…/files/archive`). Downloads are plain links: the browser streams them to disk
 * and shows their progress (a file's size is known from Content-Length; an archive's is not,
 * so the browser counts the bytes received).
 *
 * Names are the API's printable form (docs/api.md): a byte that is not UTF-8 (a Latin-1
 * guest's `caf\xe9`) or a control character is `\xNN`, a backslash `\\`; plain text, shown as
 * it is and joined with `/` into the `path` the API takes back (no name holds a `/`), so such a
 * folder opens and such a file previews and downloads like any other.
 */
import { Anchor, Breadcrumbs, Button, Group, Pagination, Stack, Table, Text, UnstyledButton } from '@mantine/core';
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { buildUrl, call } from '../../api/client';
import { HorizontalScroll } from '../components/HorizontalScroll';
import { QueryView } from '../components/QueryView';
import { formatBytes } from '../format';
import { FilePreview } from './FilePreview';

const PAGE = 100;

export interface SnapshotRef {
  repo: string;
  snapshot: string;
}

/** The address of a file's bytes or a folder's archive (same origin: the session cookie goes along). */
export function fileUrl(ref: SnapshotRef, volume: string, path: string, how: { inline?: boolean; archive?: 'tar' | 'zip' } = {}): string {
  const params = { repo: ref.repo, snapshot: ref.snapshot };
  if (how.archive !== undefined) return buildUrl('/api/v1/repositories/{repo}/snapshots/{snapshot}/files/archive', params, { volume, path, format: how.archive });
  return buildUrl('/api/v1/repositories/{repo}/snapshots/{snapshot}/files/content', params, { volume, path, ...(how.inline === true ? { inline: 'true' } : {}) });
}

/** A folder's path and one of its printable names: the entry's path as the API takes it. */
const joinPath = (dir: string, name: string) => (dir === '/' ? `/${name}` : `${dir}/${name}`);

/** The hover text of a name shown with escapes (the API gives its bytes as `nameBytes` then). */
const ESCAPED_NAME_TITLE = 'Bytes that are not UTF-8, and control characters, are shown as \\xNN; a backslash as \\\\';
const nameTitle = (e: { nameBytes?: string }) => (e.nameBytes === undefined ? undefined : `${ESCAPED_NAME_TITLE} (bytes: ${e.nameBytes})`);

export function FileBrowser({ target }: { target: SnapshotRef }) {
  const volumes = useQuery({ queryKey: ['volumes', target.repo, target.snapshot], queryFn: () => call('get', '/api/v1/repositories/{repo}/snapshots/{snapshot}/volumes', { params: target }) });
  const [volume, setVolume] = useState<string | undefined>(undefined);
  return (
    <QueryView query={volumes} context="Reading the snapshot's volumes">
      {(v) => {
        const browsable = v.items.filter((i) => i.filesystem !== null);
        if (browsable.length === 0) return <Text c="dimmed">No volume of this snapshot holds a filesystem Coffer can read (ext2/3/4, FAT, NTFS, XFS).</Text>;
        // One volume (a file snapshot's files, a disk with one filesystem) opens at once.
        const shown = volume ?? (browsable.length === 1 ? browsable[0]?.id : undefined);
        return (
          <Stack gap="sm">
            <Group gap="xs" role="group" aria-label="Volumes">
              {browsable.map((i) => (
                <Button key={i.id} size="xs" variant={shown === i.id ? 'filled' : 'default'} onClick={() => setVolume(i.id)} aria-pressed={shown === i.id} title={i.notes?.join('; ') || undefined}>
                  {`${i.id} · ${i.filesystem ?? ''}${i.label === undefined || i.label === '' ? '' : ` “${i.label}”`} · ${formatBytes(i.size)}`}
                </Button>
              ))}
            </Group>
            {shown === undefined ? <Text size="sm">Choose a volume to open.</Text> : <Directory key={shown} target={target} volume={shown} />}
          </Stack>
        );
      }}
    </QueryView>
  );
}

function Directory({ target, volume }: { target: SnapshotRef; volume: string }) {
  const [path, setPath] = useState('/');
  const [page, setPage] = useState(1);
  const [file, setFile] = useState<{ path: string; size: number } | undefined>(undefined);
  const listing = useQuery({
    queryKey: ['files', target.repo, target.snapshot, volume, path, page],
    queryFn: () => call('get', '/api/v1/repositories/{repo}/snapshots/{snapshot}/files', { params: target, query: { volume, path, limit: PAGE, offset: (page - 1) * PAGE } }),
    placeholderData: keepPreviousData,
  });
  const open = (next: string) => {
    setPath(next);
    setPage(1);
    setFile(undefined);
  };
  const parts = path.split('/').filter((p) => p !== '');
  return (
    <Stack gap="sm">
      <Group justify="space-between" wrap="wrap">
        <Breadcrumbs aria-label="Folder path">
          <Anchor component="button" type="button" onClick={() => open('/')}>
            {volume}
          </Anchor>
          {parts.map((p, i) => (
            <Anchor key={i} component="button" type="button" onClick={() => open(`/${parts.slice(0, i + 1).join('/')}`)}>
              {p}
            </Anchor>
          ))}
        </Breadcrumbs>
        <Group gap="xs">
          <Button component="a" size="xs" variant="default" href={fileUrl(target, volume, path, { archive: 'tar' })} download>
            Download this folder as tar
          </Button>
          <Button component="a" size="xs" variant="default" href={fileUrl(target, volume, path, { archive: 'zip' })} download>
            Download this folder as zip
          </Button>
        </Group>
      </Group>
      <QueryView query={listing} context="Reading the folder">
        {(l) => {
          // Owners by name where the filesystem records names (a file snapshot's); a guest's ids mean nothing here.
          const owners = l.items.some((e) => e.user !== undefined || e.group !== undefined);
          return (
            <>
              {l.total === 0 ? (
                <Text c="dimmed">This folder is empty.</Text>
              ) : (
                <HorizontalScroll label="Folder contents (scrolls sideways)">
                  <Table aria-label={`Files in ${path}`} verticalSpacing={2} highlightOnHover>
                    <Table.Thead>
                      <Table.Tr>
                        <Table.Th scope="col">Name</Table.Th>
                        {owners && <Table.Th scope="col">Owner</Table.Th>}
                        <Table.Th scope="col">Size</Table.Th>
                        <Table.Th scope="col">Modified</Table.Th>
                      </Table.Tr>
                    </Table.Thead>
                    <Table.Tbody>
                      {l.items.map((e) => (
                        <Table.Tr key={e.name}>
                          <Table.Td>
                            {e.type === 'directory' ? (
                              <UnstyledButton onClick={() => open(joinPath(path, e.name))} aria-label={`Open ${e.name}/`} title={nameTitle(e)} fw={600} c="blue.8" td="underline">
                                {e.name}/
                              </UnstyledButton>
                            ) : e.type === 'file' ? (
                              <Anchor component="button" type="button" onClick={() => setFile({ path: joinPath(path, e.name), size: e.size })} title={nameTitle(e)}>
                                {e.name}
                              </Anchor>
                            ) : (
                              <Text size="sm" title={nameTitle(e)}>
                                {e.name}
                                {e.target === undefined ? ` (${e.type})` : ` → ${e.target}`}
                              </Text>
                            )}
                            {e.error !== undefined && (
                              <Text size="xs" c="red">
                                damaged: {e.error}
                              </Text>
                            )}
                          </Table.Td>
                          {owners && <Table.Td>{`${e.user ?? e.uid ?? ''}:${e.group ?? e.gid ?? ''}`}</Table.Td>}
                          <Table.Td>{e.type === 'directory' ? '' : formatBytes(e.size)}</Table.Td>
                          <Table.Td>{e.mtime === null || e.mtime === undefined ? '' : new Date(e.mtime).toLocaleString('en-GB')}</Table.Td>
                        </Table.Tr>
                      ))}
                    </Table.Tbody>
                  </Table>
                </HorizontalScroll>
              )}
              {l.total > PAGE && (
                <Pagination total={Math.ceil(l.total / PAGE)} value={page} onChange={setPage} size="sm" aria-label="Folder pages" getItemProps={(p) => ({ 'aria-label': `page ${p}` })} />
              )}
              <Text size="xs" c="dimmed">
                {l.total} entries
              </Text>
            </>
          );
        }}
      </QueryView>
      {file !== undefined && <FilePreview target={target} volume={volume} path={file.path} size={file.size} onClose={() => setFile(undefined)} />}
    </Stack>
  );
}
