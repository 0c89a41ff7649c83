/**
 * Where the job upkeep's chore schedules (`JOB/verify`, `JOB/test-restore`, `JOB/prune`) are
 * settled up to, kept in the state database (migration 16), so a firing missed while the
 * server was down is seen at the next start (and run once, however many were missed).
 */
import type { Kysely } from 'kysely';
import type { StateSchema } from '../state/index.js';

/** A chore's remembered state: the schedule's text and the instant its firings are settled up to. */
export interface StoredChoreState {
  schedule: string;
  settledUntil: Date;
}

export class UpkeepScheduleStore {
  constructor(private readonly db: Kysely<StateSchema>) {}

  async load(): Promise<Map<string, StoredChoreState>> {
    const rows = await this.db.selectFrom('upkeep_schedule_state').selectAll().execute();
    return new Map(rows.map((r) => [r.chore, { schedule: r.schedule, settledUntil: new Date(Number(r.settled_until)) }]));
  }

  async save(chore: string, state: StoredChoreState, fired: Date | undefined): Promise<void> {
    const row = { schedule: state.schedule, settled_until: state.settledUntil.getTime(), ...(fired === undefined ? {} : { last_fired: fired.getTime() }) };
    await this.db.insertInto('upkeep_schedule_state').values({ chore, last_fired: null, ...row })
      .onConflict((oc) => oc.column('chore').doUpdateSet(row)).execute();
  }
}
