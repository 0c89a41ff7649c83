/**
 * GET /api/v1/events: live changes as server-sent events (text/event-stream, the WHATWG HTML
 * standard's format), for the console's live views:
 *
 *     id: 17
 *     event: task            (task | run | log)
 *     data: {"id":"…","status":"running","progress":0.42,…}
 *
 * - `task`: a task changed (state or progress: at most a few per second per task), the task
 *   as GET /tasks/{id} gives it; `run`: a run started or ended; `log`: a log line
 *   `{taskId, seq, at, level, line}`.
 * - Only what the caller may see (its grants, as for GET /tasks and /runs); `types`, `run` and
 *   `task` narrow the stream further.
 * - A comment line (`: heartbeat`) every {@link HEARTBEAT_MS} keeps proxies from closing an idle
 *   stream; the server ends every stream when it stops.
 * - Replay: ids are the server's (http/event-ring.ts), increasing while it runs. A client that
 *   reconnects with `Last-Event-ID: N` (EventSource does) first gets the events after N that
 *   it may see, from a ring of the last {@link EVENT_RING_SIZE} events; when some of them are
 *   no longer kept (or N is from before a restart), it gets `event: reset` (data `{}`) first:
 *   read the lists again, the stream continues live.
 */
import type { FastifyInstance } from 'fastify';
import type { RunInfo, TaskInfo, TaskLogLine } from '../../tasks/index.js';
import { EVENT_RING_SIZE, EventRing, type RingEvent } from '../event-ring.js';
import { defineRoute } from '../route.js';
import type { ServiceContext } from '../service-context.js';
import { canSeeRun, canSeeTask } from './work-views.js';

/** How often an idle stream gets a comment line. */
export const HEARTBEAT_MS = 15_000;
const EVENT_TYPES = ['task', 'run', 'log'] as const;

export function eventRoutes(app: FastifyInstance, context: ServiceContext): void {
  const { runner } = context.work;
  const streams = new Set<() => void>();
  const ring = new EventRing();
  const onTaskEvent = (task: TaskInfo) => ring.record('task', task);
  const onRunEvent = (run: RunInfo) => ring.record('run', run);
  const onLogEvent = (line: { taskId: string } & TaskLogLine) => ring.record('log', line);
  runner.events.on('task', onTaskEvent);
  runner.events.on('run', onRunEvent);
  runner.events.on('log', onLogEvent);
  app.addHook('onClose', (_instance, done) => {
    runner.events.off('task', onTaskEvent);
    runner.events.off('run', onRunEvent);
    runner.events.off('log', onLogEvent);
    done();
  });
  app.addHook('preClose', (done) => {
    for (const end of [...streams]) end();
    done();
  });

  defineRoute(app, {
    method: 'GET',
    url: '/events',
    operationId: 'streamEvents',
    summary: 'Live task, run and log changes as server-sent events (text/event-stream)',
    description: `Events: \`task\` (a task as GET /tasks/{id}), \`run\` (a run as GET /runs/{id} without its tasks), \`log\` ({taskId, seq, at, level, line}). Filtered by what the caller may see; a \`: heartbeat\` comment every 15 s; the stream ends when the server stops. Reconnecting with the header \`Last-Event-ID\` replays the events missed since that id (the server keeps the last ${EVENT_RING_SIZE}); when some are no longer kept, an \`event: reset\` comes first (read the lists again).`,
    tag: 'events',
    access: { permission: 'inventory.read', filtered: true },
    querystring: {
      type: 'object',
      additionalProperties: false,
      properties: {
        types: { type: 'string', pattern: '^(task|run|log)(,(task|run|log))*$', description: 'a comma-separated list (default: all)' },
        run: { type: 'string', maxLength: 64, description: 'only this run\'s events' },
        task: { type: 'string', maxLength: 64, description: 'only this task\'s events' },
      },
    },
    response: { 200: { content: { 'text/event-stream': { schema: { type: 'string' } } } } },
    async handler(request, reply) {
      const q = request.query as { types?: string; run?: string; task?: string };
      const wanted = new Set(q.types === undefined ? EVENT_TYPES : q.types.split(','));
      const config = () => context.config.config;
      reply.hijack();
      const out = reply.raw;
      out.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      out.write(': coffer events\nretry: 3000\n\n');
      let id = 0;
      const send = (type: string, data: unknown) => {
        out.write(`id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      // Tasks seen on this stream (for the visibility of their log lines), and the order of writes.
      const taskVisible = new Map<string, boolean>();
      let chain: Promise<void> = Promise.resolve();
      const inOrder = (work: () => Promise<void> | void) => {
        chain = chain.then(work).catch(() => undefined);
      };
      const visible = (task: TaskInfo) => {
        const ok = canSeeTask(request, 'inventory.read', task);
        taskVisible.set(task.id, ok);
        return ok;
      };
      const onTask = (task: TaskInfo) => {
        if (!visible(task) || !wanted.has('task') || (q.run !== undefined && task.runId !== q.run) || (q.task !== undefined && task.id !== q.task)) return;
        send('task', task);
      };
      const onRun = (run: RunInfo) => {
        if (!wanted.has('run') || (q.run !== undefined && run.id !== q.run) || q.task !== undefined || !canSeeRun(request, 'inventory.read', run, config())) return;
        send('run', run);
      };
      const onLog = async (line: { taskId: string } & TaskLogLine) => {
        if (!wanted.has('log') || (q.task !== undefined && line.taskId !== q.task)) return;
        let ok = taskVisible.get(line.taskId);
        let task: TaskInfo | undefined;
        if (ok === undefined || q.run !== undefined) {
          task = await runner.getTask(line.taskId).catch(() => undefined);
          ok = task !== undefined && visible(task);
        }
        if (ok && (q.run === undefined || task?.runId === q.run)) send('log', line);
      };
      const deliver = (event: RingEvent) => inOrder(async () => {
        id = event.id;
        if (event.type === 'task') onTask(event.data as TaskInfo);
        else if (event.type === 'run') onRun(event.data as RunInfo);
        else await onLog(event.data as { taskId: string } & TaskLogLine);
      });
      // Replay first (in order, before anything live): what a reconnecting client missed.
      const lastEventId = request.headers['last-event-id'];
      if (typeof lastEventId === 'string' && lastEventId.trim() !== '') {
        const missed = ring.since(Number(lastEventId.trim()));
        if (!missed.complete) inOrder(() => void out.write(`id: ${missed.events.at(-1)?.id ?? lastEventId}\nevent: reset\ndata: {}\n\n`));
        else for (const event of missed.events) deliver(event);
      }
      const heartbeat = setInterval(() => out.write(': heartbeat\n\n'), HEARTBEAT_MS);
      ring.events.on('event', deliver);
      const end = () => {
        if (!streams.delete(end)) return;
        clearInterval(heartbeat);
        ring.events.off('event', deliver);
        out.end();
      };
      streams.add(end);
      // The response's close (not the request's: that fires once a body is read) is the client going.
      out.on('close', end);
    },
  });
}

/** For tests and clients: the events of a text/event-stream body. */
export function parseEventStream(text: string): { id?: string; event: string; data: string }[] {
  const events: { id?: string; event: string; data: string }[] = [];
  for (const block of text.split('\n\n')) {
    let event = 'message';
    let id: string | undefined;
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':') || line === '') continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
    if (data.length > 0) events.push({ ...(id === undefined ? {} : { id }), event, data: data.join('\n') });
  }
  return events;
}
