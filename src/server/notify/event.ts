/**
 * The events the notifier is told about. The task runner and the service emit them through
 * `notifier.emit(event)`; rules route them to targets, the daily summary and `/metrics` are
 * built from them.
 */
import { CofferError } from '../../errors/index.js';

/** Every event type, with what it means (also the documentation's list). */
export const EVENT_TYPES = {
  'job.finished': 'a run of a job ended (its VMs\' results are grouped into this one message)',
  'vm.failed': 'the backup of one VM failed',
  'vm.succeeded': 'the backup of one VM succeeded (carries its figures for /metrics)',
  'rpo.missed': 'a VM\'s last good backup is older than its recovery point objective',
  'repository.damage': 'verify or a read found damage in a repository',
  'verify.result': 'a verify ended (severity error when it found damage)',
  'test-restore.result': 'a test restore ended (severity error when the snapshot did not restore intact)',
  'disk-space.low': 'a repository\'s storage is running out of space',
  'run.overlap-skipped': 'a scheduled run was skipped because the previous run of the job was still going',
  'task.finished': 'any task ended (counted by kind and status for /metrics; rarely routed)',
} as const;

export type EventType = keyof typeof EVENT_TYPES;

/** Severities, least severe first. */
export const SEVERITIES = ['info', 'warning', 'error', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** The rank of a severity: info 0 … critical 3. */
export function severityRank(severity: Severity): number {
  return SEVERITIES.indexOf(severity);
}

/** The more severe of two severities. */
export function maxSeverity(a: Severity, b: Severity): Severity {
  return severityRank(a) >= severityRank(b) ? a : b;
}

/** What a backup of one VM moved, from `backupVm`'s statistics. */
export interface BackupFigures {
  logicalBytes: number;
  readBytes: number;
  newBytes: number;
  storedBytes: number;
  durationMs: number;
}

/** What is known of a repository's size and space when the event was made. */
export interface RepositoryFigures {
  name: string;
  /** Bytes the repository stores (after deduplication and compression). */
  storedBytes?: number;
  /** Free and total bytes of the storage it lives on. */
  freeBytes?: number;
  totalBytes?: number;
}

/** One event. Only `type`, `severity` and `summary` are required. */
export interface NotificationEvent {
  type: EventType;
  severity: Severity;
  /** One line a human reads first, e.g. `nightly: 2 of 3 VMs failed`. */
  summary: string;
  /** When it happened, ms since the epoch; the notifier's clock when missing. */
  at?: number;
  /** The error text, where there is one (the whole message, not just a code). */
  error?: string;
  job?: string;
  /** The run of the job this event belongs to: a run's VM events are grouped into its `job.finished`. */
  runId?: string;
  vm?: string;
  vmTags?: readonly string[];
  host?: string;
  repository?: RepositoryFigures;
  /** For `vm.succeeded`: what the backup moved. */
  backup?: BackupFigures;
  /** For `task.finished`. */
  task?: { kind: string; status: string; id?: string };
  /**
   * The task this event comes from (a task's end, a VM's backup, a verify or test restore):
   * an event of one task is recorded and sent once, whichever server hears it first or
   * however often the sweep of ended tasks finds it (src/server/event-sweep.ts).
   */
  taskId?: string;
}

/** An event as recorded: every optional field resolved. */
export interface RecordedEvent extends NotificationEvent {
  id: number;
  at: number;
  vmTags: readonly string[];
}

const MAX_TEXT = 64 * 1024;

/**
 * Checks an event handed to `emit` (a programming error in the emitter is still reported as a
 * CofferError, so a bad event never takes the server down silently).
 * @throws CofferError E_USAGE naming the bad field.
 */
export function checkEvent(event: NotificationEvent): void {
  const bad = (what: string): never => {
    throw new CofferError('E_USAGE', `notification event ${JSON.stringify(event.type)}: ${what}`);
  };
  if (!Object.hasOwn(EVENT_TYPES, event.type)) bad('unknown event type');
  if (!SEVERITIES.includes(event.severity)) bad(`unknown severity ${JSON.stringify(event.severity)}`);
  if (typeof event.summary !== 'string' || event.summary.length === 0) bad('the summary is empty');
  if (event.summary.length > MAX_TEXT || (event.error?.length ?? 0) > MAX_TEXT) bad('the summary or error is longer than 64 KiB');
  if (event.at !== undefined && !Number.isFinite(event.at)) bad('`at` is not a time');
  for (const [name, value] of [...Object.entries(event.backup ?? {}), ...Object.entries(figuresOf(event.repository))]) {
    if (value !== undefined && (!Number.isFinite(value) || value < 0)) bad(`${name} is not a non-negative number`);
  }
  if (event.type === 'vm.succeeded' && event.backup !== undefined && (event.vm === undefined || event.job === undefined)) {
    bad('backup figures need the vm and the job');
  }
  if (event.type === 'task.finished' && event.task === undefined) bad('a task.finished event needs its task (kind, status)');
}

function figuresOf(repository: RepositoryFigures | undefined): Record<string, number | undefined> {
  if (repository === undefined) return {};
  return { storedBytes: repository.storedBytes, freeBytes: repository.freeBytes, totalBytes: repository.totalBytes };
}
