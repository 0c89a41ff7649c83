/**
 * Migration 31: one leader among several servers (#10; src/server/cluster/leader-lease.ts).
 * A row per role (`upkeep`: the notifier's deliveries, the jobs' upkeep, the health checks)
 * names the server that holds it and until when (ms, the database's clock); a server takes
 * the row when it is free or expired, and renews it while it lives.
 */
import type { Migration } from '../migration.js';

export const leaderLeases: Migration = {
  id: 31,
  name: 'cluster-leader-leases',
  async up(db) {
    await db.schema
      .createTable('leader_leases')
      .addColumn('role', 'text', (c) => c.primaryKey())
      .addColumn('holder', 'text', (c) => c.notNull())
      .addColumn('until', 'bigint', (c) => c.notNull())
      .execute();
  },
};
