/**
 * Which routes this server offers, read from its own OpenAPI document: a page that needs a
 * route some servers lack yet (runs, tasks) asks here and says "not available" instead of
 * failing or inventing data.
 */
import { useQuery } from '@tanstack/react-query';
import { call } from '../api/client';

export function useApiOffers(path: string): boolean | undefined {
  const document = useQuery({ queryKey: ['openapi'], queryFn: () => call('get', '/api/v1/openapi.json'), staleTime: Infinity });
  if (document.data === undefined) return document.isError ? false : undefined;
  const paths = (document.data as { paths?: Record<string, unknown> }).paths ?? {};
  return Object.hasOwn(paths, path);
}
