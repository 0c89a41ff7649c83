/**
 * Migration 34: the snapshot notes the snapshot index has seen (server/inventory/snapshot-index.ts),
 * so that tags changed after the fact (`coffer tag`: a note of kind `tags`, docs/repository-format.md
 * §11) reach the index's rows, filter and console. A refresh lists `notes/` beside `snapshots/`,
 * reads only the notes it has no row for (a note is never rewritten: its key names its content),
 * and removes the rows of notes gone; a snapshot whose `tags` notes came or went is indexed again.
 *
 * `snapshot_index_notes`: one row per note key; `kind` null when the note did not open (not
 * read again); `time` and `tags` (a JSON array) for well-formed `tags` notes only.
 */
import type { Migration } from '../migration.js';

export const snapshotIndexNotes: Migration = {
  id: 34,
  name: 'snapshot-index-notes',
  async up(db) {
    await db.schema
      .createTable('snapshot_index_notes')
      .addColumn('repository', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('snapshot', 'text', (c) => c.notNull())
      .addColumn('kind', 'text')
      .addColumn('time', 'text')
      .addColumn('tags', 'text')
      .addPrimaryKeyConstraint('snapshot_index_notes_pk', ['repository', 'key'])
      .execute();
    await db.schema.createIndex('snapshot_index_notes_by_snapshot').on('snapshot_index_notes').columns(['repository', 'snapshot']).execute();
  },
};
