import { createHash, randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeFolders } from '../../native/index.js';
import { chunkKey, CHUNKS_PREFIX, idFromKey, indexKey, INDEXES_PREFIX, packKey, PACKS_PREFIX } from '../layout.js';

const RECORD_BYTES = 1 + 32 + 8;
/** The kind byte of a record, by key prefix (PLEASE DO NOT CHANGE: 2 was added in file version 2). */
const KINDS: readonly { kind: number; prefix: string; key: (hex: string) => string }[] = [
  { kind: 0, prefix: CHUNKS_PREFIX, key: chunkKey },
  { kind: 1, prefix: INDEXES_PREFIX, key: indexKey },
  { kind: 2, prefix: PACKS_PREFIX, key: packKey },
];
/** The file version written; version 1 (kinds 0 and 1 only) is still read. */
const FILE_VERSION = 2;

/**
 * What this machine knows of the retain-until dates of a repository's chunks, index pages and
 * (format 2) packs, so that a backup to a locked repository asks the bucket (one HEAD each)
 * only about the objects it has never seen, not about every chunk or pack it reuses.
 *
 * It may only ever be *short*, never long: a date it records is one the object was written
 * or extended with (or read back), and Object Lock never moves a date earlier — except a
 * GOVERNANCE bypass by someone with that right, which `coffer lock extend` (which never
 * trusts this cache) repairs. Dates already past are dropped when saving: they vouch for
 * nothing. Deleting the file is always safe.
 *
 * The file, `DIRECTORY/<repository id>/retention` (beside the chunk cache): one line of JSON,
 * `{"format":"coffer-retention-cache","version":2,"repository":ID,"count":N,"sha256":HEX}\n`,
 * then N records of 41 bytes: kind (0 chunk, 1 index page, 2 pack), the 32-byte id, the retain-until
 * as a float64 little-endian of Unix milliseconds. Damage or another repository's id means
 * an empty cache. 4 million chunks (1 TB at 256 KiB) take 164 MiB on disk and, as a Map of
 * key strings, ~600 MiB in memory: a known limit for repositories far above 1 TB.
 */
export class RetentionCache {
  private readonly until = new Map<string, number>();
  private loading: Promise<void> | undefined;
  private changed = false;

  /** `directory` undefined: a cache in memory only (nothing read or saved). */
  constructor(
    private readonly repositoryId: string,
    private readonly directory: string | undefined,
  ) {}

  /** The retain-until this machine knows for `key` (Unix ms), loading the file first. */
  async known(key: string): Promise<number | undefined> {
    this.loading ??= this.load();
    await this.loading;
    return this.until.get(key);
  }

  /** Records that `key` is locked at least until `until` (never lowers what is known). */
  learn(key: string, until: Date): void {
    if (kindOf(key) === undefined) return;
    const ms = until.getTime();
    if ((this.until.get(key) ?? -Infinity) >= ms) return;
    this.until.set(key, ms);
    this.changed = true;
  }

  /** Writes the file (atomically) if anything was learnt. Never throws: a lost cache costs HEADs. */
  async save(now: Date): Promise<void> {
    if (this.directory === undefined || !this.changed) return;
    try {
      await this.loading;
      const records: Buffer[] = [];
      for (const [key, ms] of this.until) {
        const hex = idFromKey(key);
        const kind = kindOf(key);
        if (hex === null || kind === undefined || ms <= now.getTime()) continue;
        const record = Buffer.alloc(RECORD_BYTES);
        record[0] = kind.kind;
        record.write(hex, 1, 'hex');
        record.writeDoubleLE(ms, 33);
        records.push(record);
      }
      const body = Buffer.concat(records);
      const header = { format: 'coffer-retention-cache', version: FILE_VERSION, repository: this.repositoryId, count: records.length, sha256: createHash('sha256').update(body).digest('hex') };
      const folder = join(this.directory, this.repositoryId);
      await makeFolders(folder, 0o700);
      const temp = join(folder, `.tmp-${randomBytes(6).toString('hex')}`);
      await writeFile(temp, Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), body]), { mode: 0o600 });
      await rename(temp, join(folder, 'retention'));
      this.changed = false;
    } catch {
      // A cache that cannot be written only costs HEADs next time.
    }
  }

  private async load(): Promise<void> {
    if (this.directory === undefined) return;
    const bytes = await readFile(join(this.directory, this.repositoryId, 'retention')).catch(() => undefined);
    if (bytes === undefined) return;
    const newline = bytes.indexOf(0x0a);
    if (newline < 0) return;
    let header: { format?: unknown; version?: unknown; repository?: unknown; count?: unknown; sha256?: unknown };
    try {
      header = JSON.parse(bytes.subarray(0, newline).toString('utf8')) as typeof header;
    } catch {
      return;
    }
    const body = bytes.subarray(newline + 1);
    if (header.format !== 'coffer-retention-cache' || (header.version !== 1 && header.version !== FILE_VERSION) || header.repository !== this.repositoryId) return;
    if (typeof header.count !== 'number' || body.length !== header.count * RECORD_BYTES) return;
    if (createHash('sha256').update(body).digest('hex') !== header.sha256) return;
    for (let at = 0; at < body.length; at += RECORD_BYTES) {
      const kind = KINDS.find((k) => k.kind === body[at]);
      if (kind === undefined) return; // damage (the checksum held): trust nothing more
      const key = kind.key(body.toString('hex', at + 1, at + 33));
      const ms = body.readDoubleLE(at + 33);
      if ((this.until.get(key) ?? -Infinity) < ms) this.until.set(key, ms);
    }
  }
}

function kindOf(key: string): (typeof KINDS)[number] | undefined {
  return KINDS.find((k) => key.startsWith(k.prefix));
}
