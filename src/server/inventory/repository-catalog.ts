/**
 * The configured repositories, opened through the repository library (the same code the CLI
 * runs; the server never shells out) with their passphrase files, and their snapshots as the
 * snapshot index in the state database has them (snapshot-index.ts): lists and lookups read
 * the index, a full manifest is read from the repository only for the one snapshot asked for.
 * Nothing proportional to the number of snapshots stays in memory.
 *
 * The index is refreshed: before the first list of a repository it was never built for
 * (waited for), after the server's own tasks that write or remove snapshots end
 * ({@link invalidate}), at once for the one snapshot whose tags the server changed
 * ({@link changeTags}), and every {@link REFRESH_INTERVAL_MS} or more (a listing of the
 * manifest names; only new manifests are read). Repositories stay open while the server runs.
 */
import { readFile } from 'node:fs/promises';
import type { Kysely } from 'kysely';
import { CofferError } from '../../errors/index.js';
import { listProtections, loadSnapshot, openRepositoryAt, repositoryStats, setSnapshotTags, type Repository, type RepositoryStats, type Snapshot, type TagChange, type TagOutcome } from '../../repo/index.js';
import type { RepositoryConfig } from '../config/index.js';
import type { StateSchema } from '../state/index.js';
import { SnapshotIndex, type IndexedSnapshot, type RefreshReport, type SnapshotQuery } from './snapshot-index.js';

/** How long repository statistics stay fresh (they read every index page: not per request). */
export const CATALOG_TTL_MS = 15_000;
/** How often every repository's index is refreshed (a listing of its manifest names), at the least. */
export const REFRESH_INTERVAL_MS = 60_000;
/** A periodic refresh waits at least this many times as long as the last one took. */
export const REFRESH_DUTY_FACTOR = 20;
/** How long a list waits for the index updates a task's end asked for. */
export const SETTLE_WAIT_MS = 2_000;

interface Cached<T> {
  at: number;
  value: Promise<T>;
}

export class RepositoryCatalog {
  private readonly open = new Map<string, { url: string; repo: Promise<Repository> }>();
  private readonly statistics = new Map<string, Cached<RepositoryStats>>();
  readonly index: SnapshotIndex;
  private timer: NodeJS.Timeout | undefined;
  private refreshing = false;
  /** Per repository, the index updates that the server's own tasks asked for, still under way. */
  private readonly settling = new Map<string, Promise<void>>();

  constructor(
    private readonly repositories: () => readonly RepositoryConfig[],
    db: Kysely<StateSchema>,
    private readonly now: () => number = Date.now,
  ) {
    this.index = new SnapshotIndex(db, now);
  }

  /** The configuration of a repository, or undefined. */
  config(name: string): RepositoryConfig | undefined {
    return this.repositories().find((r) => r.name === name);
  }

  /**
   * Refreshes every repository's index now, then again `intervalMs` after each refresh ends,
   * or {@link REFRESH_DUTY_FACTOR} times as long as that refresh took when that is longer (a
   * listing of 100,000 manifest names on a busy disk takes seconds: the periodic refresh stays
   * a small share of the server's time), until {@link close}. Errors go to `onError`.
   */
  startRefreshing(onError: (error: unknown, repository: string) => void, intervalMs = REFRESH_INTERVAL_MS): void {
    if (this.refreshing) return;
    this.refreshing = true;
    const cycle = () => {
      if (!this.refreshing) return;
      const started = this.now();
      void Promise.allSettled(this.repositories().map((r) => this.refresh(r.name).catch((error: unknown) => onError(error, r.name)))).then(() => {
        if (!this.refreshing) return;
        this.timer = setTimeout(cycle, Math.max(intervalMs, REFRESH_DUTY_FACTOR * (this.now() - started)));
        this.timer.unref();
      });
    };
    cycle();
  }

  /** Brings a repository's index up to date now (concurrent calls collapse). */
  refresh(name: string): Promise<RefreshReport> {
    const config = this.config(name);
    if (config === undefined) return Promise.reject(new CofferError('E_REPO_NOT_FOUND', `no repository named ${name} in the configuration`));
    return this.index.refresh(name, config.url, () => this.repository(name));
  }

  /** A page of a repository's snapshots, newest first (the index is built first if it never was). */
  async snapshots(name: string, query: SnapshotQuery): Promise<{ items: IndexedSnapshot[]; total: number; next: string | null }> {
    await this.ready(name);
    return this.index.page(name, query);
  }

  /** Every snapshot of a repository (or of one VM in it), oldest first, as summaries. */
  async snapshotSummaries(name: string, filter: { vm?: string } = {}): Promise<IndexedSnapshot[]> {
    await this.ready(name);
    return this.index.all(name, filter);
  }

  /**
   * Every snapshot of a repository, oldest first, as summaries (id, VM, time, tags…; the full
   * manifest of one: {@link findSnapshot}). The name callers used when the catalog held every
   * manifest in memory.
   */
  listSnapshots(name: string): Promise<IndexedSnapshot[]> {
    return this.snapshotSummaries(name);
  }

  /**
   * The full manifest of the snapshot `reference` (a full id or a unique prefix), read from the
   * repository; `undefined` when there is none (or its manifest is gone), `'ambiguous'` when
   * the prefix names several.
   */
  async findSnapshot(name: string, reference: string): Promise<Snapshot | 'ambiguous' | undefined> {
    await this.ready(name);
    let ids = await this.index.idsStartingWith(name, reference);
    // Written since the last refresh (a backup the CLI made): look again once.
    if (ids.length === 0) {
      await this.refresh(name);
      ids = await this.index.idsStartingWith(name, reference);
    }
    const [id, other] = ids;
    if (other !== undefined) return 'ambiguous';
    if (id === undefined) return undefined;
    try {
      return await loadSnapshot(await this.repository(name), id);
    } catch (error) {
      if (!(error instanceof CofferError && error.code === 'E_MISSING_OBJECT')) throw error;
      // Forgotten behind the server's back: the index learns it now.
      void this.refresh(name).catch(() => undefined);
      return undefined;
    }
  }

  /** The id of a VM's newest snapshot in a repository, or undefined. */
  async latestSnapshotId(name: string, vm: string): Promise<string | undefined> {
    await this.ready(name);
    return (await this.index.latest(name, vm))?.id;
  }

  /** The ids of a repository's protected snapshots (not cached: one small listing, read for a retention preview). */
  async protectedIds(name: string): Promise<Set<string>> {
    return new Set((await listProtections(await this.repository(name))).keys());
  }

  /**
   * Changes the tags of `snapshot` (as {@link findSnapshot} read it) in repository `name`: a
   * tag record written with the repository library (`setSnapshotTags`: `change` applied to the
   * tags it reads again, last writer wins), then that snapshot indexed again before this
   * resolves, so lists and the `tag` filter show the new tags at once. Throws what
   * setSnapshotTags throws (`E_USAGE` for a bad tag, `E_SNAPSHOT_NOT_FOUND` when it was
   * forgotten meanwhile).
   */
  async changeTags(name: string, snapshot: Snapshot, change: TagChange, now: Date): Promise<TagOutcome> {
    const config = this.config(name);
    if (config === undefined) throw new CofferError('E_REPO_NOT_FOUND', `no repository named ${name} in the configuration`);
    const repo = await this.repository(name);
    const outcome = await setSnapshotTags(repo, snapshot, change, { now });
    if (outcome.record !== null && (await this.index.indexed(name, config.url))) await this.index.reindexSnapshot(name, repo, snapshot.id);
    return outcome;
  }

  /** Sizes and savings of a repository (cached). */
  stats(name: string): Promise<RepositoryStats> {
    const hit = this.statistics.get(name);
    if (hit !== undefined && this.now() - hit.at < CATALOG_TTL_MS) return hit.value;
    const value = this.repository(name).then((repo) => repositoryStats(repo));
    this.statistics.set(name, { at: this.now(), value });
    value.catch(() => this.statistics.delete(name));
    return value;
  }

  /**
   * A task of this server wrote to or removed from a repository: its statistics are stale, and
   * its index is brought up to date — the snapshots `written` are added by reading just their
   * manifests (a backup's), anything else (a forget, prune, sync) refreshes it. Lists wait for
   * that (at most {@link SETTLE_WAIT_MS}), so a client that saw the task end sees its snapshot.
   * Errors go to `onError`.
   */
  invalidate(name: string, onError: (error: unknown) => void = () => undefined, written?: readonly string[]): void {
    this.statistics.delete(name);
    const config = this.config(name);
    if (config === undefined) return;
    const work = (async () => {
      if (written !== undefined && (await this.index.indexed(name, config.url))) await this.index.add(name, await this.repository(name), written);
      else await this.refresh(name);
    })().catch(onError);
    const all = Promise.all([this.settling.get(name), work]).then(() => undefined);
    this.settling.set(name, all);
    void all.finally(() => {
      if (this.settling.get(name) === all) this.settling.delete(name);
    });
  }

  /** VM name → ISO time of its newest snapshot, over every repository that opens. */
  async lastBackups(): Promise<Map<string, string>> {
    const names: string[] = [];
    for (const repository of this.repositories()) {
      if (await this.ready(repository.name).then(() => true, () => false)) names.push(repository.name);
    }
    const newest = await this.index.lastBackups(names);
    return new Map([...newest].map(([vm, ms]) => [vm, new Date(ms).toISOString()]));
  }

  /**
   * The opened repository (kept open while the server runs), for reads the index does not
   * cover: file browsing. @throws E_REPO_NOT_FOUND, or what opening it throws.
   */
  openRepository(name: string): Promise<Repository> {
    return this.repository(name);
  }

  async close(): Promise<void> {
    this.refreshing = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const all = [...this.open.values()];
    this.open.clear();
    for (const entry of all) await entry.repo.then((r) => r.close(), () => undefined);
  }

  /**
   * Builds the index of a repository it never covered (from this location); otherwise waits
   * (briefly) for the updates the server's own tasks asked for.
   */
  private async ready(name: string): Promise<void> {
    const config = this.config(name);
    if (config === undefined) throw new CofferError('E_REPO_NOT_FOUND', `no repository named ${name} in the configuration`);
    if (!(await this.index.indexed(name, config.url))) {
      await this.refresh(name);
      return;
    }
    const settling = this.settling.get(name);
    if (settling === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([settling, new Promise<void>((resolve) => (timer = setTimeout(resolve, SETTLE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  private repository(name: string): Promise<Repository> {
    const config = this.config(name);
    if (config === undefined) return Promise.reject(new CofferError('E_REPO_NOT_FOUND', `no repository named ${name} in the configuration`));
    const known = this.open.get(name);
    if (known !== undefined && known.url === config.url) return known.repo;
    const repo = (async () => {
      const passphraseFile = config['passphrase-file'];
      const passphrase = passphraseFile === undefined ? undefined : async () => (await readFile(passphraseFile, 'utf8').catch((cause: unknown) => {
        throw new CofferError('E_NO_PASSPHRASE', `repository ${name}: cannot read its passphrase file ${passphraseFile}`, { cause });
      })).replace(/\r?\n$/, '');
      // The same location handling as the CLI: local paths, s3: (AWS_* settings, chunk cache), https:// repository servers.
      return openRepositoryAt(config.url, { env: process.env, passphrase, threads: 1 });
    })();
    this.open.set(name, { url: config.url, repo });
    repo.catch(() => this.open.delete(name));
    return repo;
  }
}
