/**
 * Migration 4: every version of the configuration file the service has run with, in full,
 * with who wrote it, when and why. Version numbers are the service's own (1, 2, …).
 */
import type { Migration } from '../migration.js';

export const configVersions: Migration = {
  id: 4,
  name: 'config-versions',
  async up(db) {
    await db.schema
      .createTable('config_versions')
      .addColumn('version', 'integer', (c) => c.primaryKey())
      .addColumn('text', 'text', (c) => c.notNull())
      .addColumn('sha256', 'text', (c) => c.notNull())
      .addColumn('author', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('comment', 'text', (c) => c.notNull())
      .execute();
  },
};
