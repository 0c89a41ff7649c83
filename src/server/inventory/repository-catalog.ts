/**
 * The configured repositories, opened through the repository library (the same code the CLI
 * runs; the server never shells out) with their passphrase files, and their snapshot lists
 * and statistics cached for a short time (listing a repository reads every manifest: the API
 * must not do that on every request). Repositories stay open while the server runs.
 */
import { readFile } from 'node:fs/promises';
import { CofferError } from '../../errors/index.js';
import { listProtections, listSnapshots, openRepositoryAt, repositoryStats, type Repository, type RepositoryStats, type Snapshot } from '../../repo/index.js';
import type { RepositoryConfig } from '../config/index.js';

/** How long a snapshot list or statistics stay fresh: short enough that a finished backup shows up soon. */
export const CATALOG_TTL_MS = 15_000;

interface Cached<T> {
  at: number;
  value: Promise<T>;
}

export class RepositoryCatalog {
  private readonly open = new Map<string, { url: string; repo: Promise<Repository> }>();
  private readonly snapshots = new Map<string, Cached<Snapshot[]>>();
  private readonly statistics = new Map<string, Cached<RepositoryStats>>();

  constructor(
    private readonly repositories: () => readonly RepositoryConfig[],
    private readonly now: () => number = Date.now,
  ) {}

  /** The configuration of a repository, or undefined. */
  config(name: string): RepositoryConfig | undefined {
    return this.repositories().find((r) => r.name === name);
  }

  /** Every snapshot of a repository, oldest first (cached). */
  listSnapshots(name: string): Promise<Snapshot[]> {
    return this.cached(this.snapshots, name, async (repo) => listSnapshots(repo, { onDamaged: () => {} }));
  }

  /** The ids of a repository's protected snapshots (not cached: one small listing, read for a retention preview). */
  async protectedIds(name: string): Promise<Set<string>> {
    return new Set((await listProtections(await this.repository(name))).keys());
  }

  /** Sizes and savings of a repository (cached). */
  stats(name: string): Promise<RepositoryStats> {
    return this.cached(this.statistics, name, (repo) => repositoryStats(repo));
  }

  /** Forgets the cached snapshot list and statistics of a repository (a backup wrote to it). */
  invalidate(name: string): void {
    this.snapshots.delete(name);
    this.statistics.delete(name);
  }

  /** VM name → ISO time of its newest snapshot, over every repository that opens. */
  async lastBackups(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const repository of this.repositories()) {
      const snapshots = await this.listSnapshots(repository.name).catch(() => [] as Snapshot[]);
      for (const s of snapshots) if ((out.get(s.vm) ?? '') < s.time) out.set(s.vm, s.time);
    }
    return out;
  }

  /**
   * The opened repository (kept open while the server runs), for reads the cache does not
   * cover: file browsing. @throws E_REPO_NOT_FOUND, or what opening it throws.
   */
  openRepository(name: string): Promise<Repository> {
    return this.repository(name);
  }

  async close(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    for (const entry of all) await entry.repo.then((r) => r.close(), () => undefined);
  }

  private cached<T>(cache: Map<string, Cached<T>>, name: string, load: (repo: Repository) => Promise<T>): Promise<T> {
    const hit = cache.get(name);
    if (hit !== undefined && this.now() - hit.at < CATALOG_TTL_MS) return hit.value;
    const value = this.repository(name).then(load);
    cache.set(name, { at: this.now(), value });
    value.catch(() => cache.delete(name));
    return value;
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

