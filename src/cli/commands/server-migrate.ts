/**
 * `coffer server migrate`: the state database's schema, outside a running server.
 *
 * - `--database URL` (or `$COFFER_DATABASE`): applies the pending migrations and prints what
 *   it did (several servers and workers may run it at once: each step runs once);
 * - `--status`: prints the applied and pending steps, changing nothing;
 * - `--from-sqlite FILE --database postgres://…`: migrates the PostgreSQL database and copies
 *   every row of the SQLite state database FILE into it (docs/state-database.md, "Moving from
 *   SQLite to PostgreSQL").
 *
 * URL is `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` or an SQLite file path; messages
 * name the database without its password.
 */
import { CofferError } from '../../errors/index.js';
import { connectStateDatabase, copySqliteToPostgres, MIGRATIONS, openStateDatabase, readMigrationStatus } from '../../server/index.js';
import type { CommandContext } from '../context.js';

/** Options of `coffer server migrate`. */
export interface ServerMigrateOptions {
  database?: string;
  status?: boolean;
  fromSqlite?: string;
  json?: boolean;
}

/** Runs `coffer server migrate`; returns the exit code. */
export async function serverMigrateCommand(options: ServerMigrateOptions, context: CommandContext): Promise<number> {
  const database = options.database ?? context.env.COFFER_DATABASE;
  if (database === undefined || database === '') {
    throw new CofferError('E_USAGE', 'no state database given: use --database postgres://USER@HOST/DATABASE (or an SQLite file), or set COFFER_DATABASE');
  }
  const out = (text: string) => context.stdout.write(`${text}\n`);
  if (options.fromSqlite !== undefined) {
    if (options.status) throw new CofferError('E_USAGE', '--status and --from-sqlite do not go together');
    const report = await copySqliteToPostgres(options.fromSqlite, { url: database });
    if (options.json) out(JSON.stringify({ from: options.fromSqlite, to: report.target, schemaVersion: report.schemaVersion, tables: report.tables }));
    else {
      out(`copied ${options.fromSqlite} into ${report.target} (schema step ${report.schemaVersion}):`);
      for (const t of report.tables) out(`  ${t.table}: ${t.rows} rows`);
    }
    return 0;
  }
  if (options.status) {
    const connection = await connectStateDatabase({ url: database, mustExist: true });
    try {
      const status = await readMigrationStatus(connection.db, MIGRATIONS);
      if (options.json) out(JSON.stringify({ database: connection.label, ...status }));
      else {
        out(`state database ${connection.label}`);
        for (const a of status.applied) out(`  applied  ${a.id}-${a.name}  ${new Date(a.appliedAt).toISOString()}`);
        for (const p of status.pending) out(`  pending  ${p.id}-${p.name}`);
        for (const id of status.unknown) out(`  unknown  ${id} (applied by a newer Coffer: this one refuses the database)`);
        if (status.pending.length === 0 && status.unknown.length === 0) out('  up to date');
      }
      return 0;
    } finally {
      await connection.close();
    }
  }
  const state = await openStateDatabase({ url: database });
  try {
    const { from, to, applied } = state.migrations;
    if (options.json) out(JSON.stringify({ database: state.label, id: state.id, from, to, applied }));
    else if (applied.length === 0) out(`state database ${state.label} is up to date (schema step ${to})`);
    else out(`state database ${state.label}: schema step ${from} → ${to}, applied ${applied.join(', ')}`);
    return 0;
  } finally {
    await state.close();
  }
}
