/**
 * The snapshot index: per configured repository, one row per snapshot in the state database
 * (tables of migration 15), so the API lists, filters and pages 100,000 snapshots from
 * indexes instead of reading every manifest (bench/README.md, "The service").
 *
 * It is derived, never the truth. A refresh lists only the manifest names of the repository
 * (`snapshots/`), reads the manifests it has no row for, and removes the rows whose manifest is
 * gone (a forget, by the server or by the CLI behind its back). Tags changed after the fact
 * (`coffer tag`: tag records under `tags/`, whose newest one sets a snapshot's tags) are found
 * the same way: a refresh lists `tags/` too (usually nearly empty), reads each record it never
 * read (once: a record is never rewritten; migration 17 keeps what it learned), and indexes
 * again a snapshot whose records came or went, with the effective tags (repo's
 * `withTagRecords`); a tag record the server writes itself is indexed at once
({@link SnapshotIndex.reindexSnapshot}). Notes are never read. A repository whose rows were
 * read from another location under the same name, or whose rows were lost (an emptied table),
 * is rebuilt the same way. Damaged manifests are left out (and not read again until they
 * change name, i.e. never: a damaged manifest stays damaged; verify reports it).
 *
 * Refreshes of one repository collapse: while one runs, any number of requests share one
 * follow-up refresh that starts when it ends (a request made during a refresh may come from a
 * backup that wrote its manifest after the running refresh listed the names).
 */
import type { Kysely } from 'kysely';
import { forEachLimited } from '../../concurrency/index.js';
import { CofferError } from '../../errors/index.js';
import {
  idFromKey,
  loadSnapshot,
  loadStoredSnapshot,
  readTagRecord,
  SNAPSHOTS_PREFIX,
  TAG_RECORD_KEY,
  TAGS_PREFIX,
  withTagRecords,
  type Repository,
  type Snapshot,
  type TagRecord,
} from '../../repo/index.js';
import { decodeCursor, encodeCursor, type StateSchema } from '../state/index.js';

/** A snapshot as the lists show it (the manifest's summary). */
export interface IndexedSnapshot {
  id: string;
  vm: string;
  time: string;
  hostname: string;
  tags: string[];
  kind: 'disk' | 'files';
  parent: string | null;
  disks: number;
  bytesLogical: number;
  bytesNew: number;
  bytesStored: number;
  consistency?: string;
  /** A file snapshot's paths or stream (what retention groups it by); absent for disks. */
  files?: { paths: string[]; stdinName?: string };
}

/** Filters and keyset position of {@link SnapshotIndex.page}. */
export interface SnapshotQuery {
  vm?: string;
  tag?: string;
  hostname?: string;
  /** ms since the epoch, inclusive. */
  since?: number;
  /** ms since the epoch, exclusive. */
  until?: number;
  /** The `next` of the previous page. */
  cursor?: string;
  /** Or (kept for old callers): rows to skip. */
  offset?: number;
  limit: number;
}

/** What a refresh did. */
export interface RefreshReport {
  listed: number;
  added: number;
  removed: number;
  damaged: number;
  /** Snapshots indexed again because their tag records changed (`coffer tag`). */
  retagged: number;
  /** true: the repository's rows were thrown away first (another location, or lost rows). */
  rebuilt: boolean;
}

/** How many manifests a refresh reads at once. */
const READ_CONCURRENCY = 16;
/** Rows written per transaction while (re)building. */
const BATCH = 500;
/** Totals kept per filter (a count over 100,000 rows costs milliseconds; the rows change only on a refresh). */
const TOTALS_KEPT = 256;

export class SnapshotIndex {
  private readonly running = new Map<string, Promise<RefreshReport>>();
  private readonly queued = new Map<string, Promise<RefreshReport>>();
  /** Manifest names that did not open, per repository (not read again on every refresh). */
  private readonly damaged = new Map<string, Set<string>>();
  /** Per repository, a number that changes whenever this process changes its rows. */
  private readonly generations = new Map<string, number>();
  /** `repository + filters` → the total at a generation. */
  private readonly totals = new Map<string, { generation: number; total: number }>();
  /** Per repository, the refresh or one-snapshot update under way: they never interleave. */
  private readonly busy = new Map<string, Promise<unknown>>();

  constructor(
    private readonly db: Kysely<StateSchema>,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Brings the rows of `name` up to date with the repository. Concurrent calls collapse: at
   * most one refresh runs and one more waits per repository.
   */
  refresh(name: string, location: string, open: () => Promise<Repository>): Promise<RefreshReport> {
    const waiting = this.queued.get(name);
    if (waiting !== undefined) return waiting;
    const current = this.running.get(name);
    if (current === undefined) return this.begin(name, location, open);
    const next = current.catch(() => undefined).then(() => {
      this.queued.delete(name);
      return this.begin(name, location, open);
    });
    this.queued.set(name, next);
    return next;
  }

  /**
   * Adds the snapshots `ids` (just written by a task of this server) without listing the
   * repository: one manifest read each. A missing one is skipped (the next refresh decides).
   */
  async add(name: string, repo: Repository, ids: readonly string[]): Promise<void> {
    const loaded: Snapshot[] = [];
    for (const id of ids) {
      try {
        loaded.push(await loadSnapshot(repo, id));
      } catch (error) {
        if (!(error instanceof CofferError && (error.code === 'E_CORRUPT_OBJECT' || error.code === 'E_MISSING_OBJECT'))) throw error;
      }
    }
    await this.insert(name, loaded);
    if (loaded.length > 0) {
      await this.db.updateTable('snapshot_index_repos').set((eb) => ({ snapshots: eb('snapshots', '+', loaded.length) })).where('repository', '=', name).execute();
    }
  }

  /** Whether a repository was indexed (at least once, from `location`). */
  async indexed(name: string, location: string): Promise<boolean> {
    const row = await this.db.selectFrom('snapshot_index_repos').select('location').where('repository', '=', name).executeTakeFirst();
    return row?.location === location;
  }

  /** A page of snapshots, newest first, and the total that match the filters. */
  async page(name: string, q: SnapshotQuery): Promise<{ items: IndexedSnapshot[]; total: number; next: string | null }> {
    const limit = Math.max(1, q.limit);
    let rows = this.db.selectFrom('snapshot_index').selectAll('snapshot_index').where('snapshot_index.repository', '=', name);
    let count = this.db.selectFrom('snapshot_index').select((eb) => eb.fn.countAll<number>().as('n')).where('snapshot_index.repository', '=', name);
    if (q.tag !== undefined) {
      const tag = q.tag;
      // The tag's own index gives the order; the join finds the rows.
      rows = rows.innerJoin('snapshot_index_tags as t', (j) => j.onRef('t.repository', '=', 'snapshot_index.repository').onRef('t.id', '=', 'snapshot_index.id')).where('t.tag', '=', tag);
      count = count.innerJoin('snapshot_index_tags as t', (j) => j.onRef('t.repository', '=', 'snapshot_index.repository').onRef('t.id', '=', 'snapshot_index.id')).where('t.tag', '=', tag);
    }
    if (q.vm !== undefined) {
      rows = rows.where('snapshot_index.vm', '=', q.vm);
      count = count.where('snapshot_index.vm', '=', q.vm);
    }
    if (q.hostname !== undefined) {
      rows = rows.where('snapshot_index.hostname', '=', q.hostname);
      count = count.where('snapshot_index.hostname', '=', q.hostname);
    }
    if (q.since !== undefined) {
      rows = rows.where('snapshot_index.time_ms', '>=', q.since);
      count = count.where('snapshot_index.time_ms', '>=', q.since);
    }
    if (q.until !== undefined) {
      rows = rows.where('snapshot_index.time_ms', '<', q.until);
      count = count.where('snapshot_index.time_ms', '<', q.until);
    }
    if (q.cursor !== undefined) {
      const at = decodeCursor(q.cursor);
      rows = rows.where((eb) => eb(eb.refTuple('snapshot_index.time_ms', 'snapshot_index.id'), '<', eb.tuple(at.time, at.id)));
    } else if (q.offset !== undefined && q.offset > 0) {
      rows = rows.offset(q.offset);
    }
    const found = await rows.orderBy('snapshot_index.time_ms', 'desc').orderBy('snapshot_index.id', 'desc').limit(limit + 1).execute();
    const total = await this.total(name, q, async () => Number((await count.executeTakeFirstOrThrow()).n));
    const items = found.slice(0, limit).map(fromRow);
    const last = found[limit - 1];
    return { items, total, next: found.length > limit && last !== undefined ? encodeCursor({ time: Number(last.time_ms), id: last.id }) : null };
  }

  /**
   * The number of rows a filter matches, counted again only after this process changed the
   * repository's rows or refreshed it (another server sharing a PostgreSQL database may have
   * changed them: the totals are at most one refresh old, the rows never are).
   */
  private async total(name: string, q: SnapshotQuery, count: () => Promise<number>): Promise<number> {
    const key = JSON.stringify([name, q.vm, q.tag, q.hostname, q.since, q.until]);
    const generation = this.generations.get(name) ?? 0;
    const known = this.totals.get(key);
    if (known !== undefined && known.generation === generation) return known.total;
    const total = await count();
    if (this.totals.size >= TOTALS_KEPT) this.totals.delete(this.totals.keys().next().value as string);
    this.totals.set(key, { generation, total });
    return total;
  }

  private changed(name: string): void {
    this.generations.set(name, (this.generations.get(name) ?? 0) + 1);
  }

  /** Every snapshot of a repository (optionally of one VM), oldest first. */
  async all(name: string, filter: { vm?: string } = {}): Promise<IndexedSnapshot[]> {
    let query = this.db.selectFrom('snapshot_index').selectAll().where('repository', '=', name);
    if (filter.vm !== undefined) query = query.where('vm', '=', filter.vm);
    return (await query.orderBy('time_ms').orderBy('id').execute()).map(fromRow);
  }

  /** The ids that start with `prefix` (hex), at most `limit`. */
  async idsStartingWith(name: string, prefix: string, limit = 2): Promise<string[]> {
    if (!/^[0-9a-f]{1,64}$/.test(prefix)) return [];
    const rows = await this.db.selectFrom('snapshot_index').select('id').where('repository', '=', name)
      .where('id', '>=', prefix).where('id', '<', `${prefix}g`).orderBy('id').limit(limit).execute();
    return rows.map((r) => r.id);
  }

  /** The newest snapshot of a VM, or undefined. */
  async latest(name: string, vm: string): Promise<IndexedSnapshot | undefined> {
    const row = await this.db.selectFrom('snapshot_index').selectAll().where('repository', '=', name).where('vm', '=', vm)
      .orderBy('time_ms', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
    return row === undefined ? undefined : fromRow(row);
  }

  /** VM → ms of its newest snapshot, over the given repositories. */
  async lastBackups(names: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (names.length === 0) return out;
    const rows = await this.db.selectFrom('snapshot_index').select(['vm', (eb) => eb.fn.max('time_ms').as('newest')]).where('repository', 'in', [...names]).groupBy('vm').execute();
    for (const r of rows) out.set(r.vm, Number(r.newest));
    return out;
  }

  /** Drops the rows of a repository (the next refresh rebuilds them). */
  async forget(name: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('snapshot_index').where('repository', '=', name).execute();
      await trx.deleteFrom('snapshot_index_tags').where('repository', '=', name).execute();
      await trx.deleteFrom('snapshot_index_repos').where('repository', '=', name).execute();
      await trx.deleteFrom('snapshot_index_tag_records').where('repository', '=', name).execute();
    });
    this.damaged.delete(name);
    this.changed(name);
  }

  /**
   * Indexes one snapshot again from its repository, now: its tag records (one listing of its
   * own keys under `tags/`, each record read) and its manifest, with the effective tags. For
   * what the server itself just changed (a tag record it wrote), so lists show it at once
   * rather than at the next refresh; that refresh then finds nothing new. Runs after any
   * refresh of the repository under way and before the next (never between a refresh's
   * listing and its writes, which would undo it). A snapshot the index has no row for is left
   * to the next refresh, as is one whose manifest does not read.
   */
  reindexSnapshot(name: string, repo: Repository, id: string): Promise<void> {
    return this.exclusive(name, async () => {
      const row = await this.db.selectFrom('snapshot_index').select('id').where('repository', '=', name).where('id', '=', id).executeTakeFirst();
      if (row === undefined) return;
      const rows: StateSchema['snapshot_index_tag_records'][] = [];
      const keys: string[] = [];
      for await (const entry of repo.backend.list(`${TAGS_PREFIX}${id}.`)) if (TAG_RECORD_KEY.test(entry.key)) keys.push(entry.key);
      for (const key of keys) {
        const record = { repository: name, key, snapshot: id, time: null as string | null, tags: null as string | null };
        try {
          const read = await readTagRecord(repo, key);
          record.time = read.time;
          record.tags = JSON.stringify(read.tags);
        } catch (error) {
          if (error instanceof CofferError && error.code === 'E_MISSING_OBJECT') continue; // superseded since the listing
          if (!(error instanceof CofferError && error.code === 'E_CORRUPT_OBJECT')) throw error;
        }
        rows.push(record);
      }
      let snapshot: Snapshot;
      try {
        snapshot = await loadStoredSnapshot(repo, id);
      } catch (error) {
        if (error instanceof CofferError && (error.code === 'E_CORRUPT_OBJECT' || error.code === 'E_MISSING_OBJECT')) return;
        throw error;
      }
      await this.db.transaction().execute(async (trx) => {
        await trx.deleteFrom('snapshot_index_tag_records').where('repository', '=', name).where('snapshot', '=', id).execute();
        for (let i = 0; i < rows.length; i += 150) await trx.insertInto('snapshot_index_tag_records').values(rows.slice(i, i + 150)).execute();
      });
      await this.insert(name, [withTagRecords(snapshot, (await this.tagRecords(name, [id])).get(id) ?? [])]);
    });
  }

  /** Runs `work` after the repository's refresh or update under way, and before the next. */
  private exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
    const mine = (this.busy.get(name) ?? Promise.resolve()).then(work);
    const settled = mine.then(() => undefined, () => undefined);
    this.busy.set(name, settled);
    void settled.then(() => {
      if (this.busy.get(name) === settled) this.busy.delete(name);
    });
    return mine;
  }

  private begin(name: string, location: string, open: () => Promise<Repository>): Promise<RefreshReport> {
    const work = this.exclusive(name, () => this.run(name, location, open)).finally(() => this.running.delete(name));
    this.running.set(name, work);
    return work;
  }

  private async run(name: string, location: string, open: () => Promise<Repository>): Promise<RefreshReport> {
    const repo = await open();
    const listed = new Set<string>();
    for await (const entry of repo.backend.list(SNAPSHOTS_PREFIX)) {
      const id = idFromKey(entry.key);
      if (id !== null) listed.add(id);
    }
    const state = await this.db.selectFrom('snapshot_index_repos').selectAll().where('repository', '=', name).executeTakeFirst();
    const have = new Set((await this.db.selectFrom('snapshot_index').select('id').where('repository', '=', name).execute()).map((r) => r.id));
    // Rows read elsewhere, or rows lost (a table emptied by hand) while the state says otherwise: start again.
    const rebuilt = state !== undefined && (state.location !== location || (have.size === 0 && state.snapshots > 0));
    if (rebuilt) {
      await this.forget(name);
      have.clear();
    }
    const damaged = this.damaged.get(name) ?? new Set<string>();
    this.damaged.set(name, damaged);
    for (const id of damaged) if (!listed.has(id)) damaged.delete(id);
    const gone = [...have].filter((id) => !listed.has(id));
    const fresh = [...listed].filter((id) => !have.has(id) && !damaged.has(id));
    // The tag records first: a fresh snapshot is indexed with them applied.
    const retagged = [...(await this.readTagRecords(name, repo, listed))].filter((id) => have.has(id) && listed.has(id) && !damaged.has(id));
    const toRead = [...fresh, ...retagged];
    let added = 0;
    for (let i = 0; i < toRead.length; i += BATCH) {
      const loaded: Snapshot[] = [];
      const ids = toRead.slice(i, i + BATCH);
      await forEachLimited(ids, READ_CONCURRENCY, async (id) => {
        try {
          loaded.push(await loadStoredSnapshot(repo, id));
        } catch (error) {
          // Gone since the listing (a concurrent forget), or damaged: not indexed.
          if (error instanceof CofferError && (error.code === 'E_CORRUPT_OBJECT' || error.code === 'E_MISSING_OBJECT')) {
            if (error.code === 'E_CORRUPT_OBJECT') damaged.add(id);
            return;
          }
          throw error;
        }
      });
      const records = await this.tagRecords(name, ids);
      await this.insert(name, loaded.map((snapshot) => withTagRecords(snapshot, records.get(snapshot.id) ?? [])));
      added += loaded.filter((snapshot) => !have.has(snapshot.id)).length;
    }
    for (let i = 0; i < gone.length; i += BATCH) {
      const ids = gone.slice(i, i + BATCH);
      await this.db.transaction().execute(async (trx) => {
        await trx.deleteFrom('snapshot_index').where('repository', '=', name).where('id', 'in', ids).execute();
        await trx.deleteFrom('snapshot_index_tags').where('repository', '=', name).where('id', 'in', ids).execute();
      });
      this.changed(name);
    }
    const snapshots = have.size - gone.length + added;
    const row = { location, refreshed_at: this.now(), snapshots };
    await this.db.insertInto('snapshot_index_repos').values({ repository: name, ...row })
      .onConflict((oc) => oc.column('repository').doUpdateSet(row)).execute();
    this.changed(name);
    return { listed: listed.size, added, removed: gone.length, damaged: damaged.size, retagged: retagged.length, rebuilt };
  }

  /**
   * Brings the repository's tag record rows up to date with its `tags/` (the records of
   * snapshots in `listed`): reads each record it has no row for, drops the rows of records
   * gone. Returns the snapshots whose records came or went.
   */
  private async readTagRecords(name: string, repo: Repository, listed: ReadonlySet<string>): Promise<Set<string>> {
    const present = new Map<string, string>(); // key → snapshot
    for await (const entry of repo.backend.list(TAGS_PREFIX)) {
      const snapshot = TAG_RECORD_KEY.exec(entry.key)?.[1];
      if (snapshot !== undefined && listed.has(snapshot)) present.set(entry.key, snapshot);
    }
    const known = new Map((await this.db.selectFrom('snapshot_index_tag_records').select(['key', 'snapshot']).where('repository', '=', name).execute()).map((r) => [r.key, r]));
    const retagged = new Set<string>();
    const gone = [...known.values()].filter((row) => !present.has(row.key));
    for (const row of gone) retagged.add(row.snapshot);
    const fresh = [...present].filter(([key]) => !known.has(key));
    for (let i = 0; i < fresh.length; i += BATCH) {
      const rows: StateSchema['snapshot_index_tag_records'][] = [];
      await forEachLimited(fresh.slice(i, i + BATCH), READ_CONCURRENCY, async ([key, snapshot]) => {
        const row = { repository: name, key, snapshot, time: null as string | null, tags: null as string | null };
        try {
          const record = await readTagRecord(repo, key);
          row.time = record.time;
          row.tags = JSON.stringify(record.tags);
          retagged.add(snapshot);
        } catch (error) {
          if (error instanceof CofferError && error.code === 'E_MISSING_OBJECT') return; // superseded since the listing
          if (!(error instanceof CofferError && error.code === 'E_CORRUPT_OBJECT')) throw error;
          // Damaged: kept with no tags, not read again (and, like a damaged manifest, left to verify).
        }
        rows.push(row);
      });
      // 5 columns a row: 150 rows stay under SQLite's 999 bound variables.
      for (let j = 0; j < rows.length; j += 150) {
        const batch = rows.slice(j, j + 150);
        await this.db.transaction().execute(async (trx) => {
          await trx.deleteFrom('snapshot_index_tag_records').where('repository', '=', name).where('key', 'in', batch.map((r) => r.key)).execute();
          await trx.insertInto('snapshot_index_tag_records').values(batch).execute();
        });
      }
    }
    for (let i = 0; i < gone.length; i += BATCH) {
      await this.db.deleteFrom('snapshot_index_tag_records').where('repository', '=', name).where('key', 'in', gone.slice(i, i + BATCH).map((r) => r.key)).execute();
    }
    return retagged;
  }

  /** The tag records the index has read (those that opened), of the snapshots `ids`. */
  private async tagRecords(name: string, ids: readonly string[]): Promise<Map<string, TagRecord[]>> {
    const records = new Map<string, TagRecord[]>();
    if (ids.length === 0) return records;
    const rows = await this.db.selectFrom('snapshot_index_tag_records').select(['key', 'snapshot', 'time', 'tags'])
      .where('repository', '=', name).where('snapshot', 'in', [...ids]).where('tags', 'is not', null).execute();
    for (const row of rows) {
      const id = TAG_RECORD_KEY.exec(row.key)?.[2];
      if (id === undefined || row.time === null || row.tags === null) continue;
      records.set(row.snapshot, [...(records.get(row.snapshot) ?? []), { id, time: row.time, tags: JSON.parse(row.tags) as string[] }]);
    }
    return records;
  }

  private async insert(name: string, snapshots: readonly Snapshot[]): Promise<void> {
    if (snapshots.length === 0) return;
    await this.db.transaction().execute(async (trx) => {
      // A row may exist already: two servers sharing one database refresh the same repository.
      const ids = snapshots.map((s) => s.id);
      await trx.deleteFrom('snapshot_index').where('repository', '=', name).where('id', 'in', ids).execute();
      await trx.deleteFrom('snapshot_index_tags').where('repository', '=', name).where('id', 'in', ids).execute();
      // 14 columns a row: 60 rows stay under SQLite's 999 bound variables.
      for (let i = 0; i < snapshots.length; i += 60) {
        await trx.insertInto('snapshot_index').values(snapshots.slice(i, i + 60).map((s) => toRow(name, s))).execute();
      }
      const tags = snapshots.flatMap((s) => [...new Set(s.tags)].map((tag) => ({ repository: name, tag, time_ms: Date.parse(s.time), id: s.id })));
      for (let i = 0; i < tags.length; i += 200) await trx.insertInto('snapshot_index_tags').values(tags.slice(i, i + 200)).execute();
    });
    this.changed(name);
  }
}

function toRow(repository: string, s: Snapshot): StateSchema['snapshot_index'] {
  return {
    repository,
    id: s.id,
    vm: s.vm,
    time_ms: Date.parse(s.time),
    time: s.time,
    hostname: s.hostname,
    tags: JSON.stringify(s.tags),
    kind: s.files === undefined ? 'disk' : 'files',
    disks: s.disks.length,
    bytes_logical: s.disks.reduce((n, d) => n + d.size, 0),
    bytes_new: s.stats.bytesNew,
    bytes_stored: s.stats.bytesStored,
    parent: s.parent,
    consistency: s.consistency?.level ?? null,
    files: s.files === undefined ? null : JSON.stringify({ paths: s.files.paths, ...(s.files.stdinName === undefined ? {} : { stdinName: s.files.stdinName }) }),
  };
}

function fromRow(row: StateSchema['snapshot_index']): IndexedSnapshot {
  return {
    id: row.id,
    vm: row.vm,
    time: row.time,
    hostname: row.hostname,
    tags: JSON.parse(row.tags) as string[],
    kind: row.kind === 'files' ? 'files' : 'disk',
    parent: row.parent,
    disks: Number(row.disks),
    bytesLogical: Number(row.bytes_logical),
    bytesNew: Number(row.bytes_new),
    bytesStored: Number(row.bytes_stored),
    ...(row.consistency === null ? {} : { consistency: row.consistency }),
    ...(row.files === null || row.files === undefined ? {} : { files: JSON.parse(row.files) as { paths: string[]; stdinName?: string } }),
  };
}
