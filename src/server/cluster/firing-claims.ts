/**
 * A scheduled firing starts once however many servers run the scheduler: before a server acts
 * on a firing (starts its run, or records it skipped), it claims the row (job, firing time) in
 * `firing_claims` (migration 30); the primary key lets exactly one insert succeed, and the
 * others pass the firing by. A row per firing is small; {@link forgetClaims} drops old ones.
 */
import type { Kysely } from 'kysely';
import type { StateSchema } from '../state/index.js';

/** Whether this server won the firing. */
export async function claimFiring(db: Kysely<StateSchema>, job: string, firing: Date, by: string, now: number = Date.now()): Promise<boolean> {
  const result = await db.insertInto('firing_claims').values({ job, firing: firing.getTime(), claimed_by: by, claimed_at: now })
    .onConflict((c) => c.columns(['job', 'firing']).doNothing()).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
}

/** Drops the claims of firings before `cutoff` (ms). */
export async function forgetClaims(db: Kysely<StateSchema>, cutoff: number): Promise<void> {
  await db.deleteFrom('firing_claims').where('firing', '<', cutoff).execute();
}
