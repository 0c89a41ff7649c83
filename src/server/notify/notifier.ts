/**
 * The notifier: takes events, records them, routes them by the rules to the targets through
 * the persistent outbox, delivers with retries, and sends the daily summary.
 *
 * Concurrency: `emit` may be called from anywhere at any time; it returns once the event is
 * recorded and its messages are queued (durable), never waiting for a delivery. Deliveries run
 * in the background, each message on its own, so a dead or slow target (bounded by its
 * timeout) never delays another target, an emitter, or the server. One notifier per state
 * database: two would each deliver the same outbox rows.
 *
 * Clock: `now` is injected (tests move it); the background loop wakes every `pollMs` of real
 * time and on every emit, and asks `now` what is due.
 */
import type { Kysely } from 'kysely';
import { CofferError } from '../../errors/index.js';
import type { StateSchema } from '../state/index.js';
import { summaryDue, renderDailySummary, SUMMARY_SPAN_MS } from './daily-summary.js';
import { checkEvent, maxSeverity, type NotificationEvent, type RecordedEvent } from './event.js';
import { eventKey, eventsBetween, pruneEvents, recordedEventByKey, recordedRunEvent, recordedTaskEvent, recordEvent, runVmEvents } from './event-history.js';
import { readMetricsFigures, type MetricsFigures } from './metrics-figures.js';
import type { NotificationConfig, NotificationRule, NotificationTarget } from './notification-config.js';
import { deliveryLog, dueEntries, enqueue, pruneOutbox, recordAttempt, releaseTarget, type DeliveryRecord, type OutboxEntry } from './outbox.js';
import { renderEventMessage, renderRunMessage, type Message } from './render-message.js';
import { ruleMatches, type MatchSubject } from './rule-match.js';
import { sendMail } from './smtp-delivery.js';
import { postWebhook } from './webhook-delivery.js';

export interface NotifierOptions {
  /** The state database (migrated: it has the notify tables). */
  db: Kysely<StateSchema>;
  config: NotificationConfig;
  /** The clock, ms since the epoch (default `Date.now`). */
  now?: () => number;
  /** How often the background loop looks for due work, ms of real time (default 1000). */
  pollMs?: number;
  /** Told about failures of the notifier itself (the database), which never throw out of the loop. */
  onError?: (error: unknown) => void;
  /**
   * Whether this notifier delivers (the outbox, the daily summary, pruning); default true.
   * With several servers only the leader delivers (docs/scale.md); the others record and queue
   * nothing either, since only the leader is told the events. See {@link Notifier.setDelivering}.
   */
  delivering?: boolean;
}

const SUMMARY_STATE_KEY = 'daily-summary.last-due';
const PRUNE_EVERY_MS = 3_600_000;
/** How long `close` waits for deliveries under way. */
const CLOSE_TIMEOUT_MS = 10_000;

/** What was queued for one event: a rule and a target per message. */
export interface EmitResult {
  event: RecordedEvent;
  queued: { rule: string; target: string; outboxId: number }[];
}

export class Notifier {
  private config: NotificationConfig;
  private readonly db: Kysely<StateSchema>;
  private readonly now: () => number;
  private readonly onError: (error: unknown) => void;
  private readonly inFlight = new Map<number, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private tickAgain = false;
  private lastPrune = 0;
  private closed = false;
  private delivering: boolean;

  private constructor(options: NotifierOptions) {
    this.delivering = options.delivering ?? true;
    this.db = options.db;
    this.config = options.config;
    this.now = options.now ?? Date.now;
    this.onError = options.onError ?? (() => {});
  }

  /** Starts a notifier: remembers when the summary was last due, and starts the loop (which first delivers what a previous run left in the outbox). */
  static async start(options: NotifierOptions): Promise<Notifier> {
    const notifier = new Notifier(options);
    await options.db
      .insertInto('notify_state')
      .values({ key: SUMMARY_STATE_KEY, value: String(notifier.now()) })
      .onConflict((c) => c.column('key').doNothing())
      .execute();
    const pollMs = options.pollMs ?? 1000;
    notifier.timer = setInterval(() => notifier.kick(), pollMs);
    notifier.timer.unref();
    notifier.kick();
    return notifier;
  }

  /** Starts or stops delivering (a server elected or deposed as leader); what is due is delivered at once when started. */
  setDelivering(on: boolean): void {
    this.delivering = on;
    if (on) this.kick();
  }

  /** Replaces the configuration (already validated). Queued messages keep their target names. */
  reconfigure(config: NotificationConfig): void {
    this.config = config;
  }

  /**
   * Records `event`, queues a message per matching rule and target, and wakes delivery.
   * A run's VM events (`vm.*` with a `runId`) are only recorded: rules that group runs (the
   * default) report them in the run's `job.finished` message, failures first. A run's event
   * already recorded (same type, run and VM: a copy heard from another server) is not
   * recorded or sent again; the earlier record is returned.
   * @throws CofferError E_USAGE for a malformed event; E_STATE_UNAVAILABLE-class database errors as they come.
   */
  async emit(event: NotificationEvent): Promise<EmitResult> {
    checkEvent(event);
    // An event happens once; a second copy (another server heard it too, or the sweep of ended
    // tasks found it again) returns the earlier record and queues nothing.
    if (event.taskId !== undefined) {
      const earlier = await recordedTaskEvent(this.db, event.type, event.taskId);
      if (earlier !== undefined) return { event: earlier, queued: [] };
    }
    if (event.runId !== undefined && (event.type === 'job.finished' || event.type.startsWith('vm.'))) {
      const earlier = await recordedRunEvent(this.db, event.type, event.runId, event.vm);
      if (earlier !== undefined) return { event: earlier, queued: [] };
    }
    const recorded = await recordEvent(this.db, { ...event, at: event.at ?? this.now() });
    if (recorded === undefined) {
      // Recorded by someone else between the look-up above and this insert (another server).
      const earlier = await recordedEventByKey(this.db, eventKey(event) as string);
      if (earlier === undefined) throw new Error(`notify_events: event ${eventKey(event) ?? ''} was refused as a copy, yet no record of it is found`);
      return { event: earlier, queued: [] };
    }
    const queued: EmitResult['queued'] = [];
    const isRunVmEvent = recorded.type.startsWith('vm.') && recorded.runId !== undefined;
    const run = recorded.type === 'job.finished' && recorded.runId !== undefined ? await runVmEvents(this.db, recorded.runId) : undefined;
    const sentTo = new Set<string>();
    for (const rule of this.config.rules) {
      const message = this.messageFor(rule, recorded, isRunVmEvent, run);
      if (message === undefined) continue;
      for (const target of rule.targets) {
        if (sentTo.has(target)) continue; // two rules routing one event to one target: one message
        sentTo.add(target);
        const outboxId = await enqueue(this.db, {
          rule: rule.name,
          target,
          kind: 'event',
          message,
          // JSON, not NUL-joined: PostgreSQL's text cannot hold a NUL byte.
          dedupeKey: JSON.stringify([rule.name, target, recorded.type, recorded.job ?? '', recorded.vm ?? '', recorded.summary]),
          dedupeMs: rule.dedupeMs,
          now: this.now(),
        });
        if (outboxId !== undefined) queued.push({ rule: rule.name, target, outboxId });
      }
    }
    if (queued.length > 0) this.kick();
    return { event: recorded, queued };
  }

  /** Does due work now: delivers due messages (without waiting for them), sends a due summary, prunes. */
  tick(): Promise<void> {
    if (this.ticking !== undefined) {
      this.tickAgain = true;
      return this.ticking;
    }
    this.ticking = (async () => {
      do {
        this.tickAgain = false;
        await this.sendDueSummary();
        await this.startDueDeliveries();
        await this.pruneIfDue();
      } while (this.tickAgain && !this.closed);
    })().finally(() => {
      this.ticking = undefined;
    });
    return this.ticking;
  }

  /** Waits until every delivery under way has ended (sent or failed). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()]);
  }

  /**
   * Sends a test message to one target now, bypassing rules and the outbox (for an
   * administrator checking a new target): resolves when the target took it.
   * @throws CofferError E_USAGE for an unknown target; the delivery's error otherwise
   * (E_CONNECTION_FAILED, E_TIMEOUT, …), with the peer's answer in the message.
   */
  async sendTestMessage(targetName: string): Promise<void> {
    const target = this.config.targets.get(targetName);
    if (target === undefined) throw new CofferError('E_USAGE', `no notification target is named ${JSON.stringify(targetName)}`);
    const at = this.now();
    const message = renderEventMessage({ id: 0, type: 'task.finished', severity: 'info', at, vmTags: [], summary: `test message from Coffer to the target ${targetName}`, task: { kind: 'notification-test', status: 'succeeded' } });
    await send(target, message);
  }

  /** The delivery log, newest first. */
  deliveries(options: { limit?: number; offset?: number } = {}): Promise<DeliveryRecord[]> {
    return deliveryLog(this.db, options);
  }

  /** The figures `/metrics` serves (the metrics folder's `MetricsSource`). */
  figures(): Promise<MetricsFigures> {
    return readMetricsFigures(this.db);
  }

  /** Stops the loop and waits (at most 10 s) for deliveries under way; what is left stays queued. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.ticking?.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)))]);
    clearTimeout(timer);
  }

  private kick(): void {
    if (this.closed || !this.delivering) return;
    this.tick().catch((error: unknown) => this.onError(error));
  }

  private messageFor(rule: NotificationRule, event: RecordedEvent, isRunVmEvent: boolean, run: RecordedEvent[] | undefined): Message | undefined {
    if (isRunVmEvent && rule.groupRuns) return undefined;
    if (run === undefined || !rule.groupRuns) return ruleMatches(rule, subjectOf(event)) ? renderEventMessage(event) : undefined;
    const severity = run.reduce((s, e) => maxSeverity(s, e.severity), event.severity);
    const tags = [...new Set(run.flatMap((e) => e.vmTags).concat(event.vmTags))];
    const matches = ruleMatches(rule, { ...subjectOf(event), severity, vmTags: tags }) || run.some((e) => ruleMatches(rule, subjectOf(e)));
    return matches ? renderRunMessage(event, { vmEvents: run, severity }) : undefined;
  }

  private async sendDueSummary(): Promise<void> {
    const summary = this.config.dailySummary;
    if (summary === undefined) return;
    const now = this.now();
    const state = await this.db.selectFrom('notify_state').select('value').where('key', '=', SUMMARY_STATE_KEY).executeTakeFirst();
    const due = summaryDue(summary.schedule, { lastDue: Number(state?.value ?? now), now });
    if (due === undefined) return;
    const message = renderDailySummary(await eventsBetween(this.db, due - SUMMARY_SPAN_MS, due), due);
    for (const target of summary.targets) {
      // The key makes a summary idempotent: a crash before the state update below does not send it twice.
      await enqueue(this.db, { rule: 'daily-summary', target, kind: 'summary', message, dedupeKey: JSON.stringify(['summary', due, target]), dedupeMs: 2 * SUMMARY_SPAN_MS, now });
    }
    await this.db.updateTable('notify_state').set({ value: String(due) }).where('key', '=', SUMMARY_STATE_KEY).execute();
  }

  private async startDueDeliveries(): Promise<void> {
    for (const entry of await dueEntries(this.db, this.now())) {
      if (this.inFlight.has(entry.id) || this.closed) continue;
      const delivery = this.deliver(entry)
        .catch((error: unknown) => this.onError(error))
        .finally(() => this.inFlight.delete(entry.id));
      this.inFlight.set(entry.id, delivery);
    }
  }

  private async deliver(entry: OutboxEntry): Promise<void> {
    const target = this.config.targets.get(entry.target);
    const started = performance.now();
    let error: string | undefined;
    if (target === undefined) error = `no target is named ${JSON.stringify(entry.target)} in the configuration any more`;
    else {
      try {
        await send(target, entry.message);
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
    }
    const policy = target?.retry ?? { attempts: 1, initialMs: 0, maxMs: 0 };
    const state = await recordAttempt(this.db, entry, { ...(error === undefined ? {} : { error }), durationMs: performance.now() - started, now: this.now(), policy });
    if (state === 'sent' && entry.attempts > 0) {
      // A target that failed before is back: deliver its backlog now, not at each row's backoff.
      await releaseTarget(this.db, entry.target, this.now());
      this.kick();
    }
  }

  private async pruneIfDue(): Promise<void> {
    const now = this.now();
    if (now - this.lastPrune < PRUNE_EVERY_MS) return;
    this.lastPrune = now;
    const before = now - this.config.historyDays * 86_400_000;
    await pruneEvents(this.db, before);
    await pruneOutbox(this.db, before);
  }
}

function send(target: NotificationTarget, message: Message): Promise<void> {
  return target.type === 'smtp' ? sendMail(target, message) : postWebhook(target, message);
}

function subjectOf(event: RecordedEvent): MatchSubject {
  return { type: event.type, severity: event.severity, vmTags: event.vmTags, at: event.at, ...(event.job === undefined ? {} : { job: event.job }) };
}
