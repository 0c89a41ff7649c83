/**
 * The service's state database: schema, migrations, and opening. SQLite embedded (one file in
 * the data directory) or PostgreSQL shared by several servers and workers (#10), behind one
 * Kysely query layer; docs/state-database.md says how to write migrations and queries that run
 * on both, and how to move from SQLite to PostgreSQL.
 */
export type { Migration } from './migration.js';
export { databaseClockMs, dialectOf, forbidUpdateAndDelete, idColumn, idReferenceType, type MigrationContext, type StateDialect } from './dialect.js';
export { MIGRATIONS } from './migrations/index.js';
export { runMigrations, MIGRATION_LOCK_KEY, type MigrationReport, type RunMigrationsOptions } from './run-migrations.js';
export { readMigrationStatus, type MigrationStatus } from './migration-status.js';
export { readSchemaShape, type SchemaShape, type ColumnShape } from './schema-shape.js';
export { copySqliteToPostgres, type CopyReport, type CopyOptions } from './copy-sqlite-to-postgres.js';
export { POOL_DEFAULTS, type PoolSettings } from './postgres-pool.js';
export type { StateSchema } from './schema.js';
export { parseStateTarget, type StateTarget } from './state-target.js';
export {
  connectStateDatabase,
  openStateDatabase,
  type ConnectStateOptions,
  type OpenStateOptions,
  type StateConnection,
  type StateDatabase,
  type StateLocation,
} from './state-database.js';
export { encodeCursor, decodeCursor, type KeysetPosition } from './keyset-cursor.js';
