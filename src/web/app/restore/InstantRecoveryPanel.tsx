/**
 * Instant recovery of a snapshot: start it (POST …/instant-recovery, a task that serves the
 * disks over NBD until stopped), then, from the task's report (kept current by the events
 * stream), each disk's `nbd://` URI and a ready QEMU command line with copy buttons, and how
 * long it has served; stop it (DELETE /repositories/R/instant-recovery/TASK).
 */
import { Alert, Button, Code, CopyButton, Group, Stack, Switch, Table, Text } from '@mantine/core';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { Link } from 'react-router';
import { call } from '../../api/client';
import { ProblemAlert } from '../components/ProblemAlert';
import { StatusBadge } from '../components/StatusBadge';
import { formatAge, formatBytes } from '../format';
import { useEvents } from '../live/events';
import type { SnapshotRef } from './FileBrowser';

interface ServingDetail {
  exports?: { disk: string; size: number; uri: string }[];
  qemuCommand?: string;
  startedAt?: string;
}

function useNow(everyMs: number): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

export function InstantRecoveryPanel({ target }: { target: SnapshotRef }) {
  const client = useQueryClient();
  const [writable, setWritable] = useState(false);
  const [taskId, setTaskId] = useState<string | undefined>(undefined);
  const start = useMutation({
    mutationFn: () => call('post', '/api/v1/repositories/{repo}/snapshots/{snapshot}/instant-recovery', { params: target, body: { writable } }),
    onSuccess: (answer) => {
      if ('id' in answer && typeof answer.id === 'string') setTaskId(answer.id);
    },
  });
  const [stopping, setStopping] = useState(false);
  const task = useQuery({
    queryKey: ['task', taskId],
    queryFn: () => call('get', '/api/v1/tasks/{id}', { params: { id: taskId as string } }),
    enabled: taskId !== undefined,
    // Once stop was asked, poll until the task has ended: the events stream usually says so
    // first, but a stop must show as stopped even when that event is missed (a reconnect).
    refetchInterval: (query) => (stopping && ['running', 'queued'].includes(String((query.state.data as { status?: string } | undefined)?.status)) ? 1000 : false),
  });
  useEvents({ types: 'task', ...(taskId === undefined ? {} : { task: taskId }) }, { task: (t) => t.id === taskId && client.setQueryData(['task', t.id], t) });
  const stop = useMutation({
    mutationFn: () => call('delete', '/api/v1/repositories/{repo}/instant-recovery/{id}', { params: { repo: target.repo, id: taskId as string } }),
    onSuccess: () => {
      setStopping(true);
      void task.refetch();
    },
  });
  const now = useNow(1000);

  if (taskId === undefined)
    return (
      <Stack gap="sm" align="start">
        <Text size="sm">The snapshot's disks are served over NBD by the server until you stop them. Nothing is copied first: a VM can start from them at once.</Text>
        <Switch label="Writable (writes go to an overlay on the server; the snapshot never changes)" checked={writable} onChange={(e) => setWritable(e.currentTarget.checked)} />
        <Button onClick={() => start.mutate()} loading={start.isPending}>
          Start instant recovery
        </Button>
        {start.isError && <ProblemAlert error={start.error} context="Starting instant recovery" />}
        {start.data !== undefined && !('id' in start.data) && <Alert title="Waiting for approval">A second administrator must approve this first (Approvals).</Alert>}
      </Stack>
    );
  const t = task.data;
  const detail = ((t?.report as { detail?: ServingDetail } | null | undefined)?.detail ?? {}) as ServingDetail;
  const serving = t?.status === 'running' && detail.exports !== undefined;
  return (
    <Stack gap="sm" data-testid="instant-recovery">
      <Group gap="xs">
        {t !== undefined && <StatusBadge status={t.status} />}
        <Text size="sm">
          {serving ? `Serving for ${formatAge(now - Date.parse(detail.startedAt ?? t.started ?? new Date(now).toISOString()))}` : t?.status === 'running' || t?.status === 'queued' ? 'Starting…' : 'Stopped.'}
        </Text>
        <Link to={`/tasks/${taskId}`}>task and log</Link>
      </Group>
      {t?.error !== null && t?.error !== undefined && t.error.code !== 'E_CANCELLED' && <Alert color="red" title={t.error.code}>{t.error.message}</Alert>}
      {serving && (
        <>
          <Table aria-label="NBD exports" verticalSpacing={4}>
            <Table.Thead>
              <Table.Tr>
                <Table.Th scope="col">Disk</Table.Th>
                <Table.Th scope="col">Size</Table.Th>
                <Table.Th scope="col">NBD URI</Table.Th>
              </Table.Tr>
            </Table.Thead>
            <Table.Tbody>
              {detail.exports?.map((e) => (
                <Table.Tr key={e.disk}>
                  <Table.Td>{e.disk}</Table.Td>
                  <Table.Td>{formatBytes(e.size)}</Table.Td>
                  <Table.Td>
                    <Group gap="xs" wrap="nowrap">
                      <Code data-testid="nbd-uri">{e.uri}</Code>
                      <Copy value={e.uri} what="the URI" />
                    </Group>
                  </Table.Td>
                </Table.Tr>
              ))}
            </Table.Tbody>
          </Table>
          {detail.qemuCommand !== undefined && (
            <div>
              <Group justify="space-between">
                <Text size="sm" fw={600}>
                  Start a VM from it
                </Text>
                <Copy value={detail.qemuCommand} what="the QEMU command" />
              </Group>
              <Code block data-testid="qemu-command" style={{ whiteSpace: 'pre-wrap', wordBreak: 'break-all' }}>
                {detail.qemuCommand}
              </Code>
            </div>
          )}
        </>
      )}
      {(t?.status === 'running' || t?.status === 'queued') && (
        <Button color="red" variant="light" onClick={() => stop.mutate()} loading={stop.isPending} w="fit-content">
          Stop instant recovery
        </Button>
      )}
      {stop.isError && <ProblemAlert error={stop.error} context="Stopping instant recovery" />}
    </Stack>
  );
}

function Copy({ value, what }: { value: string; what: string }) {
  return (
    <CopyButton value={value}>
      {({ copied, copy }) => (
        <Button size="compact-xs" variant="default" onClick={copy} aria-label={`Copy ${what}`}>
          {copied ? 'Copied' : 'Copy'}
        </Button>
      )}
    </CopyButton>
  );
}
