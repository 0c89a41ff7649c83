/**
 * The three states of anything read from the API: loading, failed (the problem shown, with
 * retry), or the data handed to `children`.
 */
import { Center, Loader } from '@mantine/core';
import type { UseQueryResult } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { ApiProblem } from '../../api/problem';
import { ProblemAlert } from './ProblemAlert';

export function QueryView<T>({ query, children, context }: { query: UseQueryResult<T>; children: (data: T) => ReactNode; context?: string }) {
  if (query.isPending) {
    return (
      <Center p="md">
        <Loader size="sm" aria-label={context === undefined ? 'Loading' : `${context}…`} />
      </Center>
    );
  }
  if (query.isError) {
    // Retrying helps a dead server or a failing one (5xx), not a refusal (4xx).
    const final = query.error instanceof ApiProblem && query.error.status < 500 && query.error.status !== 429;
    return <ProblemAlert error={query.error} {...(final ? {} : { onRetry: () => void query.refetch() })} {...(context === undefined ? {} : { context })} />;
  }
  return <>{children(query.data)}</>;
}
