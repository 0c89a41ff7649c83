/**
 * A schema migration: a numbered, named step that changes the state database from one version
 * to the next. Migrations use Kysely's schema builder (not raw SQL) so that one list serves
 * SQLite and PostgreSQL alike; the few spots where the engines differ (generated ids,
 * append-only triggers) go through the helpers in dialect.ts, which read `context.dialect`.
 * A migration never edits data it did not create, and once released it is never changed in
 * what it creates on a database where it already ran: a fix is a new migration.
 */
import type { Kysely } from 'kysely';
import type { MigrationContext } from './dialect.js';

export interface Migration {
  /** Strictly increasing, never reused. */
  id: number;
  /** A short name that says what the step does, e.g. `users-and-tokens`. */
  name: string;
  /** Applies the step inside the transaction the runner opened. */
  up(db: Kysely<unknown>, context: MigrationContext): Promise<void>;
}
