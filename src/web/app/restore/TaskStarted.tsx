/**
 * What a restore form says once the server has answered its start: the task started (a link
 * to its page, where its progress and outcome show), or the request waiting for a second
 * administrator (`security.four-eyes`).
 */
import { Text } from '@mantine/core';
import { Link } from 'react-router';

export function TaskStarted({ answer }: { answer: object | undefined }) {
  if (answer === undefined) return null;
  const id = 'id' in answer && typeof answer.id === 'string' ? answer.id : undefined;
  if (id === undefined) return <Text size="sm">Waiting for a second administrator's approval.</Text>;
  return (
    <Text size="sm" data-testid="restore-started">
      Started: follow it on <Link to={`/tasks/${id}`}>its task page</Link>.
    </Text>
  );
}
