import { forEachLimited } from '../../concurrency/index.js';
import { isCofferError } from '../../errors/index.js';
import { DiskIndexReader } from '../disk-index.js';
import { isZeroEntry } from '../format/index-page.js';
import { isLocatedEntry } from '../format/located-entry.js';
import type { DiskRecord } from '../format/manifest.js';
import { getFileTree } from '../file-trees.js';
import { chunkKey, CONFIG_KEY, indexKey, KEYS_PREFIX, packKey, treeKey } from '../layout.js';
import type { Repository } from '../repository.js';
import type { LockedBackend } from './locked-backend.js';

/** Counts of one pass that makes objects reach a date. */
export interface RetentionReport {
  /** Distinct objects whose retention was checked (from the cache or the store). */
  checked: number;
  /** Of those, read from the store (one HEAD each): unknown to the cache, or the cache not trusted. */
  lookedUp: number;
  /** Of those, extended (one PutObjectRetention each). */
  extended: number;
  /** Referenced but absent (damage for verify to report; nothing to lock). */
  missing: number;
}

/** Requests in flight: HEADs and PutObjectRetentions are tiny, the round trip is the cost. */
const REQUESTS_IN_FLIGHT = 16;

/**
 * Makes objects stay locked at least until a date: each one whose known retain-until falls
 * short is read from the store (HEAD) and, if still short, extended to `target(required)`.
 * What it learns goes to the lock's cache; within one pass each object is asked about once.
 * `trustCache: false` (maintenance) reads every object from the store, so a retention
 * shortened behind Coffer's back (a GOVERNANCE bypass) is found.
 */
export class RetentionEnsurer {
  readonly report: RetentionReport = { checked: 0, lookedUp: 0, extended: 0, missing: 0 };
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly lock: LockedBackend,
    private readonly options: { trustCache: boolean; target: (required: Date) => Date },
  ) {}

  /** Makes every key in `keys` locked until `required` at least. */
  async require(keys: Iterable<string>, required: Date): Promise<void> {
    const need = required.getTime();
    const todo: string[] = [];
    for (const key of new Set(keys)) {
      const seen = this.seen.get(key);
      if (seen === undefined) this.report.checked++;
      if (seen !== undefined && seen >= need) continue;
      if (seen === undefined && this.options.trustCache) {
        const cached = await this.lock.cache.known(key);
        if (cached !== undefined && cached >= need) {
          this.seen.set(key, cached);
          continue;
        }
      }
      todo.push(key);
    }
    await forEachLimited(todo, REQUESTS_IN_FLIGHT, async (key) => {
      let until = this.seen.get(key);
      if (until === undefined) {
        this.report.lookedUp++;
        try {
          const retention = await this.lock.retention(key);
          until = retention?.until.getTime() ?? -Infinity;
          if (retention !== null) this.lock.cache.learn(key, retention.until);
        } catch (error) {
          if (!isCofferError(error, 'E_MISSING_OBJECT')) throw error;
          this.report.missing++;
          this.seen.set(key, Infinity); // nothing to lock; asked once
          return;
        }
      }
      if (until < need) {
        const target = this.options.target(required);
        await this.lock.extend(key, target);
        this.report.extended++;
        until = target.getTime();
      }
      this.seen.set(key, until);
    });
  }

  /**
   * Everything the disks reference (index pages, then their chunks page by page) until
   * `required`. In format 2 an entry names the pack holding its chunk: the pack is what is
   * locked (a pack written long before, whose chunks a new snapshot reuses, is extended).
   */
  async requireDisks(repo: Repository, disks: readonly DiskRecord[], required: Date): Promise<void> {
    for (const disk of disks) {
      await this.require(disk.pages.map(indexKey), required);
      const reader = new DiskIndexReader(repo, disk, 1);
      for (let page = 0; page < disk.pages.length; page++) {
        let entries: Buffer[];
        try {
          entries = await reader.rawPage(page);
        } catch (error) {
          if (isCofferError(error, 'E_MISSING_OBJECT') || isCofferError(error, 'E_CORRUPT_OBJECT')) continue; // damage: verify's to report
          throw error;
        }
        await this.require(entries.filter((entry) => !isZeroEntry(entry)).map(objectOfEntry), required);
      }
    }
  }

  /**
   * Everything a file snapshot references (its trees, depth first, and each tree's chunks)
   * until `required`. A tree already required in this pass is not read again (templates and
   * unchanged directories are shared between snapshots).
   */
  async requireFileTree(repo: Repository, root: string, required: Date): Promise<void> {
    const walked = new Set<string>();
    const walk = async (id: string): Promise<void> => {
      if (walked.has(id)) return;
      walked.add(id);
      await this.require([treeKey(id)], required);
      let entries;
      try {
        entries = (await getFileTree(repo, id)).entries;
      } catch (error) {
        if (isCofferError(error, 'E_MISSING_OBJECT') || isCofferError(error, 'E_CORRUPT_OBJECT')) return; // damage: verify's to report
        throw error;
      }
      const chunks: string[] = [];
      for (const entry of entries) {
        for (const [what] of entry.content ?? []) if (what !== 'hole' && what !== 'zero') chunks.push(chunkKey(what));
      }
      await this.require(chunks, required);
      for (const entry of entries) if (entry.type === 'directory' && entry.tree !== undefined) await walk(entry.tree);
    };
    await walk(root);
  }

  /** The config and every key file until `required` (without them nothing can be read). */
  async requireConfigAndKeys(repo: Repository, required: Date): Promise<void> {
    const keys = [CONFIG_KEY];
    for await (const entry of repo.backend.list(KEYS_PREFIX)) keys.push(entry.key);
    await this.require(keys, required);
  }
}

/** The object holding an index entry's chunk: `chunks/…` (format 1) or its pack (format 2, §19.3). */
function objectOfEntry(entry: Buffer): string {
  return isLocatedEntry(entry) ? packKey(entry.toString('hex', 32, 64)) : chunkKey(entry.toString('hex'));
}
