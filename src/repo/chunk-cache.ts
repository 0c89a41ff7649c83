import { createHash, randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CofferError } from '../errors/index.js';
import { makeFolders } from '../native/index.js';
import type { Backend } from './backend/backend.js';
import { CHUNKS_PREFIX, DELETIONS_KEY, idFromKey } from './layout.js';

/**
 * A local cache of the chunk ids a repository holds, so that a backup to object storage does
 * not ask the bucket (one HEAD, a round trip) about every new block: on S3, a backup of a
 * fresh disk otherwise spends most of its time in HEADs that answer "no".
 *
 * It is a hint that may only ever be *incomplete*, never wrong the other way: "present" must
 * mean present, or a backup would skip storing a chunk its snapshot needs. How that holds:
 * - Filled from a full listing of `chunks/` (when the file is missing, unreadable, for another
 *   repository, older than `maxAgeMs`, or stale as below), then by each chunk this process
 *   stores. A chunk another host stores is simply missing from it: the backup stores it again
 *   (a put of the same id is idempotent), which costs a PUT, never data.
 * - Deleting chunks is the only way "present" becomes false. Every operation that deletes
 *   chunks (prune, verify's quarantine) first writes a new random token to the repository's
 *   `deletions` object ({@link recordChunkDeletions}), *before* its first delete. The cache
 *   file records the token it was built under; a different token means chunks may have gone,
 *   and the cache is rebuilt. The token is read when the cache is first consulted, which a
 *   backup does only once it holds its lease, and a prune never deletes while a backup holds
 *   one (leases.ts): so no deletion can slip between the check and the backup's end. The
 *   token is read again before the file is saved; if it changed, the file is dropped.
 * - What nothing in Coffer does (an administrator deleting objects by hand, a bucket lifecycle
 *   rule, an older Coffer's prune) is bounded by `maxAgeMs`: the listing is redone at least
 *   that often, and verify (which never uses this cache) finds what is missing meanwhile.
 * - The file is checked by a SHA-256 over its ids; any damage means a rebuild.
 * Prune and verify never consult it.
 *
 * The file, `DIRECTORY/<repository id>/chunks` (not part of the repository; deleting it is
 * always safe): one line of JSON, `{"format":"coffer-chunk-cache","version":1,"repository":
 * ID,"deletions":TOKEN,"built":UNIX_MS,"count":N,"sha256":HEX}\n`, then N ids of 32 bytes,
 * sorted bytewise, no duplicates. 4 million chunks (1 TB at 256 KiB) take 128 MiB.
 */
export class ChunkCache {
  private sorted: Buffer = Buffer.alloc(0);
  private readonly added = new Set<string>();
  private token: string | undefined;
  private built = 0;
  private rebuilt = false;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly backend: Backend,
    private readonly repositoryId: string,
    private readonly options: ChunkCacheOptions,
  ) {}

  /** True only if the chunk is known to be stored (loading or rebuilding the cache first). */
  async has(hex: string): Promise<boolean> {
    this.loading ??= this.load();
    await this.loading;
    return this.added.has(hex) || this.findSorted(Buffer.from(hex, 'hex'));
  }

  /** Records a chunk this process stored (after the put resolved). */
  add(hex: string): void {
    if (this.loading !== undefined) this.added.add(hex);
  }

  /** Writes the file if anything was learnt, unless chunks were deleted meanwhile. Never throws. */
  async save(): Promise<void> {
    if (this.loading === undefined) return;
    try {
      await this.loading;
      if (this.added.size === 0 && !this.rebuilt) return;
      if ((await readDeletionsToken(this.backend)) !== this.token) {
        await rm(this.file, { force: true });
        return;
      }
      const ids = mergeSorted(this.sorted, [...this.added].map((hex) => Buffer.from(hex, 'hex')));
      await makeFolders(this.directory, 0o700);
      const temp = join(this.directory, `.tmp-${randomBytes(6).toString('hex')}`);
      await writeFile(temp, encodeCacheFile({ repository: this.repositoryId, deletions: this.token ?? '', built: this.built }, ids), { mode: 0o600 });
      await rename(temp, this.file);
    } catch {
      // A cache that cannot be written only costs lookups next time.
    }
  }

  private get directory(): string {
    return join(this.options.directory, this.repositoryId);
  }

  private get file(): string {
    return join(this.directory, 'chunks');
  }

  private async load(): Promise<void> {
    const now = (this.options.now?.() ?? new Date()).getTime();
    const maxAgeMs = this.options.maxAgeMs ?? CHUNK_CACHE_MAX_AGE_MS;
    this.token = await readDeletionsToken(this.backend);
    const cached = decodeCacheFile(await readFile(this.file).catch(() => undefined));
    if (cached !== undefined && cached.header.repository === this.repositoryId && cached.header.deletions === this.token
      && now - cached.header.built <= maxAgeMs && cached.header.built <= now) {
      this.sorted = cached.ids;
      this.built = cached.header.built;
      return;
    }
    const ids: Buffer[] = [];
    for await (const entry of this.backend.list(CHUNKS_PREFIX)) {
      const hex = idFromKey(entry.key);
      if (hex !== null) ids.push(Buffer.from(hex, 'hex'));
    }
    this.sorted = mergeSorted(Buffer.alloc(0), ids);
    this.built = now;
    this.rebuilt = true;
  }

  private findSorted(id: Buffer): boolean {
    let low = 0;
    let high = this.sorted.length / ID_BYTES - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const order = id.compare(this.sorted, middle * ID_BYTES, (middle + 1) * ID_BYTES);
      if (order === 0) return true;
      if (order > 0) low = middle + 1;
      else high = middle - 1;
    }
    return false;
  }
}

/** Where and how long a {@link ChunkCache} lives. */
export interface ChunkCacheOptions {
  /** A folder of this machine (e.g. `~/.cache/coffer`); one subfolder per repository id. */
  directory: string;
  /** Redo the full listing at least this often (default {@link CHUNK_CACHE_MAX_AGE_MS}). */
  maxAgeMs?: number;
  now?: () => Date;
}

/**
 * 24 hours: a nightly backup lists the bucket's chunks about once a day (4 million keys are
 * 4,000 LIST requests, a minute or two) and, in between, trusts what it learnt; deletions by
 * anything but Coffer are noticed within a day (verify finds them at once).
 */
export const CHUNK_CACHE_MAX_AGE_MS = 24 * 3600 * 1000;

/**
 * Writes a new random token to the repository's `deletions` object: to be called by anything
 * that is about to delete chunks, before its first delete, so that every {@link ChunkCache}
 * built before is rebuilt.
 */
export async function recordChunkDeletions(backend: Backend): Promise<void> {
  await backend.put(DELETIONS_KEY, Buffer.from(`${randomBytes(16).toString('hex')}\n`, 'utf8'));
  await backend.sync();
}

async function readDeletionsToken(backend: Backend): Promise<string> {
  try {
    return (await backend.get(DELETIONS_KEY)).toString('utf8').trim();
  } catch (error) {
    if (error instanceof CofferError && error.code === 'E_MISSING_OBJECT') return '';
    throw error;
  }
}

const ID_BYTES = 32;
const FORMAT = 'coffer-chunk-cache';
const MAX_HEADER = 4096;

interface CacheHeader {
  repository: string;
  deletions: string;
  built: number;
}

function encodeCacheFile(header: CacheHeader, ids: Buffer): Buffer {
  const sha256 = createHash('sha256').update(ids).digest('hex');
  const line = JSON.stringify({ format: FORMAT, version: 1, ...header, count: ids.length / ID_BYTES, sha256 });
  return Buffer.concat([Buffer.from(`${line}\n`, 'utf8'), ids]);
}

/** The header and ids of a cache file, or undefined for anything damaged, truncated or foreign. */
function decodeCacheFile(bytes: Buffer | undefined): { header: CacheHeader; ids: Buffer } | undefined {
  if (bytes === undefined) return undefined;
  const end = bytes.subarray(0, MAX_HEADER).indexOf(0x0a);
  if (end < 0) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.subarray(0, end).toString('utf8'));
  } catch {
    return undefined;
  }
  const h = parsed as Record<string, unknown>;
  const ids = bytes.subarray(end + 1);
  if (h.format !== FORMAT || h.version !== 1 || typeof h.repository !== 'string' || typeof h.deletions !== 'string' || typeof h.built !== 'number'
    || h.count !== ids.length / ID_BYTES || ids.length % ID_BYTES !== 0 || h.sha256 !== createHash('sha256').update(ids).digest('hex')) {
    return undefined;
  }
  return { header: { repository: h.repository, deletions: h.deletions, built: h.built }, ids };
}

/** `sorted` (32-byte ids, sorted) with `more` merged in: sorted, without duplicates. */
function mergeSorted(sorted: Buffer, more: Buffer[]): Buffer {
  more.sort(Buffer.compare);
  const out = Buffer.allocUnsafe(sorted.length + more.length * ID_BYTES);
  let used = 0;
  let i = 0;
  let j = 0;
  const total = sorted.length / ID_BYTES;
  const push = (source: Buffer, start: number) => {
    if (used > 0 && source.compare(out, used - ID_BYTES, used, start, start + ID_BYTES) === 0) return;
    source.copy(out, used, start, start + ID_BYTES);
    used += ID_BYTES;
  };
  while (i < total || j < more.length) {
    const next = more[j];
    if (next === undefined || (i < total && sorted.compare(next, 0, ID_BYTES, i * ID_BYTES, (i + 1) * ID_BYTES) <= 0)) {
      push(sorted, i * ID_BYTES);
      i++;
    } else {
      push(next, 0);
      j++;
    }
  }
  return out.subarray(0, used);
}
