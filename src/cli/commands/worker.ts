import { hostname } from 'node:os';
import { CofferError } from '../../errors/index.js';
import { openStateDatabase, runClusterWorker, SERVICE_VERSION, WorkerRegistry } from '../../server/index.js';
import type { CommandContext } from '../context.js';

export interface WorkerCommandOptions {
  database?: string;
  hosts?: string;
  tasks?: string;
  name?: string;
  lease?: string;
  stopTimeout?: string;
  traceQueue?: boolean;
}

/**
 * `coffer worker --database postgres://… [--hosts H1,H2] [--tasks N] [--name NAME]`: takes
 * tasks from the queue in the shared PostgreSQL database and runs them here, until SIGTERM or
 * Ctrl-C (running tasks finish or are cancelled within --stop-timeout) or until drained
 * (`coffer worker drain NAME`). docs/scale.md.
 */
export async function workerCommand(options: WorkerCommandOptions, context: CommandContext): Promise<number> {
  const database = databaseOf(options, context);
  const capacity = options.tasks === undefined ? 1 : Number(options.tasks);
  if (!(Number.isInteger(capacity) && capacity >= 1 && capacity <= 256)) throw new CofferError('E_USAGE', `--tasks ${options.tasks}: a whole number from 1 to 256`);
  const hosts = options.hosts === undefined ? undefined : options.hosts.split(',').map((h) => h.trim()).filter((h) => h !== '');
  if (hosts !== undefined && hosts.length === 0) throw new CofferError('E_USAGE', '--hosts: give at least one host name (H1,H2), or leave it out for every host');
  const leaseMs = seconds('--lease', options.lease);
  const stopTimeoutMs = seconds('--stop-timeout', options.stopTimeout);
  await runClusterWorker({
    database, name: options.name ?? `${hostname()}-${process.pid}`, capacity, version: SERVICE_VERSION, signal: context.signal,
    ...(hosts === undefined ? {} : { hosts }), ...(leaseMs === undefined ? {} : { leaseMs }), ...(stopTimeoutMs === undefined ? {} : { stopTimeoutMs }),
    ...(options.traceQueue === true ? { traceQueue: true } : {}),
    print: (line) => context.stdout.write(`${line}\n`),
  });
  return 0;
}

/** `coffer worker drain NAME --database postgres://…`: the worker takes nothing new and exits when idle. */
export async function workerDrainCommand(name: string, options: WorkerCommandOptions, context: CommandContext): Promise<number> {
  const state = await openStateDatabase({ url: databaseOf(options, context) });
  try {
    await new WorkerRegistry(state.db).drain(name);
    context.stdout.write(`worker ${name}: asked to drain (it takes nothing new and exits when its tasks end)\n`);
    return 0;
  } finally {
    await state.close();
  }
}

function databaseOf(options: WorkerCommandOptions, context: CommandContext): string {
  const database = options.database ?? (context.env.COFFER_DATABASE || undefined);
  if (database === undefined) throw new CofferError('E_USAGE', 'give the shared state database: coffer worker --database postgres://USER@HOST/DB (or $COFFER_DATABASE)');
  if (!/^postgres(ql)?:\/\//.test(database)) throw new CofferError('E_USAGE', `--database ${database}: workers share a PostgreSQL database (postgres://…), not an SQLite file`);
  return database;
}

function seconds(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text) * 1000;
  if (!(Number.isFinite(value) && value > 0)) throw new CofferError('E_USAGE', `${option} ${text}: a number of seconds`);
  return value;
}
