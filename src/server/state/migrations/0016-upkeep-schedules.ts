/**
 * Migration 16: the job upkeep's schedules (verify, test-restore, prune: server/scheduler/
 * job-upkeep.ts) remembered across restarts: per job and chore, the schedule's text and the
 * instant up to which its firings are settled, so a firing missed while the server was down
 * runs once at the next start (not once per missed firing).
 */
import type { Migration } from '../migration.js';

export const upkeepSchedules: Migration = {
  id: 16,
  name: 'upkeep-schedules',
  async up(db) {
    await db.schema
      .createTable('upkeep_schedule_state')
      .addColumn('chore', 'text', (c) => c.primaryKey())
      .addColumn('schedule', 'text', (c) => c.notNull())
      .addColumn('settled_until', 'bigint', (c) => c.notNull())
      .addColumn('last_fired', 'bigint')
      .execute();
  },
};
