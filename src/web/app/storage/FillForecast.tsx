/**
 * "When it fills": the days left at the current growth. The free space comes from the server
 * (GET /repositories/{repo}/space: the filesystem of a repository on a local path); where the
 * server cannot know it (S3, a repository server: `freeBytes` null, with the reason), the user
 * types the storage's size and the forecast counts from what is stored.
 */
import { Card, NumberInput, Text, Title } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { call } from '../../api/client';
import { QueryView } from '../components/QueryView';
import { formatBytes } from '../format';
import { daysUntilFull } from './storage-series';

const GiB = 1024 ** 3;

export function FillForecast({ repo, stored, growthPerDay }: { repo: string; stored: number | undefined; growthPerDay: number | undefined }) {
  const space = useQuery({ queryKey: ['repositories', repo, 'space'], queryFn: () => call('get', '/api/v1/repositories/{repo}/space', { params: { repo } }) });
  return (
    <Card withBorder component="section" aria-label="When it fills" style={{ minWidth: 0 }} data-testid="when-it-fills">
      <Title order={2} size="h4" mb="xs">
        When it fills
      </Title>
      <QueryView query={space} context="Reading the free space">
        {(answer) => <FillForecastBody space={answer} stored={stored} growthPerDay={growthPerDay} />}
      </QueryView>
    </Card>
  );
}

/** What the server says of the storage's space (GET …/space). */
export interface SpaceAnswer {
  freeBytes: number | null;
  totalBytes: number | null;
  explanation: string;
}

/** The card's content once the space is known or known to be unknown. */
export function FillForecastBody({ space: s, stored, growthPerDay }: { space: SpaceAnswer; stored: number | undefined; growthPerDay: number | undefined }) {
  const [capacityGiB, setCapacityGiB] = useState<number | string>('');
  if (s.freeBytes !== null) {
    return (
      <>
        <Text size="sm" data-testid="free-space">
          Free: {formatBytes(s.freeBytes)}
          {s.totalBytes !== null && ` of ${formatBytes(s.totalBytes)}`} ({s.explanation}).
        </Text>
        <Forecast free={s.freeBytes} growthPerDay={growthPerDay} />
      </>
    );
  }
  const capacity = typeof capacityGiB === 'number' ? capacityGiB * GiB : undefined;
  return (
    <>
      <NumberInput label="Space of the repository's storage (GiB)" description={`The server cannot tell: ${s.explanation}.`} min={1} value={capacityGiB} onChange={setCapacityGiB} />
      {capacity !== undefined && stored !== undefined && (capacity <= stored ? <Text size="sm" mt="xs" data-testid="fill-forecast">Already full or beyond.</Text> : <Forecast free={capacity - stored} growthPerDay={growthPerDay} />)}
    </>
  );
}

/** Days until full, as a person says it: a small repository growing by bytes read "Full in about 188611349 days". */
function inWords(days: number): string {
  if (days <= 2 * 365) return `Full in about ${days} days`;
  const years = Math.round(days / 365);
  return years > 100 ? 'Not full within a hundred years' : `Full in about ${years} years`;
}

function Forecast({ free, growthPerDay }: { free: number; growthPerDay: number | undefined }) {
  if (growthPerDay === undefined) return null;
  const days = daysUntilFull(free, growthPerDay);
  return (
    <Text size="sm" mt="xs" data-testid="fill-forecast">
      {days === undefined ? 'It does not grow at the moment.' : `${inWords(days)} at the current growth.`}
    </Text>
  );
}
