/**
 * Migration 18: what a file snapshot backed up, in the snapshot index
 * (server/inventory/snapshot-index.ts), so that the retention preview groups a VM's snapshots
 * as `forget` does: its disk snapshots apart, its file snapshots by their paths or stream
 * (repo/retention/apply-retention.ts). `snapshot_index.files`: a JSON object `{paths,
 * stdinName?}` for a file snapshot, null for a disk snapshot.
 *
 * The file snapshots indexed before this step have no paths: their rows (and their tag rows)
 * are removed, so the next refresh reads their manifests again as it reads new ones.
 */
import { sql } from 'kysely';
import type { Migration } from '../migration.js';

export const snapshotIndexFilePaths: Migration = {
  id: 18,
  name: 'snapshot-index-file-paths',
  async up(db) {
    await db.schema.alterTable('snapshot_index').addColumn('files', 'text').execute();
    await sql`DELETE FROM snapshot_index_tags WHERE EXISTS (SELECT 1 FROM snapshot_index s WHERE s.repository = snapshot_index_tags.repository AND s.id = snapshot_index_tags.id AND s.kind = 'files')`.execute(db);
    await sql`DELETE FROM snapshot_index WHERE kind = 'files'`.execute(db);
  },
};
