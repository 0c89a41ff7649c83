/**
 * Migration 15: the snapshot index (server/inventory/snapshot-index.ts), a derived copy of the
 * repositories' snapshot manifests' summaries, so the API pages 100,000 snapshots from indexes
 * instead of reading every manifest. The repository stays the truth: the rows are refreshed
 * from its manifest names (new ones read, vanished ones removed), and emptied tables are
 * rebuilt from it.
 *
 * - `snapshot_index`: one row per snapshot; keyset order (`time_ms`, `id`) per repository, and
 *   per repository and VM;
 * - `snapshot_index_tags`: one row per snapshot and tag (the tag filter's index);
 * - `snapshot_index_repos`: per repository, the location its rows were read from (another
 *   location under the same name: the rows are rebuilt) and when it was last refreshed;
 * - and for the runs and tasks lists: tasks by VM and by job in list order (the console's
 *   filters), and by `retry_of` (a run's counts by outcome count a retried task as its retry);
 *   `runs.outcomes`, those counts written when the run ends (the list reads 50 rows, not the
 *   30,000 tasks of 50 nightly runs of 600 VMs), and `runs.vm_count` (the list does not parse
 *   the names).
 */
import type { Migration } from '../migration.js';

export const snapshotIndex: Migration = {
  id: 15,
  name: 'snapshot-index-and-list-filters',
  async up(db) {
    await db.schema
      .createTable('snapshot_index')
      .addColumn('repository', 'text', (c) => c.notNull())
      .addColumn('id', 'text', (c) => c.notNull())
      .addColumn('vm', 'text', (c) => c.notNull())
      .addColumn('time_ms', 'bigint', (c) => c.notNull())
      .addColumn('time', 'text', (c) => c.notNull())
      .addColumn('hostname', 'text', (c) => c.notNull())
      .addColumn('tags', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('disks', 'integer', (c) => c.notNull())
      .addColumn('bytes_logical', 'bigint', (c) => c.notNull())
      .addColumn('bytes_new', 'bigint', (c) => c.notNull())
      .addColumn('bytes_stored', 'bigint', (c) => c.notNull())
      .addColumn('parent', 'text')
      .addColumn('consistency', 'text')
      .addPrimaryKeyConstraint('snapshot_index_pk', ['repository', 'id'])
      .execute();
    await db.schema.createIndex('snapshot_index_by_time').on('snapshot_index').columns(['repository', 'time_ms', 'id']).execute();
    await db.schema.createIndex('snapshot_index_by_vm').on('snapshot_index').columns(['repository', 'vm', 'time_ms', 'id']).execute();
    await db.schema
      .createTable('snapshot_index_tags')
      .addColumn('repository', 'text', (c) => c.notNull())
      .addColumn('tag', 'text', (c) => c.notNull())
      .addColumn('time_ms', 'bigint', (c) => c.notNull())
      .addColumn('id', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('snapshot_index_tags_pk', ['repository', 'tag', 'time_ms', 'id'])
      .execute();
    await db.schema
      .createTable('snapshot_index_repos')
      .addColumn('repository', 'text', (c) => c.primaryKey())
      .addColumn('location', 'text', (c) => c.notNull())
      .addColumn('refreshed_at', 'bigint', (c) => c.notNull())
      .addColumn('snapshots', 'integer', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('tasks_by_vm').on('tasks').columns(['vm', 'created_at', 'id']).execute();
    await db.schema.createIndex('tasks_by_job').on('tasks').columns(['job', 'created_at', 'id']).execute();
    await db.schema.createIndex('tasks_by_retry_of').on('tasks').column('retry_of').execute();
    await db.schema.alterTable('runs').addColumn('outcomes', 'text').execute();
    await db.schema.alterTable('runs').addColumn('vm_count', 'integer').execute();
  },
};
