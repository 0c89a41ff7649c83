/**
 * What changed between two snapshots, as GET …/snapshots/{id}/diff answers it (docs/diff.md):
 * for VM snapshots each disk's changed bytes and where (the first ranges, the rest counted),
 * and with files each volume's changed paths; for file snapshots the changed paths. Paths carry
 * restic's letters (+ added, - removed, M content, T type, U metadata only), are shown as the
 * API gives them (a byte that is not UTF-8 as `\xNN`, its bytes in the hover text), one page at
 * a time. A comparison the server stopped at its time limit says so.
 */
import { Alert, Badge, Button, Group, List, Stack, Table, Text, Title } from '@mantine/core';
import type { Answer } from '../../api/client';
import { formatBytes, formatTime } from '../format';

export type DiffAnswer = Answer<'/api/v1/repositories/{repo}/snapshots/{snapshot}/diff', 'get'>;
type Change = NonNullable<DiffAnswer['changes']>[number];
type Counts = NonNullable<DiffAnswer['counts']>;
type Disk = NonNullable<DiffAnswer['disks']>[number];
type Volume = NonNullable<DiffAnswer['volumes']>[number];
type Problem = NonNullable<DiffAnswer['problems']>[number];

/** Ranges listed per disk; the rest are counted. */
const RANGES_SHOWN = 5;

const LETTERS: Record<Change['change'], { meaning: string; color: string }> = {
  '+': { meaning: 'added', color: 'green' },
  '-': { meaning: 'removed', color: 'red' },
  M: { meaning: 'content modified', color: 'orange' },
  T: { meaning: 'type changed', color: 'grape' },
  U: { meaning: 'metadata only (mode, owner, times, attributes)', color: 'gray' },
};

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

export function SnapshotDiff({ answer, onPage }: { answer: DiffAnswer; onPage: (offset: number) => void }) {
  return (
    <Stack gap="sm" data-testid="snapshot-diff">
      <Text size="sm">
        What changed from {formatTime(answer.a.time)} ({answer.a.shortId}) to {formatTime(answer.b.time)} ({answer.b.shortId})
      </Text>
      {answer.disks !== undefined && <DiskTable disks={answer.disks} />}
      {answer.totals !== undefined && (
        <Text size="sm" data-testid="diff-totals">
          {totalsLine(answer.totals)}
        </Text>
      )}
      {answer.volumes?.map((v) => <VolumeSection key={`${v.disk}:${v.volume}`} volume={v} />)}
      {answer.kind === 'files' && (
        <>
          {answer.counts !== undefined && <CountsLines counts={answer.counts} />}
          {answer.bytesAdded !== undefined && (
            <Text size="sm">
              {formatBytes(answer.bytesAdded)} added, {formatBytes(answer.bytesRemoved)} removed
            </Text>
          )}
          <ChangeTable changes={answer.changes ?? []} label="Changed paths" />
          <Problems problems={answer.problems ?? []} count={answer.problemCount ?? 0} />
        </>
      )}
      <Pager answer={answer} onPage={onPage} />
      {answer.timedOut && (
        <Alert color="yellow" title="Stopped at the time limit" data-testid="diff-timed-out">
          Comparing the files took longer than the server allows one request: the counts and changes cover what it reached. <code>coffer diff</code> on the repository's host lists them all.
        </Alert>
      )}
    </Stack>
  );
}

function DiskTable({ disks }: { disks: Disk[] }) {
  return (
    <Table aria-label="Changed disks" data-testid="diff-disks">
      <Table.Thead>
        <Table.Tr>
          <Table.Th scope="col">Disk</Table.Th>
          <Table.Th scope="col">Change</Table.Th>
          <Table.Th scope="col">Size</Table.Th>
          <Table.Th scope="col">Changed</Table.Th>
          <Table.Th scope="col">Where</Table.Th>
        </Table.Tr>
      </Table.Thead>
      <Table.Tbody>
        {disks.map((d) => (
          <Table.Tr key={d.name}>
            <Table.Td>{d.name}</Table.Td>
            <Table.Td>{d.change}</Table.Td>
            <Table.Td>{d.sizeA !== undefined && d.sizeB !== undefined && d.sizeA !== d.sizeB ? `${formatBytes(d.sizeA)} → ${formatBytes(d.sizeB)}` : formatBytes(d.sizeB ?? d.sizeA)}</Table.Td>
            <Table.Td>{changedText(d)}</Table.Td>
            <Table.Td>{rangesText(d)}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

/** `1.0 MiB in 4 blocks of 256 KiB (1 now zeros)`. */
function changedText(d: Disk): string {
  if (d.changedBlocks === undefined) return '–';
  if (d.changedBlocks === 0) return 'no block';
  const zeroed = (d.zeroedBlocks ?? 0) > 0 ? ` (${d.zeroedBlocks} now zeros)` : '';
  return `${formatBytes(d.changedBytes)} in ${plural(d.changedBlocks, 'block')} of ${formatBytes(d.blockSize)}${zeroed}`;
}

/** `at 256 KiB (256 KiB), at 1.0 MiB (512 KiB) and 12 more ranges`. */
function rangesText(d: Disk): string {
  const ranges = d.ranges ?? [];
  if (ranges.length === 0) return '';
  const shown = ranges.slice(0, RANGES_SHOWN).map((r) => `at ${formatBytes(r.offset)} (${formatBytes(r.length)})`);
  const more = (d.rangeCount ?? ranges.length) - shown.length;
  return `${shown.join(', ')}${more > 0 ? ` and ${plural(more, 'more range')}` : ''}`;
}

function totalsLine(t: NonNullable<DiffAnswer['totals']>): string {
  const others = [t.disksAdded > 0 ? `${plural(t.disksAdded, 'disk')} added` : '', t.disksRemoved > 0 ? `${plural(t.disksRemoved, 'disk')} removed` : '', t.disksResized > 0 ? `${plural(t.disksResized, 'disk')} resized` : ''].filter((s) => s !== '');
  return `In all: ${formatBytes(t.changedBytes)} changed in ${plural(t.changedBlocks, 'block')} on ${plural(t.disksChanged, 'disk')}${others.length > 0 ? `; ${others.join(', ')}` : ''} (from the disk indexes: no data read).`;
}

function VolumeSection({ volume: v }: { volume: Volume }) {
  const name = `Volume ${v.volume} on ${v.disk}${v.filesystem !== undefined ? ` (${v.filesystem})` : ''}`;
  const state =
    v.change === 'compared' ? `${formatBytes(v.changedBytes)} changed${v.complete ? '' : ' (stopped at the time limit: what was walked)'}` : v.change === 'unchanged' ? 'no byte changed (not read)' : v.change === 'not compared' ? `files not compared: ${v.problem ?? ''}` : v.change;
  return (
    <Stack gap={4} component="section" aria-label={name} data-testid="diff-volume">
      <Title order={3} size="h5">
        {name}: {state}
      </Title>
      {v.counts !== undefined && <CountsLines counts={v.counts} />}
      {v.change === 'compared' && <ChangeTable changes={v.changes} label={`Changed paths of ${name}`} />}
      <Problems problems={v.problems ?? []} count={v.problemCount ?? 0} />
    </Stack>
  );
}

/** `Files: 2 added, 1 removed, 1 modified, 0 type changed, 1 metadata only`, and the same for folders (and others when there are). */
function CountsLines({ counts }: { counts: Counts }) {
  const rows: Array<[string, Counts['files']]> = [['Files', counts.files], ['Folders', counts.directories]];
  if (Object.values(counts.others).some((n) => n > 0)) rows.push(['Others', counts.others]);
  return (
    <Stack gap={0} data-testid="diff-counts">
      {rows.map(([label, r]) => (
        <Text size="sm" key={label}>
          {label}: {r['+']} added, {r['-']} removed, {r.M} modified, {r.T} type changed, {r.U} metadata only
        </Text>
      ))}
    </Stack>
  );
}

function ChangeTable({ changes, label }: { changes: Change[]; label: string }) {
  if (changes.length === 0) return null;
  return (
    <Table aria-label={label} data-testid="diff-changes" verticalSpacing={2}>
      <Table.Tbody>
        {changes.map((c, i) => (
          <Table.Tr key={`${i}:${c.path}`} data-testid="diff-change">
            <Table.Td w={40}>
              <Badge variant="light" color={LETTERS[c.change].color} title={LETTERS[c.change].meaning} aria-label={LETTERS[c.change].meaning}>
                {c.change}
              </Badge>
            </Table.Td>
            <Table.Td style={{ wordBreak: 'break-all' }}>
              <code title={c.pathBytes === undefined ? undefined : `bytes: ${c.pathBytes}`}>
                {c.path}
                {c.type === 'directory' ? '/' : ''}
              </code>
              {c.change === 'T' && c.was !== undefined && <Text span size="xs" c="dimmed">{` (was a ${c.was === 'directory' ? 'folder' : c.was})`}</Text>}
            </Table.Td>
            <Table.Td w={100}>{c.size === undefined || c.type === 'directory' ? '' : formatBytes(c.size)}</Table.Td>
          </Table.Tr>
        ))}
      </Table.Tbody>
    </Table>
  );
}

function Problems({ problems, count }: { problems: Problem[]; count: number }) {
  if (problems.length === 0) return null;
  return (
    <Alert color="red" title={`${plural(count, 'place')} could not be compared`}>
      <List size="sm">
        {problems.map((p, i) => (
          <List.Item key={`${i}:${p.path}`}>{p.message}</List.Item>
        ))}
      </List>
      {count > problems.length && <Text size="xs">and {count - problems.length} more</Text>}
    </Alert>
  );
}

/** `Changed paths 101–200 of 250`, with the previous and next pages. */
function Pager({ answer, onPage }: { answer: DiffAnswer; onPage: (offset: number) => void }) {
  const shown = (answer.changes?.length ?? 0) + (answer.volumes ?? []).reduce((sum, v) => sum + v.changes.length, 0);
  if (answer.total === 0) return answer.kind === 'files' || answer.volumes !== undefined ? <Text size="sm">No path changed.</Text> : null;
  const from = shown === 0 ? answer.offset : answer.offset + 1;
  return (
    <Group gap="xs" data-testid="diff-pager">
      <Text size="sm">
        Changed paths {from}–{answer.offset + shown} of {answer.total}
        {answer.timedOut ? ' found so far' : ''}
      </Text>
      {answer.offset > 0 && (
        <Button size="xs" variant="default" onClick={() => onPage(Math.max(0, answer.offset - answer.limit))}>
          Previous
        </Button>
      )}
      {answer.next !== null && (
        <Button size="xs" variant="default" onClick={() => onPage(answer.next as number)}>
          Next
        </Button>
      )}
    </Group>
  );
}
