/** A running task's progress as a bar with its percentage (live: fed by the events stream). */
import { Group, Progress, Text } from '@mantine/core';

export function TaskProgress({ progress, label }: { progress: number; label: string }) {
  const percent = Math.round(progress * 100);
  return (
    <Group gap="xs" wrap="nowrap">
      <Progress value={percent} w={120} aria-label={label} animated striped />
      <Text size="sm" data-testid="progress-percent">
        {percent}%
      </Text>
    </Group>
  );
}
