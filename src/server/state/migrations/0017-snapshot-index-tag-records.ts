/**
 * Migration 17 (the snapshot index's area, 10–19): the tag records the snapshot index has seen (server/inventory/snapshot-index.ts),
 * so that tags changed after the fact (`coffer tag`: a tag record under `tags/`,
 * docs/repository-format.md §20) reach the index's rows, filter and console. A refresh lists
 * `tags/` beside `snapshots/`, reads only the records it has no row for (a record is never
 * rewritten: its key names its content), and removes the rows of records gone; a snapshot
 * whose records came or went is indexed again.
 *
 * `snapshot_index_tag_records`: one row per record key; `time` and `tags` (a JSON array) null
 * when the record did not open (not read again).
 */
import type { Migration } from '../migration.js';

export const snapshotIndexTagRecords: Migration = {
  id: 17,
  name: 'snapshot-index-tag-records',
  async up(db) {
    await db.schema
      .createTable('snapshot_index_tag_records')
      .addColumn('repository', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('snapshot', 'text', (c) => c.notNull())
      .addColumn('time', 'text')
      .addColumn('tags', 'text')
      .addPrimaryKeyConstraint('snapshot_index_tag_records_pk', ['repository', 'key'])
      .execute();
    await db.schema.createIndex('snapshot_index_tag_records_by_snapshot').on('snapshot_index_tag_records').columns(['repository', 'snapshot']).execute();
  },
};
