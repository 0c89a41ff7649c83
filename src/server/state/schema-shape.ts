/**
 * The tables and columns a state database actually has, read from the engine's own catalog
 * (SQLite: `sqlite_master` and `pragma_table_info`; PostgreSQL: `information_schema` of the
 * current schema), in one engine-neutral form, so that a database can be compared with one on
 * the other engine: the portability test does it for every migration, and the SQLite →
 * PostgreSQL copy checks it before moving a row.
 *
 * Types are reduced to their family: every integer type (SQLite `integer`/`bigint`, PostgreSQL
 * `int4`/`int8`) is `integer`, `text`/`varchar` are `text`, floating types are `real`, `blob`
 * and `bytea` are `blob`; anything else keeps its own lower-case name (and is not portable).
 * A primary-key column counts as not null on both (SQLite allows NULL in a non-integer
 * primary key only by an old quirk; Coffer never stores one).
 */
import { sql, type Kysely } from 'kysely';
import { dialectOf } from './dialect.js';

export interface ColumnShape {
  name: string;
  type: string;
  notNull: boolean;
  primaryKey: boolean;
}

/** Table name → its columns in declaration order; tables sorted by name. */
export type SchemaShape = Record<string, ColumnShape[]>;

/** The types the state database uses, reduced as {@link readSchemaShape} reduces them. */
export const PORTABLE_TYPES: readonly string[] = ['integer', 'real', 'text', 'blob'];

/** Reads the shape of every table (SQLite's internal `sqlite_*` tables left out). */
export async function readSchemaShape(db: Kysely<unknown>): Promise<SchemaShape> {
  const shape: SchemaShape = {};
  if (dialectOf(db) === 'postgres') {
    const rows = await sql<{ table_name: string; column_name: string; udt_name: string; is_nullable: string; pk: boolean }>`
      SELECT c.table_name, c.column_name, c.udt_name, c.is_nullable,
        EXISTS (SELECT 1 FROM information_schema.table_constraints tc
          JOIN information_schema.key_column_usage k
            ON k.constraint_name = tc.constraint_name AND k.table_schema = tc.table_schema AND k.table_name = tc.table_name
          WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = c.table_schema AND tc.table_name = c.table_name
            AND k.column_name = c.column_name) AS pk
      FROM information_schema.columns c
      JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
      WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
      ORDER BY c.table_name, c.ordinal_position`.execute(db);
    for (const r of rows.rows) {
      (shape[r.table_name] ??= []).push({ name: r.column_name, type: typeFamily(r.udt_name), notNull: r.is_nullable === 'NO' || r.pk, primaryKey: r.pk });
    }
    return shape;
  }
  const tables = await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name`.execute(db);
  for (const { name } of tables.rows) {
    const columns = await sql<{ name: string; type: string; notnull: number; pk: number }>`SELECT name, type, "notnull", pk FROM pragma_table_info(${name}) ORDER BY cid`.execute(db);
    shape[name] = columns.rows.map((c) => ({ name: c.name, type: typeFamily(c.type), notNull: c.notnull === 1 || c.pk > 0, primaryKey: c.pk > 0 }));
  }
  return shape;
}

function typeFamily(declared: string): string {
  const t = declared.toLowerCase().trim();
  if (/^(integer|int|int2|int4|int8|smallint|bigint)$/.test(t)) return 'integer';
  if (/^(text|varchar|character varying)$/.test(t)) return 'text';
  if (/^(real|float4|float8|double precision|double)$/.test(t)) return 'real';
  if (t === 'blob' || t === 'bytea') return 'blob';
  return t;
}
