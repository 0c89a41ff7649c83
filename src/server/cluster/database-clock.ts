/**
 * The database's clock, in ms since the epoch. Leases and heartbeats are compared with it,
 * never with a worker's own clock, so a worker whose clock drifts neither steals a live lease
 * nor keeps a dead one. (SQLite is one machine's file: its clock is this process's.)
 */
import { sql, type Kysely } from 'kysely';
import { dialectOf, type StateSchema } from '../state/index.js';

export async function databaseNow(db: Kysely<StateSchema>): Promise<number> {
  if (dialectOf(db as unknown as Kysely<unknown>) === 'sqlite') return Date.now();
  const { rows } = await sql<{ now: number }>`SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now`.execute(db);
  return Number(rows[0]?.now);
}
