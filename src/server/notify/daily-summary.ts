/**
 * The daily summary: at its calendar time, one message with the last 24 hours — failures
 * first with their error text, then warnings, then how many VM backups succeeded, the RPO
 * misses, and space. Built from the notifier's own event record.
 */
import type { Schedule } from '../../jobs/index.js';
import { severityRank, type RecordedEvent } from './event.js';
import type { Message } from './render-message.js';

/** The span a summary covers. */
export const SUMMARY_SPAN_MS = 24 * 3_600_000;

/**
 * The firing the summary is due for at `now`: the latest firing after `lastDue` and at or
 * before `now`, or undefined when none is. Several missed firings (the server was down) give
 * one summary, for the latest.
 */
export function summaryDue(schedule: Schedule, times: { lastDue: number; now: number }): number | undefined {
  const { lastDue, now } = times;
  let due: number | undefined;
  let next = schedule.next(new Date(lastDue));
  for (let i = 0; next !== undefined && next.getTime() <= now && i < 10_000; i++) {
    due = next.getTime();
    next = schedule.next(next);
  }
  return due;
}

/** Renders the summary of `events` (those of [dueAt − 24 h, dueAt)). */
export function renderDailySummary(events: readonly RecordedEvent[], dueAt: number): Message {
  const failedRuns = new Set(events.filter((e) => e.type === 'vm.failed' && e.runId !== undefined).map((e) => e.runId));
  const listed = events.filter((e) => e.type !== 'task.finished' && !(e.type === 'job.finished' && e.runId !== undefined && failedRuns.has(e.runId)));
  const failures = listed.filter((e) => severityRank(e.severity) >= severityRank('error')).sort(bySeverityThenTime);
  const warnings = listed.filter((e) => e.severity === 'warning' && e.type !== 'rpo.missed' && e.type !== 'disk-space.low');
  const succeeded = events.filter((e) => e.type === 'vm.succeeded');
  const rpo = latestBy(events.filter((e) => e.type === 'rpo.missed'), (e) => e.vm ?? e.summary);
  const space = latestBy(events.filter((e) => e.type === 'disk-space.low'), (e) => e.repository?.name ?? e.summary);

  const day = new Date(dueAt).toISOString().slice(0, 10);
  const lines = [`Coffer: the 24 hours up to ${new Date(dueAt).toISOString()}`, ''];
  lines.push(`Failures (${failures.length}):`);
  if (failures.length === 0) lines.push('  none');
  for (const e of failures) {
    lines.push(`  - ${time(e)} ${e.severity.toUpperCase()} ${who(e)}${e.summary}`);
    if (e.error !== undefined) lines.push(...e.error.split('\n').map((l) => `      ${l}`));
  }
  lines.push('', `Warnings (${warnings.length}):`);
  if (warnings.length === 0) lines.push('  none');
  for (const e of warnings) lines.push(`  - ${time(e)} ${who(e)}${e.summary}${e.error === undefined ? '' : `: ${e.error}`}`);
  const vms = new Set(succeeded.map((e) => e.vm));
  lines.push('', `Succeeded: ${succeeded.length} VM backup${succeeded.length === 1 ? '' : 's'} (${vms.size} VM${vms.size === 1 ? '' : 's'})`);
  lines.push('', `RPO missed (${rpo.length}):`);
  if (rpo.length === 0) lines.push('  none');
  for (const e of rpo) lines.push(`  - ${who(e)}${e.summary}`);
  lines.push('', `Space (${space.length} low):`);
  if (space.length === 0) lines.push('  no warning');
  for (const e of space) lines.push(`  - ${e.repository?.name ?? ''}: ${e.summary}${freeText(e)}`);

  const subject = `[Coffer] Daily summary ${day}: ${failures.length} failure${failures.length === 1 ? '' : 's'}, ${warnings.length} warning${warnings.length === 1 ? '' : 's'}, ${succeeded.length} succeeded`;
  const text = lines.join('\n') + '\n';
  const brief = (e: RecordedEvent) => ({ type: e.type, severity: e.severity, at: new Date(e.at).toISOString(), job: e.job, vm: e.vm, summary: e.summary, error: e.error });
  return {
    subject,
    text,
    context: {
      type: 'summary',
      severity: failures.length > 0 ? 'error' : warnings.length > 0 ? 'warning' : 'info',
      summary: subject.replace('[Coffer] ', ''),
      at: new Date(dueAt).toISOString(),
      failures: failures.map(brief),
      warnings: warnings.map(brief),
      succeeded: succeeded.length,
      rpoMissed: rpo.map(brief),
      spaceLow: space.map((e) => ({ ...brief(e), repository: e.repository })),
      subject,
      text,
    },
  };
}

function bySeverityThenTime(a: RecordedEvent, b: RecordedEvent): number {
  return severityRank(b.severity) - severityRank(a.severity) || a.at - b.at;
}

function latestBy(events: RecordedEvent[], key: (e: RecordedEvent) => string): RecordedEvent[] {
  const last = new Map<string, RecordedEvent>();
  for (const e of events) last.set(key(e), e);
  return [...last.values()];
}

function time(e: RecordedEvent): string {
  return new Date(e.at).toISOString().slice(11, 16);
}

function who(e: RecordedEvent): string {
  const parts = [e.job, e.vm].filter((p) => p !== undefined);
  return parts.length === 0 ? '' : `${parts.join('/')}: `;
}

function freeText(e: RecordedEvent): string {
  const r = e.repository;
  if (r?.freeBytes === undefined) return '';
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
  return ` (${gib(r.freeBytes)} free${r.totalBytes === undefined ? '' : ` of ${gib(r.totalBytes)}`})`;
}
