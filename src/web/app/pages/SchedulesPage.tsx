/**
 * The calendar of all schedules together: the next two weeks, a day per box, every job's runs
 * on it (times in each job's time zone), from GET /scheduler/preview.
 */
import { Anchor, Card, List, SimpleGrid, Text } from '@mantine/core';
import { useQuery } from '@tanstack/react-query';
import { Link } from 'react-router';
import { call } from '../../api/client';
import { PageTitle } from '../components/PageTitle';
import { QueryView } from '../components/QueryView';
import { scheduleCalendar } from '../jobs/schedule-calendar';

const DAYS = 14;
const clockIn = (iso: string, timeZone: string) => new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', timeZone }).format(new Date(iso));

export function SchedulesPage() {
  const preview = useQuery({ queryKey: ['scheduler', 'preview', 'calendar'], queryFn: () => call('get', '/api/v1/scheduler/preview', { query: { count: 50 } }) });
  return (
    <>
      <PageTitle>Schedules</PageTitle>
      <QueryView query={preview} context="Reading the schedules">
        {(p) =>
          p.jobs.length === 0 ? (
            <Text c="dimmed">No job is configured.</Text>
          ) : (
            <SimpleGrid cols={{ base: 1, xs: 2, md: 4, lg: 7 }} spacing="xs" role="list" aria-label="The next two weeks">
              {scheduleCalendar(p.jobs, new Date(), DAYS).map((day) => (
                <Card key={day.key} withBorder padding="xs" role="listitem" aria-label={day.date.toLocaleDateString('en-GB', { weekday: 'long', day: 'numeric', month: 'long' })}>
                  <Text fw={600} size="sm">
                    {day.date.toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short' })}
                  </Text>
                  {day.runs.length === 0 ? (
                    <Text size="xs" c="dimmed">
                      no run
                    </Text>
                  ) : (
                    <List size="xs" spacing={2} listStyleType="none">
                      {day.runs.map((r) => (
                        <List.Item key={`${r.job}${r.at}`}>
                          {clockIn(r.at, r.timezone)}{' '}
                          <Anchor component={Link} to={`/jobs/${encodeURIComponent(r.job)}`} size="xs" underline="always">
                            {r.job}
                          </Anchor>
                          {r.timezone === 'UTC' ? '' : ` (${r.timezone})`}
                        </List.Item>
                      ))}
                    </List>
                  )}
                </Card>
              ))}
            </SimpleGrid>
          )
        }
      </QueryView>
    </>
  );
}
