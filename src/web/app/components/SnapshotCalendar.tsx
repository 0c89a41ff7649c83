/**
 * A VM's restore points on a month calendar: each day with snapshots is a button showing how
 * many; choosing it lists that day's snapshots (times in the browser's time zone). Months
 * step back and forth; it opens on the month of the newest snapshot.
 */
import { ActionIcon, Badge, Group, SimpleGrid, Text, UnstyledButton, VisuallyHidden } from '@mantine/core';
import { useMemo, useState } from 'react';
import { dayKey } from '../format';

export interface CalendarSnapshot {
  id: string;
  time: string;
}

const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

export function SnapshotCalendar({ snapshots, selectedDay, onSelectDay }: { snapshots: readonly CalendarSnapshot[]; selectedDay: string | undefined; onSelectDay: (day: string) => void }) {
  const byDay = useMemo(() => {
    const map = new Map<string, number>();
    for (const s of snapshots) map.set(dayKey(new Date(s.time)), (map.get(dayKey(new Date(s.time))) ?? 0) + 1);
    return map;
  }, [snapshots]);
  const newest = snapshots.reduce<Date | undefined>((best, s) => (best === undefined || new Date(s.time) > best ? new Date(s.time) : best), undefined) ?? new Date();
  const [month, setMonth] = useState(() => new Date(newest.getFullYear(), newest.getMonth(), 1));
  const title = month.toLocaleDateString('en-GB', { month: 'long', year: 'numeric' });
  const lead = (month.getDay() + 6) % 7; // Monday first
  const days = new Date(month.getFullYear(), month.getMonth() + 1, 0).getDate();
  const step = (delta: number) => setMonth(new Date(month.getFullYear(), month.getMonth() + delta, 1));

  return (
    <div>
      <Group justify="space-between" mb="xs">
        <ActionIcon variant="default" onClick={() => step(-1)} aria-label="Previous month">
          <span aria-hidden="true">‹</span>
        </ActionIcon>
        <Text fw={600} aria-live="polite">
          {title}
        </Text>
        <ActionIcon variant="default" onClick={() => step(1)} aria-label="Next month">
          <span aria-hidden="true">›</span>
        </ActionIcon>
      </Group>
      <SimpleGrid cols={7} spacing={4}>
        {WEEKDAYS.map((d) => (
          <Text key={d} size="xs" c="dimmed" ta="center" aria-hidden="true">
            {d}
          </Text>
        ))}
        {Array.from({ length: lead }, (_, i) => (
          <div key={`lead-${i}`} />
        ))}
        {Array.from({ length: days }, (_, i) => {
          const date = new Date(month.getFullYear(), month.getMonth(), i + 1);
          const key = dayKey(date);
          const count = byDay.get(key) ?? 0;
          const selected = key === selectedDay;
          return (
            <div key={key}>
              {count === 0 ? (
                <Text size="sm" ta="center" c="dimmed" py={6}>
                  {i + 1}
                </Text>
              ) : (
                <UnstyledButton
                  onClick={() => onSelectDay(key)}
                  aria-pressed={selected}
                  w="100%"
                  py={4}
                  style={{ textAlign: 'center', borderRadius: 4, outlineOffset: 1, background: selected ? 'var(--mantine-primary-color-light)' : undefined }}
                >
                  <Text size="sm" fw={700}>
                    {i + 1}
                    <VisuallyHidden>{` ${date.toLocaleDateString('en-GB', { month: 'long' })}, ${count} snapshot${count === 1 ? '' : 's'}`}</VisuallyHidden>
                  </Text>
                  <Badge size="xs" variant={selected ? 'filled' : 'light'} aria-hidden="true">
                    {count}
                  </Badge>
                </UnstyledButton>
              )}
            </div>
          );
        })}
      </SimpleGrid>
    </div>
  );
}
