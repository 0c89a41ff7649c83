/**
 * What a task and a run are, as the HTTP layer and the events see them.
 */
import type { VmBackupResult, VmBackupSource } from '../../backup/index.js';
import type { TaskReport } from '../worker/index.js';

/**
 * What a task does. Backups come in runs (one task per VM) under the layered limits; the other
 * kinds (worker/kinds/) are started one by one through the API and start at once.
 */
export type TaskKind = 'backup' | 'restore' | 'verify' | 'prune' | 'forget' | 'sync' | 'test-restore' | 'instant-recovery';

/** Every kind, for schemas. */
export const TASK_KINDS: readonly TaskKind[] = ['backup', 'restore', 'verify', 'prune', 'forget', 'sync', 'test-restore', 'instant-recovery'];

export type { TaskReport };

/**
 * A task's state. `queued` → `running` → one of the ends. `interrupted`: it was running when
 * the server stopped without finishing it (kill -9, power loss), found so at the next start.
 */
export type TaskStatus = 'queued' | 'running' | 'succeeded' | 'warning' | 'failed' | 'cancelled' | 'interrupted';

/** The states a task never leaves. */
export const FINAL_STATUSES: readonly TaskStatus[] = ['succeeded', 'warning', 'failed', 'cancelled', 'interrupted'];

/** A run's state; `skipped` is a firing that did not run (overlap, or missed while down without repeat-missed). */
export type RunStatus = 'running' | 'succeeded' | 'warning' | 'failed' | 'cancelled' | 'skipped';

/** Why a run exists. */
export type RunReason = 'schedule' | 'missed' | 'on-demand' | 'vm' | 'failed-again' | `after:${string}`;

/** A VM as the inventory gives it: where it runs, where it is backed up to, where its disks come from. */
export interface VmTarget {
  readonly vm: string;
  readonly host: string;
  /** The storage its disks live on, for per-datastore limits. */
  readonly datastore?: string;
  readonly repository: { readonly name: string; readonly url: string; readonly passphraseFile?: string };
  readonly source: VmBackupSource;
  readonly tags?: readonly string[];
  /** Check this fraction (0..1] of what the source's change tracking calls unchanged (`coffer backup --verify-unchanged`). */
  readonly verifyUnchanged?: number;
}

/** A task as callers see it. Times are ISO 8601. */
export interface TaskInfo {
  id: string;
  runId: string | null;
  kind: TaskKind;
  owner: string;
  status: TaskStatus;
  vm: string | null;
  host: string | null;
  datastore: string | null;
  repository: string | null;
  job: string | null;
  attempt: number;
  retryOf: string | null;
  /** A retry does not start before then. */
  notBefore: string | null;
  progress: number;
  created: string;
  started: string | null;
  ended: string | null;
  error: { code: string; message: string } | null;
  /** For a backup, its figures once it ended well. */
  result: VmBackupResult | null;
  /**
   * For the other kinds: what it did (a summary, figures, the kind's own detail such as the
   * NBD URIs of an instant recovery, set while it runs), once known.
   */
  report: TaskReport | null;
}

/** A run as callers see it. */
export interface RunInfo {
  id: string;
  job: string | null;
  reason: RunReason;
  status: RunStatus;
  owner: string;
  firing: string | null;
  windowEnd: string | null;
  /** Backups still running when the window closes are cancelled (else they finish). */
  cancelAtWindowEnd: boolean;
  vms: string[];
  detail: string | null;
  created: string;
  ended: string | null;
}

/** One line of a task's log. */
export interface TaskLogLine {
  seq: number;
  at: string;
  level: 'info' | 'warning' | 'error';
  line: string;
}

/** A page of a list: `next` is the cursor for the following page (undefined at the end). */
export interface Page<T> {
  items: T[];
  /** The `after` (offset) of the next page, when there is one. */
  next?: number;
  /** The keyset cursor of the next page (state/keyset-cursor.ts), when there is one. */
  cursor?: string;
}

/** What {@link TaskEvents} emit: `task` when a task changes (state or progress), `run` when a run does. */
export interface TaskEventMap {
  task: [TaskInfo];
  run: [RunInfo];
  log: [{ taskId: string } & TaskLogLine];
}
