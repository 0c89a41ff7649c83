/**
 * Live changes from the server: `GET /api/v1/events` is a server-sent event stream (WHATWG
 * EventSource; the session cookie goes with it, same origin). Its events:
 *
 *     event: task   data: the task as GET /tasks/ID answers it (state or progress changed)
 *     event: run    data: the run (started or ended)
 *     event: log    data: {taskId, seq, at, level, line}
 *
 * Query `types=task,run,log`, `run=ID`, `task=ID` narrow it. There is no replay: after a
 * reconnection (EventSource reconnects by itself) the lists must be read again, which
 * {@link useLiveTasks} does by invalidating them.
 */
import { useQueryClient, type QueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import type { Answer } from '../../api/client';

export type Task = Answer<'/api/v1/tasks/{id}', 'get'>;
export type LogLine = { taskId: string; seq: number; at: string; level: 'info' | 'warning' | 'error'; line: string };
export type LiveState = 'connecting' | 'live' | 'offline';

type Handlers = { task?: (task: Task) => void; run?: (run: unknown) => void; log?: (line: LogLine) => void; reconnected?: () => void };

/** Opens the stream while the component is mounted; returns whether it is connected. */
export function useEvents(query: { types: string; task?: string; run?: string }, handlers: Handlers): LiveState {
  const [state, setState] = useState<LiveState>('connecting');
  const latest = useRef(handlers);
  latest.current = handlers;
  const search = new URLSearchParams({ types: query.types, ...(query.task === undefined ? {} : { task: query.task }), ...(query.run === undefined ? {} : { run: query.run }) }).toString();
  useEffect(() => {
    if (typeof EventSource === 'undefined') {
      setState('offline');
      return;
    }
    const source = new EventSource(`/api/v1/events?${search}`, { withCredentials: true });
    let opened = false;
    const parse = (event: Event) => JSON.parse((event as MessageEvent<string>).data) as unknown;
    source.addEventListener('open', () => {
      if (opened) latest.current.reconnected?.();
      opened = true;
      setState('live');
    });
    source.addEventListener('error', () => setState(source.readyState === EventSource.CLOSED ? 'offline' : 'connecting'));
    source.addEventListener('task', (e) => latest.current.task?.(parse(e) as Task));
    source.addEventListener('run', (e) => latest.current.run?.(parse(e)));
    source.addEventListener('log', (e) => latest.current.log?.(parse(e) as LogLine));
    return () => source.close();
  }, [search]);
  return state;
}

/** Lists that a task or run change makes stale. */
const LIVE_LISTS = [['tasks'], ['runs'], ['scheduler']] as const;

/** Refreshes the lists at most once a second however many events arrive. */
function throttledInvalidate(client: QueryClient): () => void {
  let pending: ReturnType<typeof setTimeout> | undefined;
  return () => {
    if (pending !== undefined) return;
    pending = setTimeout(() => {
      pending = undefined;
      for (const key of LIVE_LISTS) void client.invalidateQueries({ queryKey: [...key] });
    }, 1000);
  };
}

/**
 * Keeps the task and run queries of the page current: a task's own query (`['task', id]`) and
 * its copy in any cached page of tasks are replaced by the event's copy at once (live
 * progress); the lists are read again, throttled, for tasks that appeared or left a filter.
 */
export function useLiveTasks(): LiveState {
  const client = useQueryClient();
  const invalidate = useRef<() => void>(undefined);
  invalidate.current ??= throttledInvalidate(client);
  return useEvents(
    { types: 'task,run' },
    {
      task: (task) => {
        client.setQueryData(['task', task.id], task);
        client.setQueriesData<{ items: Task[] }>({ queryKey: ['tasks'] }, (page) => (page?.items === undefined ? page : { ...page, items: page.items.map((t) => (t.id === task.id ? task : t)) }));
        invalidate.current?.();
      },
      run: () => invalidate.current?.(),
      reconnected: () => invalidate.current?.(),
    },
  );
}
