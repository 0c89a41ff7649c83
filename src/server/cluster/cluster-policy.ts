/**
 * The policy the servers publish for the workers, in the `cluster_policy` table (migration
 * 30): the concurrency limits (with the jobs' own limits folded in), the bandwidth rules, the
 * retry policy and the source latency guard (null: none), each one JSON row. A server writes them at start and at every change of
 * its configuration; each hand-out reads the limits just before its transaction, which counts
 * and takes under the dispatch lock (so a limit holds across every worker at the instant it
 * hands out a task), and each worker reads the rest at its heartbeat.
 * JSON has no Infinity: an unlimited layer is stored as the string "Infinity".
 */
import type { Kysely } from 'kysely';
import type { ConcurrencyLimits } from '../../jobs/index.js';
import type { StateSchema } from '../state/index.js';
import type { BandwidthRule, LatencyGuard, RetryPolicy } from '../tasks/index.js';

/** What every worker applies. */
export interface ClusterPolicy {
  limits: ConcurrencyLimits;
  bandwidth: BandwidthRule[];
  retry: RetryPolicy;
  /** Each hand-out holds a datastore by it over every worker's reports, and each worker throttles its own backups' slow reads by it (docs/tasks.md, docs/scale.md); null: no guard. */
  latencyGuard: LatencyGuard | null;
}

const KEYS = ['limits', 'bandwidth', 'retry', 'latencyGuard'] as const;

/** Writes the parts given (a server's start, a configuration change). */
export async function publishPolicy(db: Kysely<StateSchema>, policy: Partial<ClusterPolicy>, now: number = Date.now()): Promise<void> {
  for (const key of KEYS) {
    const value = policy[key];
    if (value === undefined) continue;
    const text = JSON.stringify(value, (_k, v: unknown) => (v === Infinity ? 'Infinity' : v));
    await db.insertInto('cluster_policy').values({ key, value: text, updated_at: now })
      .onConflict((c) => c.column('key').doUpdateSet({ value: text, updated_at: now })).execute();
  }
}

/** The policy as last published; what was never published is empty (per host 1 by the planner's default). */
export async function readPolicy(db: Kysely<StateSchema>): Promise<ClusterPolicy> {
  return parsePolicy(await db.selectFrom('cluster_policy').select(['key', 'value']).execute());
}

/** The policy from the rows of `cluster_policy` (a hand-out reads them within a larger query). */
export function parsePolicy(rows: readonly { key: string; value: string }[]): ClusterPolicy {
  const parsed = new Map(rows.map((r) => [r.key, JSON.parse(r.value, (_k, v: unknown) => (v === 'Infinity' ? Infinity : v)) as unknown]));
  return {
    limits: (parsed.get('limits') ?? {}) as ConcurrencyLimits,
    bandwidth: (parsed.get('bandwidth') ?? []) as BandwidthRule[],
    retry: (parsed.get('retry') ?? {}) as RetryPolicy,
    latencyGuard: (parsed.get('latencyGuard') ?? null) as LatencyGuard | null,
  };
}
