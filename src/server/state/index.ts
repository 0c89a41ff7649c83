/**
 * The service's state database: schema, migrations, and opening (SQLite embedded; Kysely on
 * top so that PostgreSQL can share every query later).
 */
export type { Migration } from './migration.js';
export { MIGRATIONS } from './migrations/index.js';
export { runMigrations, type MigrationReport } from './run-migrations.js';
export type { StateSchema } from './schema.js';
export { openStateDatabase, type OpenStateOptions, type StateDatabase } from './state-database.js';
