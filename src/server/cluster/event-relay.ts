/**
 * Live events across processes (PostgreSQL LISTEN/NOTIFY on the channel `coffer_events`):
 * a worker's runner, or a server's, tells every server what changed, so the SSE route of any
 * server behind the load balancer streams the tasks that workers elsewhere run.
 *
 * Payload (JSON, under PostgreSQL's 8000-byte limit): `{ o, t: 'task', id, s }` (s: its status, for
 * the workers' wake-ups, queue-wakeups.ts), `{ o, t: 'run',
 * id }` or `{ o, t: 'log', taskId, seq, at, level, line }` (the line cut at 2000 characters),
 * where `o` is the sending process's random origin id. A listener reads the task or run back
 * from the database (the payload stays small, and what it emits is what the database says)
 * and emits it on its runner's event emitter, as the runner would: `task`, `run`, `log`. It
 * skips its own origin (its runner emitted those already), and the relay never sends again
 * what a listener emitted (else two servers would bounce every event between them for ever,
 * each hop a new origin: found by the leader test, 647 copies of one run's end in 30 s).
 * NOTIFY is not durable: a listener
 * that was disconnected misses what happened meanwhile (the task and run lists in the database
 * are the record; a client re-reads them when its stream reconnects).
 */
import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import type { StateSchema } from '../state/index.js';
import type { RunInfo, TaskInfo, TaskLogLine } from '../tasks/index.js';

export const EVENT_CHANNEL = 'coffer_events';
/** This process's origin id in the payloads. */
export const ORIGIN = randomUUID().slice(0, 8);

/** The events a listener emitted (from another process): the relay does not send them again. */
const fromElsewhere = new WeakSet<object>();

type Payload = { o: string } & ({ t: 'task'; id: string; s?: string } | { t: 'run'; id: string } | ({ t: 'log'; taskId: string } & TaskLogLine));

/** Sends the runner's events as notifications, one at a time, in order. Failures are dropped (events are not the record). */
export function relayEvents(events: EventEmitter, db: Kysely<StateSchema>): { idle(): Promise<void>; stop(): void } {
  let chain: Promise<void> = Promise.resolve();
  const send = (payload: Payload) => {
    chain = chain.then(() => sql`SELECT pg_notify(${EVENT_CHANNEL}, ${JSON.stringify(payload)})`.execute(db)).then(() => undefined, () => undefined);
  };
  const onTask = (task: TaskInfo) => fromElsewhere.has(task) || send({ o: ORIGIN, t: 'task', id: task.id, s: task.status });
  const onRun = (run: RunInfo) => fromElsewhere.has(run) || send({ o: ORIGIN, t: 'run', id: run.id });
  const onLog = (line: { taskId: string } & TaskLogLine) => fromElsewhere.has(line) || send({ o: ORIGIN, t: 'log', taskId: line.taskId, seq: line.seq, at: line.at, level: line.level, line: line.line.slice(0, 2000) });
  events.on('task', onTask);
  events.on('run', onRun);
  events.on('log', onLog);
  return {
    idle: () => chain,
    stop() {
      events.off('task', onTask);
      events.off('run', onRun);
      events.off('log', onLog);
    },
  };
}

/** What a listener reads back. */
export interface EventSourceReads {
  getTask(id: string): Promise<TaskInfo>;
  getRun(id: string): Promise<RunInfo>;
}

/**
 * Listens on its own connection (not the pool's: LISTEN belongs to a session) and emits what
 * other processes notify; reconnects with a growing delay (up to 5 s) when the connection
 * drops (a database restart). `close()` stops it.
 */
export function listenForEvents(url: string, events: EventEmitter, reads: EventSourceReads, onError: (error: unknown) => void = () => {}): { close(): Promise<void>; ready: Promise<void> } {
  const handle = async (text: string | undefined) => {
    const payload = JSON.parse(text ?? '{}') as Payload;
    if (payload.o === ORIGIN) return;
    const foreign = <T extends object>(event: T): T => {
      fromElsewhere.add(event);
      return event;
    };
    if (payload.t === 'task') events.emit('task', foreign(await reads.getTask(payload.id)));
    else if (payload.t === 'run') events.emit('run', foreign(await reads.getRun(payload.id)));
    else if (payload.t === 'log') events.emit('log', foreign({ taskId: payload.taskId, seq: payload.seq, at: payload.at, level: payload.level, line: payload.line }));
  };
  return listenForNotifications(url, (text) => void handle(text).catch(onError));
}

/**
 * The connection under {@link listenForEvents}: LISTENs on {@link EVENT_CHANNEL} and hands each
 * payload's text to `onPayload` (its own origin's too); reconnects as described there.
 */
export function listenForNotifications(url: string, onPayload: (text: string | undefined) => void): { close(): Promise<void>; ready: Promise<void> } {
  let closed = false;
  let client: pg.Client | undefined;
  let delay = 200;
  let readyResolve: () => void = () => {};
  const ready = new Promise<void>((resolve) => (readyResolve = resolve));
  const connect = async (): Promise<void> => {
    if (closed) return;
    const next = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000, application_name: 'coffer-events', keepAlive: true });
    client = next;
    let retried = false;
    const retry = () => {
      if (retried || closed) return;
      retried = true;
      void next.end().catch(() => undefined);
      setTimeout(() => void connect(), delay).unref();
      delay = Math.min(5000, delay * 2);
    };
    next.on('error', retry);
    next.on('end', retry);
    next.on('notification', (message) => onPayload(message.payload));
    try {
      await next.connect();
      await next.query(`LISTEN ${EVENT_CHANNEL}`);
      delay = 200;
      readyResolve();
    } catch {
      retry();
    }
  };
  void connect();
  return {
    ready,
    async close() {
      closed = true;
      await client?.end().catch(() => undefined);
    },
  };
}
