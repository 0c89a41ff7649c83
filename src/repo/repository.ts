import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CofferError } from '../errors/index.js';
import type { Backend } from './backend/backend.js';
import { ChunkCache, type ChunkCacheOptions } from './chunk-cache.js';
import { CodecPool } from './codec-pool.js';
import { ObjectCodec, type ObjectId } from './codec.js';
import { decodeConfig, encodeConfig, FORMAT_VERSIONS, isValidBlockSize, isValidLockPolicy, REPOSITORY_FORMAT_VERSION, type FormatVersion, type ObjectLockPolicy, type RepositoryConfig } from './format/config.js';
import { ObjectKind } from './format/envelope.js';
import { ENTRIES_PER_PAGE } from './format/index-page.js';
import { kdfForNewKeys, parseKeyFile, unwrapMasterKey, wrapMasterKey, type KdfParams, type KeyFile } from './keys/key-file.js';
import { newMasterKey, type MasterKey } from './keys/master-key.js';
import { deriveSigningKey } from './keys/signing-key.js';
import { DigestRecordingBackend, digestRecorderOf } from './digests/digest-recording-backend.js';
import { chunkKey, CONFIG_KEY, indexKey, keyFileKey, KEYS_PREFIX, SNAPSHOTS_PREFIX } from './layout.js';
import { LockedBackend } from './lock/locked-backend.js';
import { lockedUntil } from './lock/locked-until.js';
import { RetentionCache } from './lock/retention-cache.js';
import { SegmentCachingBackend } from './segment-cache.js';
import { keepSpaceReserve } from './space-reserve.js';

/**
 * Defaults for new repositories, each with its reason.
 * - blockSize 256 KiB: see docs/decisions/2026-11-25-block-size.md — small enough that a
 *   4 KiB guest write costs at most 256 KiB of new data (a quarter of restic's ~1 MiB
 *   average chunk), large enough that 1 TB is 4 million objects (S3 PUT cost and inodes).
 * - zstd level 3: zstd's own default and what borg users pick.
 * - format 2 (packs): fewer, larger objects and 7 % less stored than format 1 (one object per
 *   chunk); docs/repository-format.md, "Format 2". `coffer init`, the demo and the tests all
 *   make it unless they ask for format 1.
 */
export const REPOSITORY_DEFAULTS = { blockSize: 256 * 1024, compressionLevel: 3, format: REPOSITORY_FORMAT_VERSION } as const;

/** How to create a repository. */
export interface InitOptions {
  /** null creates an unencrypted repository (only on explicit request). */
  passphrase: string | null;
  blockSize?: number;
  compressionLevel?: number;
  kdf?: KdfParams;
  now?: Date;
  /**
   * Make the repository immutable (S3 Object Lock): refused (`E_USAGE`) unless the backend
   * offers Object Lock and the bucket has it enabled. Recorded in the config.
   */
  objectLock?: ObjectLockPolicy;
  /**
   * Repository format: 2 (default: packs, located entries; docs/repository-format.md,
   * "Format 2") or 1 (one object per chunk).
   */
  format?: FormatVersion;
  /** Told the fingerprint of the stored-digest key (encrypted repositories), to show the user. */
  onStoredDigestKey?: (fingerprint: string) => void;
}

/** How to open a repository. */
export interface OpenOptions {
  /**
   * Needed for encrypted repositories; ignored for unencrypted ones. A function is called
   * only when the repository turns out to be encrypted (so nobody is prompted for nothing).
   */
  passphrase?: string | undefined | (() => Promise<string | undefined>);
  /** Where a user gives the passphrase, for the message when none was given (default: COFFER_PASSWORD, COFFER_PASSWORD_FILE or --password-file). */
  passphraseSources?: string;
  /** Worker threads for CPU work (default: every core). */
  threads?: number;
  /**
   * Start the worker threads while the key is derived, not at their first task: for a command
   * that will surely use them (verify --read-data), which then finds them loaded (~0.1 s).
   */
  startThreads?: boolean;
  /**
   * Answer backups' "is this chunk stored?" from a local cache of the chunk ids instead of
   * asking the backend each time (for object storage; see chunk-cache.ts for why it is safe).
   * In format 2, the same folder keeps a copy of the index segments (segment-cache.ts).
   */
  chunkCache?: ChunkCacheOptions;
  /**
   * Where to keep the cache of known retentions of a locked repository (beside the chunk
   * cache: `DIRECTORY/<repository id>/retention`); default: the chunk cache's directory, else
   * memory only.
   */
  retentionCacheDirectory?: string;
  /** The clock that dates Object Lock retentions (tests). */
  clock?: () => Date;
}

/** A key file with its id. */
export interface KeyInfo extends KeyFile {
  id: string;
}

/**
 * An open repository: the config, the codec, and typed access to its objects. Snapshots,
 * verify and stats live in their own files and take a Repository. Close it to stop the
 * worker threads.
 */
export class Repository {
  /** Codec for small objects on the main thread (manifests, index pages). */
  readonly codec: ObjectCodec;
  private codecPool: CodecPool | undefined;
  private chunkCache: ChunkCache | undefined;

  constructor(
    readonly backend: Backend,
    readonly config: RepositoryConfig,
    private readonly masterKey: MasterKey | null,
    /** The id of the key file that opened the repository (null when unencrypted). */
    readonly openedWithKey: string | null,
    private readonly threads: number | undefined,
    /** The worker pool, when it was started during the opening (OpenOptions.startThreads). */
    pool?: CodecPool,
  ) {
    this.codec = new ObjectCodec({ masterKey, compressionLevel: config.compression.level });
    this.codecPool = pool;
  }

  get location(): string {
    return this.backend.location;
  }

  get encrypted(): boolean {
    return this.masterKey !== null;
  }

  /** The worker pool, started on first use. */
  get pool(): CodecPool {
    this.codecPool ??= codecPoolFor(this.config, this.masterKey, this.threads);
    return this.codecPool;
  }

  /** Consults a local cache of chunk ids in {@link hasChunk} (only backups call it). */
  useChunkCache(options: ChunkCacheOptions): void {
    this.chunkCache = new ChunkCache(this.backend, this.config.id, options);
  }

  /**
   * The fingerprint of the key that signs this repository's digest records (null when
   * unencrypted): what the storage operator passes to `coffer verify --stored --trust`.
   */
  get storedDigestFingerprint(): string | null {
    return digestRecorderOf(this)?.fingerprint ?? null;
  }

  async close(): Promise<void> {
    // Digests of what this process wrote since the last sync (notes, markers, deletions).
    const recorder = digestRecorderOf(this);
    if (recorder !== undefined && (await recorder.flush())) await recorder.inner.sync();
    await this.chunkCache?.save();
    const pool = this.codecPool;
    this.codecPool = undefined;
    await pool?.close();
    await this.backend.close?.();
  }

  // --- chunks -------------------------------------------------------------------------

  /**
   * Whether the chunk is stored, for a backup deciding to store it: with a chunk cache, a
   * "no" may be wrong (another host stored it since; storing it again is harmless), a "yes"
   * never is. Prune and verify list the backend instead.
   */
  hasChunk(id: ObjectId): Promise<boolean> {
    this.refuseFormat2('this operation (it reads chunk objects)');
    const hex = id.toString('hex');
    return this.chunkCache === undefined ? this.backend.has(chunkKey(hex)) : this.chunkCache.has(hex);
  }

  /** Stores an already sealed chunk under its id (idempotent). */
  async putChunk(id: ObjectId, sealed: Uint8Array): Promise<void> {
    this.refuseFormat2('this operation (it writes chunk objects)');
    const hex = id.toString('hex');
    await this.backend.put(chunkKey(hex), sealed);
    this.chunkCache?.add(hex);
  }

  /** The sealed bytes of a chunk (not yet opened). */
  getChunkBlob(id: ObjectId): Promise<Buffer> {
    this.refuseFormat2('this operation (it reads chunk objects)');
    return this.backend.get(chunkKey(id.toString('hex')));
  }

  /**
   * Throws `E_REPO_FORMAT_UNSUPPORTED` in a format 2 repository, whose chunks live in packs:
   * for what does not read or write packs: the chunk-object methods above, and writing a
   * file tree outside a backup. `operation` names it in the message.
   */
  refuseFormat2(operation: string): void {
    if (this.config.version === 2) {
      throw new CofferError('E_REPO_FORMAT_UNSUPPORTED', `${operation} does not support repository format 2 (packs) yet; ${this.location} is format 2`, {
        subject: { repository: this.location },
      });
    }
  }

  // --- index pages (small: handled on the main thread) --------------------------------

  /** Stores an index page unless present; returns its id and the bytes it added. */
  async putIndexPage(plaintext: Buffer): Promise<{ id: ObjectId; bytesStored: number }> {
    const id = this.codec.idOf(plaintext);
    const key = indexKey(id.toString('hex'));
    if (await this.backend.has(key)) return { id, bytesStored: 0 };
    const sealed = this.codec.seal(plaintext, ObjectKind.indexPage, id);
    await this.backend.put(key, sealed);
    return { id, bytesStored: sealed.length };
  }

  /** The plaintext of an index page, checked against its id. */
  async getIndexPage(id: ObjectId): Promise<Buffer> {
    const key = indexKey(id.toString('hex'));
    return this.codec.open(await this.backend.get(key), ObjectKind.indexPage, key, id);
  }

  // --- keys ---------------------------------------------------------------------------

  listKeys(): Promise<KeyInfo[]> {
    return listKeyFiles(this.backend);
  }

  /** Adds a key file for `passphrase`; returns its id. */
  async addKey(passphrase: string, options: { kdf?: KdfParams; now?: Date } = {}): Promise<string> {
    if (this.masterKey === null) {
      throw new CofferError('E_KEY_REFUSED', `${this.location} is not encrypted: it has no keys`, { subject: { repository: this.location } });
    }
    return (await writeKeyFile(this.backend, this.masterKey, passphrase, options)).id;
  }

  /**
   * Removes the key file whose id starts with `id`. Refuses the last key, and the key in use
   * unless `replacingCurrent` (a passphrase change, after the new key was added).
   */
  async removeKey(id: string, options: { replacingCurrent?: boolean } = {}): Promise<string> {
    const refuse = (message: string) => new CofferError('E_KEY_REFUSED', message, { subject: { repository: this.location } });
    const keys = await this.listKeys();
    const matches = keys.filter((key) => key.id.startsWith(id));
    if (matches.length === 0) throw refuse(`no key ${id} in ${this.location}`);
    if (matches.length > 1) throw refuse(`key id ${id} is ambiguous`);
    const target = matches[0] as KeyInfo;
    if (target.id === this.openedWithKey && options.replacingCurrent !== true) throw refuse(`key ${target.id} is the one in use; open the repository with another key to remove it`);
    if (keys.length <= 1) throw refuse('refusing to remove the last key');
    const locked = await this.keyLockedUntil(target.id);
    if (locked !== null) throw refuse(`key ${target.id} is under Object Lock until ${locked.toISOString()}: it cannot be removed before then, and its passphrase opens the repository until it is`);
    await this.backend.delete(keyFileKey(target.id));
    return target.id;
  }

  /**
   * Until when Object Lock keeps key file `id` (a locked repository's key files are locked with
   * its config); null when it can be removed. `key passwd` asks first, so that it never adds a
   * new key it then cannot swap for the old one.
   */
  async keyLockedUntil(id: string): Promise<Date | null> {
    return lockedUntil(this, keyFileKey(id));
  }
}

/** Creates a repository on an empty backend. Refuses (`E_REPO_EXISTS`) if a config is there. */
export async function initRepository(backend: Backend, options: InitOptions): Promise<RepositoryConfig> {
  const blockSize = options.blockSize ?? REPOSITORY_DEFAULTS.blockSize;
  if (!isValidBlockSize(blockSize)) throw new CofferError('E_USAGE', `block size ${blockSize} must be a power of two between 4 KiB and 16 MiB`);
  const level = options.compressionLevel ?? REPOSITORY_DEFAULTS.compressionLevel;
  if (!Number.isInteger(level) || level < 0 || level > 19) throw new CofferError('E_USAGE', `compression level ${level} must be 0..19`);
  const version = options.format ?? REPOSITORY_DEFAULTS.format;
  if (!FORMAT_VERSIONS.includes(version)) throw new CofferError('E_USAGE', `repository format ${String(version)} does not exist: give ${FORMAT_VERSIONS.join(' or ')}`);
  if (options.objectLock !== undefined) await checkLockable(backend, options.objectLock);
  const configPresent = await backend.has(CONFIG_KEY).catch((error: unknown) => {
    if (causeCode(error) !== 'ENOTDIR') throw error;
    throw new CofferError('E_REPO_EXISTS', `${backend.location} is a file, not a folder: choose a new or empty folder for the repository`, { subject: { repository: backend.location }, cause: error });
  });
  if (configPresent) {
    throw new CofferError('E_REPO_EXISTS', `${backend.location} already holds a repository`, { subject: { repository: backend.location } });
  }
  for await (const entry of backend.list('')) {
    throw new CofferError('E_REPO_EXISTS', `${backend.location} is not empty (it holds ${entry.key}); choose an empty place for a new repository`, {
      subject: { repository: backend.location },
    });
  }
  const now = options.now ?? new Date();
  const encrypted = options.passphrase !== null;
  const config: RepositoryConfig = {
    format: 'coffer-repository',
    version,
    id: randomBytes(16).toString('hex'),
    created: now.toISOString(),
    encryption: encrypted ? 'aes-256-gcm' : 'none',
    objectId: encrypted ? 'hmac-sha256' : 'sha256',
    compression: { algorithm: 'zstd', level },
    blockSize,
    entriesPerPage: ENTRIES_PER_PAGE,
    ...(options.objectLock === undefined ? {} : { objectLock: { ...options.objectLock } }),
  };
  // A locked repository's config and key files are locked too (without them nothing reads).
  if (config.objectLock !== undefined) backend = new LockedBackend(backend, config.objectLock, new RetentionCache(config.id, undefined), () => options.now ?? new Date());
  const masterKey = options.passphrase === null ? null : newMasterKey();
  const keyFile = masterKey === null || options.passphrase === null ? null : await writeKeyFile(backend, masterKey, options.passphrase, { ...(options.kdf ? { kdf: options.kdf } : {}), now });
  // The config goes last, and only if no other init wrote one meanwhile (the empty-place check
  // above cannot see a concurrent init): a repository exists once its key is in place.
  const configBytes = encodeConfig(config);
  if (!(await backend.create(CONFIG_KEY, configBytes))) {
    const removed = keyFile === null ? true : await backend.delete(keyFileKey(keyFile.id)).then(() => true, () => false);
    throw new CofferError('E_REPO_EXISTS', `${backend.location}: another 'coffer init' created a repository here at the same moment; this one stopped before it counted${removed ? '' : ` (its key file keys/${keyFile?.id ?? ''} is under Object Lock and stays; it opens nothing of the other repository)`}`, {
      subject: { repository: backend.location },
    });
  }
  // Room kept for prune on a disk that backups fill (space-reserve.ts); none on an object store.
  await keepSpaceReserve(backend);
  if (masterKey === null || keyFile === null) {
    await backend.sync();
    return config;
  }
  // Encrypted: the key file and the config are recorded in the first digest record (§18), only
  // now that this init won: a losing one leaves no record and no stored-digest-key behind.
  const recorder = new DigestRecordingBackend(backend, deriveSigningKey(masterKey), { now: () => now });
  await recorder.vouch(keyFileKey(keyFile.id), keyFile.bytes);
  await recorder.vouch(CONFIG_KEY, configBytes);
  await recorder.sync();
  options.onStoredDigestKey?.(recorder.fingerprint);
  return config;
}

/**
 * Opens a repository: reads the config, then tries the passphrase on every key file.
 * Throws `E_REPO_NOT_FOUND`, `E_REPO_DAMAGED`, `E_REPO_VERSION`, `E_NO_PASSPHRASE` or
 * `E_WRONG_PASSPHRASE`.
 */
export async function openRepository(backend: Backend, options: OpenOptions = {}): Promise<Repository> {
  // The key files are listed and read while the config is (on S3 each is a round trip); an
  // unencrypted or missing repository just drops the answer.
  const keyFiles = listKeyFiles(backend);
  keyFiles.catch(() => undefined);
  let configBytes: Buffer;
  try {
    configBytes = await backend.get(CONFIG_KEY);
  } catch (error) {
    throw await configUnreadable(backend, error);
  }
  const config = decodeConfig(configBytes, backend.location);
  // Format 2 on S3: index segments are read from a local copy when this machine has them.
  if (config.version === 2 && options.chunkCache !== undefined) backend = new SegmentCachingBackend(backend, join(options.chunkCache.directory, config.id, 'segments'));
  if (config.objectLock !== undefined) {
    const directory = options.retentionCacheDirectory ?? options.chunkCache?.directory;
    backend = new LockedBackend(backend, config.objectLock, new RetentionCache(config.id, directory), options.clock);
  }
  // The threads load their code while the key is derived; they get it once it is.
  const pool = options.startThreads === true ? codecPoolFor(config, config.encryption === 'none' ? null : 'later', options.threads) : undefined;
  pool?.start();
  try {
    return await openWithKey(backend, config, options, keyFiles, pool);
  } catch (error) {
    await pool?.close();
    throw error;
  }
}

/**
 * Why the config could not be read, as the error a user can act on: no config in an empty
 * place, or in a file, is no repository (`E_REPO_NOT_FOUND`, exit 10); no config (or an empty
 * one, crash debris) beside a repository's objects, or a config that is a folder, is a
 * damaged repository (`E_REPO_DAMAGED`, exit 11), never "create one with init".
 */
async function configUnreadable(backend: Backend, error: unknown): Promise<unknown> {
  const subject = { repository: backend.location };
  const code = causeCode(error);
  if (code === 'ENOTDIR') return new CofferError('E_REPO_NOT_FOUND', `${backend.location} is not a Coffer repository (it is a file, not a folder)`, { subject, cause: error });
  if (code === 'EISDIR') return new CofferError('E_REPO_DAMAGED', `${backend.location}: its config is a folder, not the repository's config file`, { subject, cause: error });
  if (!(error instanceof CofferError && error.code === 'E_MISSING_OBJECT')) return error;
  // Key files and manifests say a repository was here (other files in the place do not).
  let other: string | undefined;
  try {
    for (const prefix of [KEYS_PREFIX, SNAPSHOTS_PREFIX]) {
      for await (const entry of backend.list(prefix)) {
        other ??= entry.key;
        break;
      }
    }
  } catch {
    // Not listable: say what was asked.
  }
  if (other !== undefined) {
    return new CofferError('E_REPO_DAMAGED', `${backend.location} holds a repository's objects (${other}…) but no config, or an empty one (lost in a crash, or deleted): put the config back from a copy of this repository (coffer repair cannot make one)`, { subject });
  }
  return new CofferError('E_REPO_NOT_FOUND', `${backend.location} is not a Coffer repository (no config); create one with 'coffer init'`, { subject });
}

/** The errno code behind an error (a backend keeps the system's error as its cause). */
function causeCode(error: unknown): string | undefined {
  for (let e = error, depth = 0; e !== undefined && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code) && !code.includes('_')) return code;
  }
  return undefined;
}

/** The worker pool of a repository with `config` (`'later'`: its key is given once derived). */
function codecPoolFor(config: RepositoryConfig, masterKey: MasterKey | null | 'later', threads: number | undefined): CodecPool {
  return new CodecPool({ masterKey, compressionLevel: config.compression.level }, threads === undefined ? {} : { threads });
}

/** The rest of {@link openRepository}, once the config is read: the key, and the repository. */
async function openWithKey(backend: Backend, config: RepositoryConfig, options: OpenOptions, keyFiles: Promise<KeyInfo[]>, pool: CodecPool | undefined): Promise<Repository> {
  const opened = (masterKey: MasterKey | null, keyId: string | null): Repository => {
    // A key holder records the digest of every object it writes (digests/digest-recording-backend.ts).
    const writer = masterKey === null ? backend : new DigestRecordingBackend(backend, deriveSigningKey(masterKey));
    if (masterKey !== null) pool?.giveKey(masterKey);
    const repo = new Repository(writer, config, masterKey, keyId, options.threads, pool);
    // Format 2 has no chunk objects to cache (its index segments are cached above).
    if (options.chunkCache !== undefined && config.version === 1) repo.useChunkCache(options.chunkCache);
    return repo;
  };
  if (config.encryption === 'none') return opened(null, null);
  const passphrase = typeof options.passphrase === 'function' ? await options.passphrase() : options.passphrase;
  if (passphrase === undefined) {
    throw new CofferError('E_NO_PASSPHRASE', `${backend.location} is encrypted: give a passphrase (${options.passphraseSources ?? 'COFFER_PASSWORD, COFFER_PASSWORD_FILE or --password-file'})`, {
      subject: { repository: backend.location },
    });
  }
  const keys = await keyFiles;
  if (keys.length === 0) {
    throw new CofferError('E_REPO_DAMAGED', `${backend.location} is encrypted but has no key files`, { subject: { repository: backend.location } });
  }
  for (const key of keys) {
    const masterKey = await unwrapMasterKey(key, passphrase);
    if (masterKey !== null) return opened(masterKey, key.id);
  }
  throw new CofferError('E_WRONG_PASSPHRASE', `the passphrase opens none of the ${keys.length} key(s) of ${backend.location}`, {
    subject: { repository: backend.location },
  });
}

/** `E_USAGE` unless `backend` can lock objects with `policy`. */
async function checkLockable(backend: Backend, policy: ObjectLockPolicy): Promise<void> {
  const refuse = (message: string) => new CofferError('E_USAGE', message, { subject: { repository: backend.location } });
  const given: { days: unknown; mode: unknown } = policy;
  if (!isValidLockPolicy(given)) throw refuse(`an Object Lock of ${String(given.days)} day(s) in mode ${String(given.mode)} is not possible: give a mode compliance or governance and 0 < days <= 36500`);
  if (backend.objectLock === undefined) throw refuse(`${backend.location} cannot lock objects: --lock-days needs an S3 bucket with Object Lock enabled`);
  if (!(await backend.objectLock.enabled())) {
    throw refuse(`the bucket of ${backend.location} does not have Object Lock enabled; create the bucket with it (aws s3api create-bucket --object-lock-enabled-for-bucket …), it cannot be turned on later on every store`);
  }
}

async function listKeyFiles(backend: Backend): Promise<KeyInfo[]> {
  const reads: Promise<KeyInfo>[] = [];
  for await (const entry of backend.list(KEYS_PREFIX)) {
    const id = entry.key.slice(KEYS_PREFIX.length);
    const read = backend.get(entry.key).then((bytes) => ({ id, ...parseKeyFile(bytes, entry.key) }));
    read.catch(() => undefined); // awaited below; a listing that fails first must not leave it unhandled
    reads.push(read);
  }
  const keys = await Promise.all(reads);
  return keys.sort((a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id));
}

async function writeKeyFile(backend: Backend, masterKey: MasterKey, passphrase: string, options: { kdf?: KdfParams; now?: Date }): Promise<{ id: string; bytes: Buffer }> {
  const file = await wrapMasterKey(masterKey, passphrase, { kdf: options.kdf ?? kdfForNewKeys(), now: options.now ?? new Date() });
  const id = randomBytes(8).toString('hex');
  const bytes = Buffer.from(`${JSON.stringify(file, null, 2)}\n`, 'utf8');
  await backend.put(keyFileKey(id), bytes);
  await backend.sync();
  return { id, bytes };
}
