/**
 * One file of a snapshot: its download, and a preview when the server's sniffed type allows
 * one. Text: the first 64 KiB (one `Range` request), shown as text, never rendered as HTML;
 * images (PNG, JPEG, GIF, WebP): an <img> of the inline content. Anything else: the download
 * only. The download link leaves the file's name to the server's Content-Disposition (the
 * path here is printable, `caf\xe9`; the server names such a file `caf%E9`, as its zip does).
 */
import { Button, Card, CloseButton, Code, Group, Image, ScrollArea, Text } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { ServerUnreachable } from '../../api/client';
import { problemOf } from '../../api/problem';
import { QueryView } from '../components/QueryView';
import { formatBytes } from '../format';
import { fileUrl, type SnapshotRef } from './FileBrowser';

const PREVIEW_BYTES = 64 * 1024;
const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

type Preview = { kind: 'text'; text: string; partial: boolean } | { kind: 'image' } | { kind: 'none'; type: string };

async function readPreview(url: string, size: number): Promise<Preview> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { range: `bytes=0-${PREVIEW_BYTES - 1}` }, credentials: 'same-origin', signal: AbortSignal.timeout(20_000) });
  } catch (error) {
    throw new ServerUnreachable(`GET ${url}`, error);
  }
  if (!response.ok && response.status !== 206) throw await problemOf(response);
  const type = (response.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
  if (type === 'text/plain') {
    const text = new TextDecoder('utf-8', { fatal: false }).decode(await response.arrayBuffer());
    return { kind: 'text', text, partial: size > PREVIEW_BYTES };
  }
  await response.body?.cancel();
  return IMAGE_TYPES.has(type) ? { kind: 'image' } : { kind: 'none', type };
}

export function FilePreview({ target, volume, path, size, onClose }: { target: SnapshotRef; volume: string; path: string; size: number; onClose: () => void }) {
  const url = fileUrl(target, volume, path, { inline: true });
  const preview = useQuery({ queryKey: ['preview', target.repo, target.snapshot, volume, path], queryFn: () => readPreview(url, size), staleTime: Infinity });
  const name = path.split('/').pop() ?? path;
  return (
    <Card withBorder component="section" aria-label={`Preview of ${name}`} data-testid="file-preview">
      <Group justify="space-between" mb="sm" wrap="nowrap">
        <Text fw={600} style={{ overflowWrap: 'anywhere' }}>
          {path} ({formatBytes(size)})
        </Text>
        <Group gap="xs" wrap="nowrap">
          <Button component="a" size="xs" href={fileUrl(target, volume, path)} download>
            Download {name}
          </Button>
          <CloseButton onClick={onClose} aria-label="Close the preview" />
        </Group>
      </Group>
      <QueryView query={preview} context="Reading the file">
        {(p) =>
          p.kind === 'text' ? (
            <ScrollArea.Autosize mah={360} type="auto">
              <Code block tabIndex={0} aria-label={`Text of ${name}`} data-testid="text-preview">
                {p.text}
              </Code>
              {p.partial && <Text size="xs" c="dimmed">The first {formatBytes(PREVIEW_BYTES)}; download it for the rest.</Text>}
            </ScrollArea.Autosize>
          ) : p.kind === 'image' ? (
            <Image src={url} alt={`Image ${name}`} mah={360} fit="contain" />
          ) : (
            <Text size="sm" c="dimmed">
              No preview for this kind of file ({p.type || 'unknown'}); download it instead.
            </Text>
          )
        }
      </QueryView>
    </Card>
  );
}
