/** Migration 1: the `meta` table (the database's id and creation time). */
import type { Migration } from '../migration.js';

export const foundation: Migration = {
  id: 1,
  name: 'foundation',
  async up(db) {
    await db.schema
      .createTable('meta')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .execute();
  },
};
