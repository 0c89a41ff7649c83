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
  users: UsersTable;
  sessions: SessionsTable;
  api_tokens: ApiTokensTable;
  grants: GrantsTable;
  audit_log: AuditLogTable;
  config_versions: ConfigVersionsTable;
  approvals: ApprovalsTable;
}
