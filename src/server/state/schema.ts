/**
 * The tables of the service's state database, as Kysely sees them. One interface per table;
 * the migrations in `migrations/` create exactly these columns. Portable types only (text,
 * integer, real), so the same migrations run on SQLite (the embedded default) and, later, on
 * PostgreSQL (#10): times are integers of milliseconds since the epoch (UTC), booleans are 0/1
 * integers, structured values are JSON text.
 *
 * What lives here is the service's own state (who may do what, what ran, what is running,
 * what was changed by whom). Nothing a restore needs lives only here: the repository alone
 * restores everything (DESIGN.md).
 */


/** Which migrations have run: one row per applied migration. */
export interface MigrationTable {
  id: number;
  name: string;
  applied_at: number;
}

/** Small facts about this state database (its id, when it was created). */
export interface MetaTable {
  key: string;
  value: string;
}

/** Every table of the state database. */
export interface StateSchema {
  coffer_migrations: MigrationTable;
  meta: MetaTable;
  runs: RunTable;
  tasks: TaskTable;
  task_log: TaskLogTable;
  schedule_state: ScheduleStateTable;
  vm_state: VmStateTable;
}

/** One run of a job (or an on-demand run): which VMs, why, and how it ended (server/tasks). */
export interface RunTable {
  id: string;
  job: string | null;
  /** `schedule`, `missed` (catch-up at start), `on-demand`, `vm`, `failed-again`, `after:JOB`. */
  reason: string;
  /** `running`, `succeeded`, `warning`, `failed`, `cancelled`, or `skipped` (an overlapping or dropped firing). */
  status: string;
  owner: string;
  firing: number | null;
  window_end: number | null;
  /** 1: backups still running when the window closes are cancelled. */
  cancel_at_window_end: number;
  /** JSON: the VM names. */
  vms: string;
  /** Why it was skipped, or a summary. */
  detail: string | null;
  created_at: number;
  ended_at: number | null;
}

/** One task: a VM backup (later restore, verify, prune …) run in a worker process. */
export interface TaskTable {
  id: string;
  run_id: string | null;
  kind: string;
  owner: string;
  /** `queued`, `running`, `succeeded`, `warning`, `failed`, `cancelled`, `interrupted`. */
  status: string;
  vm: string | null;
  host: string | null;
  datastore: string | null;
  repository: string | null;
  job: string | null;
  /** JSON: what the worker runs (for a backup, a VmBackupSpec). */
  spec: string;
  /** 1 for the first try, 2 for the first retry … */
  attempt: number;
  retry_of: string | null;
  /** A retry waits until then (ms since the epoch). */
  not_before: number | null;
  /** 0..1. */
  progress: number;
  created_at: number;
  started_at: number | null;
  ended_at: number | null;
  error_code: string | null;
  error_message: string | null;
  /** JSON: the figures (for a backup, a VmBackupResult). */
  result: string | null;
}

/** A task's log, one row per line. */
export interface TaskLogTable {
  task_id: string;
  seq: number;
  at: number;
  /** `info`, `warning` or `error`. */
  level: string;
  line: string;
}

/** The scheduler's memory of one job (jobs/schedule-state.ts). */
export interface ScheduleStateTable {
  job: string;
  /** The schedule text it was computed for: a different text is an edit (no catch-up). */
  schedule: string;
  settled_until: number;
  last_fired: number | null;
  last_run_id: string | null;
}

/** What the dispatcher orders a VM's backups by. */
export interface VmStateTable {
  vm: string;
  last_success_at: number | null;
  /** 1: its job's last window closed before it started; it goes first next time. */
  missed_window: number;
  last_duration_ms: number | null;
}
