import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeFolders } from '../native/index.js';
import type { Backend, BackendEntry, ObjectLockStore } from './backend/backend.js';
import { ForwardingBackend } from './backend/forwarding-backend.js';
import { idFromKey, SEGMENTS_PREFIX } from './layout.js';

/**
 * A local copy of a format 2 repository's index segments (docs/repository-format.md §19.4),
 * so that a backup to object storage does not download every segment each time: a backup
 * that meets a block its parent lacks loads the global chunk index (chunk-index.ts), which
 * lists `segments/` and reads each one — 80 bytes per stored chunk, 320 MB for 4 million
 * chunks (1 TB at 256 KiB), and one GET per segment, every night. With this cache it reads
 * only the segments it has not seen. It is format 2's counterpart of the chunk cache
 * (chunk-cache.ts), which spares format 1 a HEAD per chunk.
 *
 * Why it can never be wrong: a segment's key is its object id (§4: a MAC of its plaintext),
 * so a key always names the same bytes; the listing of `segments/` is always asked of the
 * store, so a segment removed there (`repair --index`, a merge by prune) is never read from
 * here even if its file lingers. Each file holds the SHA-256 of its bytes; a file that does not
 * match (a damaged disk, a torn write) is dropped and the segment read from the store, and the
 * envelope is checked against the id when the segment is opened anyway.
 *
 * Kept up to date by wrapping the repository's backend ("add behaviour by wrapping"): a get of
 * a segment reads the cache, else the store then fills the cache; a put of a segment (this
 * backup's own, also when put locked through `objectLock`) writes through; a delete removes the file; a complete listing of `segments/`
 * removes the files of segments the store no longer has. Failures of the cache itself are
 * swallowed: a lost or unwritable cache only costs GETs. Everything else passes through.
 *
 * The folder, `DIRECTORY/<repository id>/segments/` (beside the chunk cache; deleting it is
 * always safe): one file per segment, named by its 64-hex id, holding the 32-byte SHA-256 of
 * the stored bytes followed by the stored bytes (≤ 5.2 MiB each).
 */
export class SegmentCachingBackend extends ForwardingBackend {
  readonly objectLock: ObjectLockStore | undefined;

  constructor(
    inner: Backend,
    /** The folder of this repository's cached segments (created on the first write). */
    private readonly folder: string,
  ) {
    super(inner);
    const store = inner.objectLock;
    // A locked repository puts and deletes through the lock store (lock/locked-backend.ts): same write-through.
    this.objectLock = store === undefined ? undefined : {
      enabled: () => store.enabled(),
      put: async (key, data, retention) => {
        await store.put(key, data, retention);
        const hex = segmentId(key);
        if (hex !== null) await this.write(hex, data);
      },
      create: async (key, data, retention) => {
        const created = await store.create(key, data, retention);
        const hex = segmentId(key);
        if (created && hex !== null) await this.write(hex, data);
        return created;
      },
      retention: (key) => store.retention(key),
      extend: (key, retention) => store.extend(key, retention),
      deleteAll: async (key) => {
        await store.deleteAll(key);
        await this.forget(key);
      },
    };
  }

  override async get(key: string): Promise<Buffer> {
    const hex = segmentId(key);
    if (hex === null) return this.inner.get(key);
    const cached = await this.read(hex);
    if (cached !== undefined) return cached;
    const bytes = await this.inner.get(key);
    await this.write(hex, bytes);
    return bytes;
  }

  override async put(key: string, data: Uint8Array): Promise<void> {
    await this.inner.put(key, data);
    const hex = segmentId(key);
    if (hex !== null) await this.write(hex, data);
  }

  override async create(key: string, data: Uint8Array): Promise<boolean> {
    const created = await this.inner.create(key, data);
    const hex = segmentId(key);
    if (created && hex !== null) await this.write(hex, data);
    return created;
  }

  override async delete(key: string): Promise<void> {
    await this.inner.delete(key);
    await this.forget(key);
  }

  private async forget(key: string): Promise<void> {
    const hex = segmentId(key);
    if (hex !== null) await rm(join(this.folder, hex), { force: true }).catch(() => undefined);
  }

  override async *list(prefix: string): AsyncIterable<BackendEntry> {
    if (prefix !== SEGMENTS_PREFIX) {
      yield* this.inner.list(prefix);
      return;
    }
    const present = new Set<string>();
    for await (const entry of this.inner.list(prefix)) {
      const hex = segmentId(entry.key);
      if (hex !== null) present.add(hex);
      yield entry;
    }
    // Reached only when the caller took the whole listing: drop what the store no longer has.
    const files = await readdir(this.folder).catch(() => [] as string[]);
    for (const name of files) {
      if (/^[0-9a-f]{64}$/.test(name) && !present.has(name)) await rm(join(this.folder, name), { force: true }).catch(() => undefined);
    }
  }

  /** The cached bytes of segment `hex`, or undefined (absent or damaged: then removed). */
  private async read(hex: string): Promise<Buffer | undefined> {
    const file = join(this.folder, hex);
    const content = await readFile(file).catch(() => undefined);
    if (content === undefined) return undefined;
    const bytes = content.subarray(32);
    if (content.length > 32 && createHash('sha256').update(bytes).digest().equals(content.subarray(0, 32))) return bytes;
    await rm(file, { force: true }).catch(() => undefined);
    return undefined;
  }

  private async write(hex: string, bytes: Uint8Array): Promise<void> {
    const temp = join(this.folder, `.tmp-${randomBytes(6).toString('hex')}`);
    try {
      await makeFolders(this.folder, 0o700);
      await writeFile(temp, Buffer.concat([createHash('sha256').update(bytes).digest(), bytes]), { mode: 0o600 });
      await rename(temp, join(this.folder, hex));
    } catch {
      // A segment that cannot be cached is read from the store next time.
      await rm(temp, { force: true }).catch(() => undefined);
    }
  }
}

function segmentId(key: string): string | null {
  return key.startsWith(SEGMENTS_PREFIX) ? idFromKey(key) : null;
}
