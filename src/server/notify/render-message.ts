/**
 * The message made for an event: a subject and a plain-text body for e-mail, and the context
 * a webhook's body template reads. A run's `job.finished` lists its VMs, failures first, each
 * with its error text (the thing administrators miss most in other tools' mails).
 *
 * Context fields (the webhook placeholders): `type`, `severity`, `summary`, `error`, `at` (ISO
 * 8601), `job`, `runId`, `vm`, `host`, `vmTags`, `repository`, `backup`, `task`, `subject`,
 * `text`, and for a run `vms` (a list of `{vm, host, status, severity, summary, error}`,
 * failures first), `failed` and `succeeded` (counts).
 */
import { severityRank, type RecordedEvent } from './event.js';

/** A rendered message, stored in the outbox as it is. */
export interface Message {
  subject: string;
  text: string;
  context: Record<string, unknown>;
}

/** One VM's result inside a run's message. */
export interface VmResult {
  vm: string;
  host?: string;
  status: 'failed' | 'succeeded' | 'other';
  severity: string;
  summary: string;
  error?: string;
}

/** The message for one event on its own. */
export function renderEventMessage(event: RecordedEvent): Message {
  const lines = [event.summary, '', ...facts(event)];
  if (event.error !== undefined) lines.push('', 'Error:', indent(event.error));
  const subject = subjectLine(event.severity, event.summary);
  const text = lines.join('\n') + '\n';
  return { subject, text, context: { ...contextOf(event), subject, text } };
}

/**
 * The message for a run: its `job.finished` event and the VM events recorded with the same run
 * id; `severity` is the run's (the worst of them). Failures come first, each with its error
 * text, then other results, then successes.
 */
export function renderRunMessage(finished: RecordedEvent, run: { vmEvents: readonly RecordedEvent[]; severity: string }): Message {
  const { vmEvents, severity } = run;
  const vms = vmResults(vmEvents);
  const failed = vms.filter((v) => v.status === 'failed');
  const succeeded = vms.filter((v) => v.status === 'succeeded');
  const other = vms.filter((v) => v.status === 'other');
  const lines = [finished.summary, '', ...facts({ ...finished, vm: undefined })];
  if (finished.error !== undefined) lines.push('', 'Error:', indent(finished.error));
  if (failed.length > 0) {
    lines.push('', `Failed (${failed.length}):`);
    for (const v of failed) {
      lines.push(`  - ${v.vm}${v.host === undefined ? '' : ` (host ${v.host})`}: ${v.summary}`);
      if (v.error !== undefined) lines.push(indent(v.error, '      '));
    }
  }
  if (other.length > 0) {
    lines.push('', `Other (${other.length}):`);
    for (const v of other) lines.push(`  - ${v.vm}: ${v.summary}${v.error === undefined ? '' : `: ${v.error}`}`);
  }
  if (succeeded.length > 0) {
    lines.push('', `Succeeded (${succeeded.length}):`);
    for (const v of succeeded) lines.push(`  - ${v.vm}: ${v.summary}`);
  }
  const subject = subjectLine(severity, finished.summary);
  const text = lines.join('\n') + '\n';
  return {
    subject,
    text,
    context: { ...contextOf(finished), severity, vms, failed: failed.length, succeeded: succeeded.length, subject, text },
  };
}

/** A run's VM results: the last event of each VM, failures first (then by name). */
export function vmResults(vmEvents: readonly RecordedEvent[]): VmResult[] {
  const last = new Map<string, RecordedEvent>();
  for (const e of vmEvents) if (e.vm !== undefined) last.set(e.vm, e);
  const rank = { failed: 0, other: 1, succeeded: 2 } as const;
  return [...last.values()]
    .map((e): VmResult => ({
      vm: e.vm as string,
      ...(e.host === undefined ? {} : { host: e.host }),
      status: e.type === 'vm.failed' ? 'failed' : e.type === 'vm.succeeded' ? 'succeeded' : 'other',
      severity: e.severity,
      summary: e.summary,
      ...(e.error === undefined ? {} : { error: e.error }),
    }))
    .sort((a, b) => rank[a.status] - rank[b.status] || severityRank(b.severity as never) - severityRank(a.severity as never) || a.vm.localeCompare(b.vm));
}

function subjectLine(severity: string, summary: string): string {
  return `[Coffer] ${severity.toUpperCase()}: ${summary.split('\n')[0]}`;
}

function facts(event: Omit<RecordedEvent, 'vm'> & { vm?: string | undefined }): string[] {
  const out = [`Event: ${event.type} (${event.severity})`, `Time: ${new Date(event.at).toISOString()}`];
  if (event.job !== undefined) out.push(`Job: ${event.job}${event.runId === undefined ? '' : ` (run ${event.runId})`}`);
  if (event.vm !== undefined) out.push(`VM: ${event.vm}${event.vmTags.length > 0 ? ` [${event.vmTags.join(', ')}]` : ''}`);
  if (event.host !== undefined) out.push(`Host: ${event.host}`);
  if (event.repository !== undefined) out.push(`Repository: ${event.repository.name}`);
  return out;
}

function contextOf(event: RecordedEvent): Record<string, unknown> {
  const { id: _id, ...rest } = event;
  return { ...rest, at: new Date(event.at).toISOString() };
}

function indent(text: string, prefix = '  '): string {
  return text
    .split('\n')
    .map((line) => prefix + line)
    .join('\n');
}
