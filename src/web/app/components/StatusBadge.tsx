/**
 * A task's or a run's state as a coloured word. Filled badges in a dark shade (9) with white
 * text, and a light yellow with dark text for warnings, keep WCAG AA (4.5:1) for the small
 * bold text (axe-core found teal's shade 8 at 3.9:1).
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

function badgeColor(status: string): string {
  const colour = STATUS_COLOR[status] ?? 'gray';
  return colour === 'yellow' ? 'yellow.4' : `${colour}.9`;
}

export function StatusBadge({ status }: { status: string }) {
  return (
    <Badge color={badgeColor(status)} variant="filled" data-status={status}>
      {status}
    </Badge>
  );
}
