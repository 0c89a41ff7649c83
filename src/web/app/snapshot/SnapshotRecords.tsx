/**
 * What happened to a snapshot after it was taken (GET …/snapshots/{id}/records): its newest
 * verification (how much of it was read back intact, and when all of it was), its newest test
 * restore (passed, or the failures; whether the VM booted from it), and the tapes holding it.
 */
import { Alert, Card, Grid, List, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { call } from '../../api/client';
import { QueryView } from '../components/QueryView';
import { StatusBadge } from '../components/StatusBadge';
import { formatTime } from '../format';
import { BootCheck } from './BootCheck';

export function SnapshotRecords({ repo, snapshot }: { repo: string; snapshot: string }) {
  const records = useQuery({ queryKey: ['snapshot-records', repo, snapshot], queryFn: () => call('get', '/api/v1/repositories/{repo}/snapshots/{snapshot}/records', { params: { repo, snapshot } }) });
  return (
    <QueryView query={records} context="Reading the verification and test-restore results">
      {(r) => (
        <Grid>
          {r.damagedNotes > 0 && (
            <Grid.Col span={12}>
              <Alert color="red" title="Unreadable records">
                {r.damagedNotes} of this snapshot's records could not be read: verify the repository.
              </Alert>
            </Grid.Col>
          )}
          <Grid.Col span={{ base: 12, md: 4 }}>
            <Card withBorder component="section" aria-label="Verification" h="100%" data-testid="snapshot-verification">
              <Title order={2} size="h4" mb="sm">
                Verification
              </Title>
              {r.verification === null ? (
                <Text size="sm" c="dimmed">
                  Never verified by reading its data back.
                </Text>
              ) : r.verification.fullyVerifiedAt !== null ? (
                <Text size="sm">
                  Every chunk ({r.verification.chunks}) read back intact; all of it by {formatTime(r.verification.fullyVerifiedAt)} (last run {formatTime(r.verification.time)}).
                </Text>
              ) : (
                <Text size="sm">
                  {r.verification.verifiedChunks} of {r.verification.chunks} chunks read back intact so far (last run {formatTime(r.verification.time)}).
                </Text>
              )}
            </Card>
          </Grid.Col>
          <Grid.Col span={{ base: 12, md: 4 }}>
            <Card withBorder component="section" aria-label="Test restore" h="100%" data-testid="snapshot-test-restore">
              <Title order={2} size="h4" mb="sm">
                Test restore
              </Title>
              {r.testRestore === null ? (
                <Text size="sm" c="dimmed">
                  Never test-restored.
                </Text>
              ) : (
                <>
                  <StatusBadge status={r.testRestore.passed ? 'succeeded' : 'failed'} />
                  <Text size="sm" mt={4}>
                    {r.testRestore.passed ? 'Passed' : 'Failed'} on {formatTime(r.testRestore.time)} in {(r.testRestore.durationMs / 1000).toFixed(1)} s.
                  </Text>
                  {r.testRestore.failures.length > 0 && (
                    <List size="sm">
                      {r.testRestore.failures.map((f) => (
                        <List.Item key={f}>{f}</List.Item>
                      ))}
                    </List>
                  )}
                  {r.testRestore.warnings.length > 0 && <Text size="sm">Warnings: {r.testRestore.warnings.join('; ')}</Text>}
                  {r.testRestore.boot !== null && <BootCheck boot={r.testRestore.boot} />}
                </>
              )}
            </Card>
          </Grid.Col>
          <Grid.Col span={{ base: 12, md: 4 }}>
            <Card withBorder component="section" aria-label="On tape" h="100%" data-testid="snapshot-tapes">
              <Title order={2} size="h4" mb="sm">
                On tape
              </Title>
              {r.tapes.length === 0 ? (
                <Text size="sm" c="dimmed">
                  Not written to tape.
                </Text>
              ) : (
                <List size="sm">
                  {r.tapes.map((t) => (
                    <List.Item key={`${t.tapeSet ?? ''}-${t.written}`}>
                      Tape set <code>{t.tapeSet?.slice(0, 8) ?? '?'}</code>, {t.imported ? 'imported from it' : 'written'} {formatTime(t.written)}: {t.volumes.map((v) => (v.name === '' ? `#${v.sequence}` : `#${v.sequence} ${v.name}`)).join(', ')}
                    </List.Item>
                  ))}
                </List>
              )}
            </Card>
          </Grid.Col>
        </Grid>
      )}
    </QueryView>
  );
}
