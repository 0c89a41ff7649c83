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
import type { Generated } from 'kysely';

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

/**
 * What the notifier was told (migration 20): one row per event, kept `history-days` for the
 * daily summary and for grouping a run's VM results into its `job.finished` message.
 */
export interface NotifyEventTable {
  id: Generated<number>;
  /** When it happened, ms since the epoch. */
  at: number;
  type: string;
  severity: string;
  job: string | null;
  run_id: string | null;
  vm: string | null;
  host: string | null;
  /** JSON array of the VM's tags. */
  vm_tags: string;
  summary: string;
  error: string | null;
  /** JSON: the event's structured extras (backup stats, repository figures, task). */
  data: string;
  /** The task the event comes from (migration 23); null for other events and for older rows. */
  task_id: string | null;
  /** Unique name of a task's or a run's event, so it is recorded once (migration 32); null for other events and older rows. */
  event_key: string | null;
}

/**
 * Messages waiting to be delivered, and delivered (migration 21): one row per message and
 * target, rendered when queued, so a restart delivers what was promised.
 */
export interface NotifyOutboxTable {
  id: Generated<number>;
  created_at: number;
  rule: string;
  target: string;
  /** `event` or `summary`. */
  kind: string;
  /** Rows with the same key inside a rule's dedupe window are not queued twice. */
  dedupe_key: string;
  /** JSON: the rendered message (subject, text, and the webhook's JSON body). */
  message: string;
  /** `pending`, `sent` or `failed` (gave up after the target's attempts). */
  status: string;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  done_at: number | null;
}

/** Each delivery attempt (migration 21): the delivery log. */
export interface NotifyDeliveryTable {
  id: Generated<number>;
  outbox_id: number;
  target: string;
  at: number;
  attempt: number;
  /** `sent` or `failed`. */
  outcome: string;
  error: string | null;
  duration_ms: number;
}

/** The notifier's small facts (migration 22), such as the last daily summary sent. */
export interface NotifyStateTable {
  key: string;
  value: string;
}

/** The last successful backup of each VM in each job (migration 22), for `/metrics`. */
export interface MetricsVmBackupTable {
  vm: string;
  job: string;
  at: number;
  logical_bytes: number;
  read_bytes: number;
  new_bytes: number;
  stored_bytes: number;
  duration_ms: number;
}

/** The latest known figures of each repository (migration 22), for `/metrics`. */
export interface MetricsRepositoryTable {
  repository: string;
  at: number;
  stored_bytes: number | null;
  free_bytes: number | null;
  total_bytes: number | null;
}

/** Finished tasks counted by kind and status (migration 22), for `/metrics`. */
export interface MetricsTaskCountTable {
  kind: string;
  status: string;
  count: number;
}

/** A person who logs in (migration 2). `password_hash` holds scrypt's parameters too (auth/password.ts). */
export interface UsersTable {
  id: string;
  name: string;
  password_hash: string;
  /** 1 until the user has replaced a password an administrator (or the first start) chose. */
  must_change_password: number;
  created_at: number;
  password_changed_at: number;
}

/** A console session; the cookie's value is never stored, only its SHA-256 (migration 2). */
export interface SessionsTable {
  id_hash: string;
  user_id: string;
  csrf_token: string;
  address: string;
  created_at: number;
  expires_at: number;
}

/** An API token; the secret is shown once and stored as its SHA-256 (migration 2). */
export interface ApiTokensTable {
  id: string;
  user_id: string;
  name: string;
  secret_hash: string;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
}

/** A role on a path, held by a user or by a token (exactly one of the two ids is set; migration 2). */
export interface GrantsTable {
  id: string;
  user_id: string | null;
  token_id: string | null;
  role: string;
  path: string;
  created_at: number;
}

/** One audited event; append-only, the database refuses UPDATE and DELETE (migration 3). */
export interface AuditLogTable {
  /** Sorts by time: see audit/audit-id.ts. */
  id: string;
  at: number;
  /** `user:NAME`, `token:ID (NAME)`, `anonymous`, or `system`. */
  actor: string;
  address: string;
  action: string;
  target: string;
  /** `success`, `failure` or `denied`. */
  outcome: string;
  /** JSON object, never holding a secret. */
  details: string;
}

/** One version of the configuration file (migration 4). */
export interface ConfigVersionsTable {
  version: number;
  text: string;
  sha256: string;
  author: string;
  created_at: number;
  comment: string;
}

/** A destructive operation waiting for a second administrator (migration 5). */
export interface ApprovalsTable {
  id: string;
  operation: string;
  /** JSON. */
  arguments: string;
  summary: string;
  requested_by: string;
  requested_at: number;
  /** `pending`, `approved`, `rejected`, or `failed` (approved but the operation failed). */
  status: string;
  decided_by: string | null;
  decided_at: number | null;
  result: string | null;
}

/** Every table of the state database. */
export interface StateSchema {
  coffer_migrations: MigrationTable;
  meta: MetaTable;
  notify_events: NotifyEventTable;
  notify_outbox: NotifyOutboxTable;
  notify_deliveries: NotifyDeliveryTable;
  notify_state: NotifyStateTable;
  metrics_vm_backups: MetricsVmBackupTable;
  metrics_repositories: MetricsRepositoryTable;
  metrics_task_counts: MetricsTaskCountTable;
  runs: RunTable;
  tasks: TaskTable;
  workers: WorkerTable;
  cluster_policy: ClusterPolicyTable;
  firing_claims: FiringClaimTable;
  leader_leases: LeaderLeaseTable;
  task_log: TaskLogTable;
  schedule_state: ScheduleStateTable;
  vm_state: VmStateTable;
  users: UsersTable;
  sessions: SessionsTable;
  api_tokens: ApiTokensTable;
  grants: GrantsTable;
  audit_log: AuditLogTable;
  config_versions: ConfigVersionsTable;
  approvals: ApprovalsTable;
  snapshot_index: SnapshotIndexTable;
  snapshot_index_tags: SnapshotIndexTagTable;
  snapshot_index_repos: SnapshotIndexRepoTable;
  snapshot_index_tag_records: SnapshotIndexTagRecordTable;
  upkeep_schedule_state: UpkeepScheduleStateTable;
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
  /** JSON: its VMs' tasks counted by state (the last attempt of each), written when it ends (migration 15; null before). */
  outcomes: Generated<string | null>;
  /** How many VMs `vms` names (migration 15; null before). */
  vm_count: Generated<number | null>;
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
  /** The worker that took it (migration 30; null in single-process mode). */
  worker: Generated<string | null>;
  /** Its lease on it expires then (ms since the epoch, the database's clock); a heartbeat renews it. */
  lease_until: Generated<number | null>;
  /** 1: someone asked to cancel it while it ran on a worker (the worker's heartbeat sees it). */
  cancel_requested: Generated<number>;
  /** A running backup: the mean source read latency its worker last reported, ms; null: none yet (migration 33; the latency guard across workers). */
  source_latency_ms: Generated<number | null>;
  /** When `source_latency_ms` was written (ms since the epoch, the database's clock). */
  source_latency_at: Generated<number | null>;
  /** 1: the running backup has read every byte of its source (it no longer holds its datastore under the latency guard). */
  source_read_done: Generated<number>;
}

/** A `coffer worker` process (migration 30; src/server/cluster/). */
export interface WorkerTable {
  name: string;
  /** JSON array of the hosts it reaches; null: every host. */
  hosts: string | null;
  /** How many tasks it runs at once. */
  capacity: number;
  version: string;
  pid: number | null;
  /** The machine's hostname. */
  machine: string | null;
  started_at: number;
  heartbeat_at: number;
  /** When it stopped cleanly; null while it runs (or if it was killed). */
  stopped_at: number | null;
  /** 1: take nothing new, exit when idle. */
  draining: number;
  tasks_running: number;
  tasks_done: number;
  /** Source bytes its finished backups read. */
  bytes_read: number;
}

/** What the servers publish for the workers: `limits`, `bandwidth`, `retry` as JSON (migration 30). */
export interface ClusterPolicyTable {
  key: string;
  value: string;
  updated_at: number;
}

/** One scheduled firing, claimed by the server that handled it (migration 30). */
export interface FiringClaimTable {
  job: string;
  firing: number;
  claimed_by: string;
  claimed_at: number;
}

/** The server that holds a role among several (migration 31; cluster/leader-lease.ts). */
export interface LeaderLeaseTable {
  role: string;
  holder: string;
  /** Its hold ends then unless renewed (ms since the epoch, the database's clock). */
  until: number;
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

/**
 * One snapshot of a repository (migration 15): a derived summary of its manifest, rebuilt from
 * the repository whenever it is missing (server/inventory/snapshot-index.ts).
 */
export interface SnapshotIndexTable {
  repository: string;
  id: string;
  vm: string;
  /** The snapshot's time, ms since the epoch (the keyset order with `id`). */
  time_ms: number;
  /** The manifest's time exactly as written (ISO 8601). */
  time: string;
  hostname: string;
  /** JSON array of the tags. */
  tags: string;
  /** `disk` or `files`. */
  kind: string;
  /** How many disks (0 for a file snapshot). */
  disks: number;
  bytes_logical: number;
  bytes_new: number;
  bytes_stored: number;
  parent: string | null;
  /** The consistency level (`application`, `crash`…), when the manifest records one. */
  consistency: string | null;
  /** A file snapshot's paths or stream, JSON `{paths, stdinName?}` (migration 18); null for disks. */
  files: string | null;
}

/** One tag of one indexed snapshot (migration 15): the tag filter's index. */
export interface SnapshotIndexTagTable {
  repository: string;
  tag: string;
  time_ms: number;
  id: string;
}

/** A tag record (`coffer tag`) the index has read (migration 17): its time and tags. */
export interface SnapshotIndexTagRecordTable {
  repository: string;
  /** `tags/<snapshot>.<record id>`. */
  key: string;
  snapshot: string;
  /** The record's time (ISO 8601) and tags (JSON array); both null when it did not open. */
  time: string | null;
  tags: string | null;
}

/** Per repository, where its indexed rows were read from and when (migration 15). */
export interface SnapshotIndexRepoTable {
  repository: string;
  location: string;
  refreshed_at: number;
  snapshots: number;
}

/** A job upkeep's chore schedule (`JOB/verify`…), settled up to an instant (migration 16). */
export interface UpkeepScheduleStateTable {
  chore: string;
  /** The schedule's text: another text (an edit) counts from the edit, never catches up. */
  schedule: string;
  settled_until: number;
  last_fired: number | null;
}
