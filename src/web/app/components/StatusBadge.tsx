/**
 * A task's or a run's state as a coloured word. Filled badges (the theme's shade 8 with
 * automatic text contrast) keep WCAG AA for every colour, warnings' yellow included.
 */
import { Badge } from '@mantine/core';

/** One colour per outcome, shared by the badges, the timeline's bars and its legend. */
export const STATUS_COLOR: Record<string, string> = {
  succeeded: 'teal',
  warning: 'yellow',
  failed: 'red',
  cancelled: 'gray',
  interrupted: 'grape',
  running: 'blue',
  queued: 'indigo',
  skipped: 'gray',
};

export function StatusBadge({ status }: { status: string }) {
  return (
    <Badge color={STATUS_COLOR[status] ?? 'gray'} variant="filled" data-status={status}>
      {status}
    </Badge>
  );
}
