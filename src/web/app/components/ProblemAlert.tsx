/**
 * An error as a user meets it: the problem detail's title and detail (and its field errors),
 * or "the server does not answer" with a retry, or, for a 403, what the role lacks and a way
 * on (who can grant it, the dashboard). Never a stack trace: anything else shows its message
 * only.
 */
import { Alert, Anchor, Button, List, Text } from '@mantine/core';
import { ApiProblem, ServerUnreachable } from '../../api/problem';

export interface ProblemAlertProps {
  error: unknown;
  /** Offered as a "Try again" button. */
  onRetry?: () => void;
  /** What the user was doing, e.g. "Loading the VMs". */
  context?: string;
}

export function describeError(error: unknown): { title: string; detail: string; code?: string } {
  if (error instanceof ApiProblem) {
    if (error.status === 403 && error.code === 'E_FORBIDDEN') return { title: 'Not allowed', detail: `Your role does not allow this. ${error.detail}`, code: error.code };
    return { title: error.title, detail: error.detail, code: error.code };
  }
  if (error instanceof ServerUnreachable) return { title: 'The server does not answer', detail: error.message };
  if (error instanceof Error) return { title: 'Something went wrong', detail: error.message };
  return { title: 'Something went wrong', detail: String(error) };
}

export function ProblemAlert({ error, onRetry, context }: ProblemAlertProps) {
  const { title, detail, code } = describeError(error);
  const fieldErrors = error instanceof ApiProblem ? error.errors : [];
  return (
    <Alert color="red" title={context === undefined ? title : `${context}: ${title}`} role="alert" variant="light">
      <Text size="sm">{detail}</Text>
      {fieldErrors.length > 0 && (
        <List size="sm" mt="xs">
          {fieldErrors.map((e, i) => (
            <List.Item key={i}>{[e.key ?? e.path, e.message].filter((x) => x !== undefined).map(String).join(': ')}</List.Item>
          ))}
        </List>
      )}
      {code !== undefined && (
        <Text size="xs" c="dimmed" mt="xs">
          code {code}
        </Text>
      )}
      {error instanceof ApiProblem && error.status === 403 && (
        <Text size="sm" mt="xs" data-testid="forbidden-way-on">
          An administrator can grant it (Users and grants). Meanwhile:{' '}
          <Anchor href="/" size="sm" underline="always">
            back to the dashboard
          </Anchor>
          .
        </Text>
      )}
      {onRetry !== undefined && (
        <Button size="xs" variant="light" mt="sm" onClick={onRetry}>
          Try again
        </Button>
      )}
    </Alert>
  );
}
