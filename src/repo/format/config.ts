/**
 * The repository config, object `config`: plaintext JSON that says what the repository is and
 * how to read it, so that any Coffer (and a human) can tell without a key. Version 1:
 *
 * ```json
 * {
 *   "format": "coffer-repository",
 *   "version": 1,
 *   "id": "<32 hex: random repository id>",
 *   "created": "<ISO 8601 UTC>",
 *   "encryption": "aes-256-gcm" | "none",
 *   "objectId": "hmac-sha256" | "sha256",
 *   "compression": { "algorithm": "zstd", "level": 3 },
 *   "blockSize": 262144,
 *   "entriesPerPage": 4096,
 *   "objectLock": { "mode": "compliance" | "governance", "days": 30 }
 * }
 * ```
 * `objectLock` is optional (added 2026-11-26; a config without it has no lock): the
 * repository lives in a bucket with S3 Object Lock and every object a restore needs is
 * written immutable for `days` (a positive number, fractions allowed: tests use seconds) in
 * that mode; docs/s3.md, "Immutable backups". An older Coffer ignores the field (and would
 * write unlocked objects): lock-aware readers are version 1 too, since nothing else changed.
 * `"version": 2` (2026-11-26; `coffer init`'s default since that day, `initRepository`'s since
 * 2026-11-27) has the same fields; new data goes into packs and disk index pages hold located
 * entries (docs/repository-format.md, "Format 2").
 * `blockSize` and `entriesPerPage` are the defaults for new snapshots; each snapshot records
 * its own, so changing them never breaks old snapshots. The config is never rewritten after
 * `init`.
 */
import { CofferError } from '../../errors/index.js';
import { MAX_ENTRIES_PER_PAGE } from './index-page.js';

/**
 * The format `initRepository` (and so `coffer init`) writes unless told otherwise: 2, packs
 * (docs/repository-format.md, "Format 2"). Format 1 (one object per chunk) is still written on
 * request (`format: 1`, `coffer init --format 1`) and read, synced and pruned like format 2.
 */
export const REPOSITORY_FORMAT_VERSION = 2;
/**
 * The newest format this Coffer reads: 2 stores new data in packs (docs/repository-format.md,
 * "Format 2"). A Coffer that reads only 1 refuses a format 2 config with `E_REPO_VERSION`
 * ("uses repository format 2; this Coffer reads up to 1"): it never misreads packs.
 */
export const NEWEST_FORMAT_VERSION = 2;
/** The formats `init --format` can write. */
export const FORMAT_VERSIONS = [1, 2] as const;
export type FormatVersion = (typeof FORMAT_VERSIONS)[number];
export const MIN_BLOCK_SIZE = 4096;
export const MAX_BLOCK_SIZE = 16 * 1024 * 1024;

/** A parsed config. */
export interface RepositoryConfig {
  format: 'coffer-repository';
  version: FormatVersion;
  id: string;
  created: string;
  encryption: 'aes-256-gcm' | 'none';
  objectId: 'hmac-sha256' | 'sha256';
  compression: { algorithm: 'zstd'; level: number };
  blockSize: number;
  entriesPerPage: number;
  objectLock?: ObjectLockPolicy;
}

/** The Object Lock policy of a repository: each snapshot and what it needs stay immutable `days` days. */
export interface ObjectLockPolicy {
  mode: 'compliance' | 'governance';
  /** Positive; fractions allowed (at most {@link MAX_LOCK_DAYS}). */
  days: number;
}

/** 100 years: S3 allows longer, but a longer lock is surely a typo. */
export const MAX_LOCK_DAYS = 36_500;

/** True for a policy that can be recorded. */
export function isValidLockPolicy(policy: { mode?: unknown; days?: unknown }): policy is ObjectLockPolicy {
  return (policy.mode === 'compliance' || policy.mode === 'governance') && typeof policy.days === 'number' && Number.isFinite(policy.days) && policy.days > 0 && policy.days <= MAX_LOCK_DAYS;
}

/** Serializes a config. */
export function encodeConfig(config: RepositoryConfig): Buffer {
  return Buffer.from(`${JSON.stringify(config, null, 2)}\n`, 'utf8');
}

/** True when `blockSize` is a power of two within bounds. */
export function isValidBlockSize(blockSize: number): boolean {
  return Number.isInteger(blockSize) && blockSize >= MIN_BLOCK_SIZE && blockSize <= MAX_BLOCK_SIZE && (blockSize & (blockSize - 1)) === 0;
}

/** Parses and validates a config: `E_REPO_DAMAGED` if it is not one, `E_REPO_VERSION` if newer. */
export function decodeConfig(bytes: Uint8Array, location: string): RepositoryConfig {
  const damaged = (why: string) =>
    new CofferError('E_REPO_DAMAGED', `the config of ${location} is damaged: ${why}`, { subject: { repository: location, object: 'config' } });
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw damaged('not JSON');
  }
  const config = value as Partial<RepositoryConfig>;
  if (typeof config !== 'object' || config === null || config.format !== 'coffer-repository') throw damaged('not a Coffer config');
  if (typeof config.version !== 'number') throw damaged('no version');
  if (config.version > NEWEST_FORMAT_VERSION) {
    throw new CofferError('E_REPO_VERSION', `${location} uses repository format ${config.version}; this Coffer reads up to ${NEWEST_FORMAT_VERSION}`, {
      subject: { repository: location },
    });
  }
  const version = config.version as number;
  if (version !== 1 && version !== 2) throw damaged(`version ${version}`);
  if (typeof config.id !== 'string' || !/^[0-9a-f]{32}$/.test(config.id)) throw damaged('bad id');
  if (config.encryption !== 'aes-256-gcm' && config.encryption !== 'none') throw damaged('unknown encryption');
  const expectedObjectId = config.encryption === 'none' ? 'sha256' : 'hmac-sha256';
  if (config.objectId !== expectedObjectId) throw damaged('object id does not match the encryption');
  const level = config.compression?.level;
  if (config.compression?.algorithm !== 'zstd' || typeof level !== 'number' || !Number.isInteger(level) || level < 0 || level > 22) {
    throw damaged('bad compression');
  }
  if (typeof config.blockSize !== 'number' || !isValidBlockSize(config.blockSize)) throw damaged('bad block size');
  const perPage = config.entriesPerPage;
  if (typeof perPage !== 'number' || !Number.isInteger(perPage) || perPage < 1 || perPage > MAX_ENTRIES_PER_PAGE) throw damaged('bad entries per page');
  const lock = config.objectLock as unknown;
  if (lock !== undefined && (typeof lock !== 'object' || lock === null || !isValidLockPolicy(lock))) throw damaged('bad object lock policy');
  return {
    format: 'coffer-repository',
    version,
    id: config.id,
    created: String(config.created ?? ''),
    encryption: config.encryption,
    objectId: config.objectId,
    compression: { algorithm: 'zstd', level },
    blockSize: config.blockSize,
    entriesPerPage: perPage,
    ...(lock === undefined ? {} : { objectLock: { mode: lock.mode, days: lock.days } }),
  };
}
