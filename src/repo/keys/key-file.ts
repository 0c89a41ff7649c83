/**
 * Key files, `keys/<id>` in the repository: one per passphrase that opens it. JSON, version 1:
 *
 * ```json
 * {
 *   "version": 1,
 *   "created": "2026-11-25T20:00:00.000Z",   // ISO 8601 UTC
 *   "hostname": "backup01", "username": "root",
 *   "kdf": { "name": "scrypt", "N": 65536, "r": 8, "p": 1, "salt": "<base64, 32 bytes>" },
 *   "wrap": { "cipher": "aes-256-gcm", "nonce": "<base64, 12 bytes>",
 *             "data": "<base64: AES-256-GCM of the 64-byte master key, then the 16-byte tag>" }
 * }
 * ```
 * The wrapping key is scrypt(passphrase, salt, N, r, p, 32 bytes). The default parameters
 * (N = 2^16, r = 8, p = 1: 64 MiB and about 0.2 s here) follow restic's choice of a cost
 * that a backup run pays once and a brute-force attacker pays per guess. Any parameters
 * within bounds open; `init` and `key add` write the defaults (the cheapest allowed under
 * COFFER_TESTONLY_WEAKEN_KDF=1, for Coffer's own tests: see {@link kdfForNewKeys}).
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCallback } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { CofferError } from '../../errors/index.js';
import { joinMasterKey, MASTER_KEY_SIZE, splitMasterKey, type MasterKey } from './master-key.js';

/** scrypt cost parameters. */
export interface KdfParams {
  N: number;
  r: number;
  p: number;
}

/** Defaults for new keys; see the module comment for why. */
export const DEFAULT_KDF: KdfParams = { N: 2 ** 16, r: 8, p: 1 };

/** The cheapest parameters a key file may hold (N at its lower bound): what {@link TESTONLY_WEAKEN_KDF} writes. */
export const WEAKEST_KDF: KdfParams = { N: 2 ** 10, r: 8, p: 1 };

/**
 * Set to `1`, new keys get {@link WEAKEST_KDF}: about 2 ms to derive instead of about 0.3 s.
 * Coffer's own test suite sets it (scripts/run-tests.mjs): it runs `coffer` some thousands of
 * times, each paying the derivation once, minutes of a CI run (as borg's
 * BORG_TESTONLY_WEAKEN_KDF does for its tests). Never for a repository that holds real data:
 * a guess at its passphrase costs an attacker 64 times less. Only new keys are affected (the
 * key file records its parameters); `key passwd` without it rewrites a key at the default cost.
 */
export const TESTONLY_WEAKEN_KDF = 'COFFER_TESTONLY_WEAKEN_KDF';

/** The parameters a new key gets: {@link DEFAULT_KDF}, or {@link WEAKEST_KDF} under {@link TESTONLY_WEAKEN_KDF}. */
export function kdfForNewKeys(env: NodeJS.ProcessEnv = process.env): KdfParams {
  return env[TESTONLY_WEAKEN_KDF] === '1' ? WEAKEST_KDF : DEFAULT_KDF;
}

/** A parsed key file. */
export interface KeyFile {
  version: 1;
  created: string;
  hostname: string;
  username: string;
  kdf: KdfParams & { name: 'scrypt'; salt: string };
  wrap: { cipher: 'aes-256-gcm'; nonce: string; data: string };
}

/** Wraps `masterKey` under `passphrase` into a new key file. */
export async function wrapMasterKey(
  masterKey: MasterKey,
  passphrase: string,
  options: { kdf?: KdfParams; now: Date },
): Promise<KeyFile> {
  const kdf = options.kdf ?? kdfForNewKeys();
  const salt = randomBytes(32);
  const wrappingKey = await deriveKey(passphrase, salt, kdf);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', wrappingKey, nonce);
  const data = Buffer.concat([cipher.update(joinMasterKey(masterKey)), cipher.final(), cipher.getAuthTag()]);
  let username = 'unknown';
  try {
    username = userInfo().username;
  } catch {
    // no passwd entry for this uid: keep 'unknown'
  }
  return {
    version: 1,
    created: options.now.toISOString(),
    hostname: hostname(),
    username,
    kdf: { name: 'scrypt', ...kdf, salt: salt.toString('base64') },
    wrap: { cipher: 'aes-256-gcm', nonce: nonce.toString('base64'), data: data.toString('base64') },
  };
}

/** The master key, or null when `passphrase` is not the one this key file was made with. */
export async function unwrapMasterKey(keyFile: KeyFile, passphrase: string): Promise<MasterKey | null> {
  const wrappingKey = await takeDerivedAhead(passphrase, keyFile) ?? await deriveKey(passphrase, Buffer.from(keyFile.kdf.salt, 'base64'), keyFile.kdf);
  const data = Buffer.from(keyFile.wrap.data, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', wrappingKey, Buffer.from(keyFile.wrap.nonce, 'base64'));
  decipher.setAuthTag(data.subarray(data.length - 16));
  try {
    const bytes = Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]);
    return splitMasterKey(bytes);
  } catch {
    return null;
  }
}

/** Parses and validates a key file; `E_REPO_DAMAGED` when it is not one. */
export function parseKeyFile(bytes: Uint8Array, name: string): KeyFile {
  const damaged = (why: string) =>
    new CofferError('E_REPO_DAMAGED', `key file ${name} is damaged: ${why}`, { subject: { object: name } });
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw damaged('not JSON');
  }
  const file = value as Partial<KeyFile>;
  if (typeof file !== 'object' || file === null) throw damaged('not an object');
  if (file.version !== 1) throw damaged(`version ${String(file.version)}`);
  const kdf = file.kdf;
  if (kdf?.name !== 'scrypt' || typeof kdf.salt !== 'string') throw damaged('unknown kdf');
  if (!isPowerOfTwo(kdf.N) || kdf.N < 2 ** 10 || kdf.N > 2 ** 22) throw damaged('scrypt N out of bounds');
  if (!Number.isInteger(kdf.r) || kdf.r < 1 || kdf.r > 32 || !Number.isInteger(kdf.p) || kdf.p < 1 || kdf.p > 16) {
    throw damaged('scrypt r or p out of bounds');
  }
  const wrap = file.wrap;
  if (wrap?.cipher !== 'aes-256-gcm' || typeof wrap.nonce !== 'string' || typeof wrap.data !== 'string') throw damaged('bad wrap');
  if (Buffer.from(wrap.data, 'base64').length !== MASTER_KEY_SIZE + 16) throw damaged('wrapped key has the wrong length');
  return {
    version: 1,
    created: String(file.created ?? ''),
    hostname: String(file.hostname ?? ''),
    username: String(file.username ?? ''),
    kdf,
    wrap,
  };
}

function isPowerOfTwo(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n > 1 && (n & (n - 1)) === 0;
}

function deriveKey(passphrase: string, salt: Buffer, kdf: KdfParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const maxmem = 128 * kdf.N * kdf.r * kdf.p + 32 * 1024 * 1024;
    scryptCallback(passphrase.normalize('NFC'), salt, 32, { N: kdf.N, r: kdf.r, p: kdf.p, maxmem }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

/**
 * Wrapping keys whose derivation started ahead of the repository's opening
 * ({@link deriveAhead}), by salt and parameters; each is taken once, by the unwrap of the same
 * key file with the same passphrase, and forgotten.
 */
const derivedAhead = new Map<string, { passphrase: string; key: Promise<Buffer> }>();

function aheadKey(kdf: KeyFile['kdf']): string {
  return `${kdf.N}:${kdf.r}:${kdf.p}:${kdf.salt}`;
}

/**
 * Starts deriving `keyFile`'s wrapping key from `passphrase` now (scrypt runs on libuv's
 * thread pool), so that a command can overlap it with loading its code; the
 * {@link unwrapMasterKey} of that key file with that passphrase then takes the result. A
 * failure is reported by that unwrap, never here.
 */
export function deriveAhead(keyFile: KeyFile, passphrase: string): void {
  const id = aheadKey(keyFile.kdf);
  if (derivedAhead.has(id)) return;
  const key = deriveKey(passphrase, Buffer.from(keyFile.kdf.salt, 'base64'), keyFile.kdf);
  key.catch(() => undefined); // awaited (and reported) by the unwrap that takes it
  derivedAhead.set(id, { passphrase, key });
}

async function takeDerivedAhead(passphrase: string, keyFile: KeyFile): Promise<Buffer | undefined> {
  const id = aheadKey(keyFile.kdf);
  const ahead = derivedAhead.get(id);
  if (ahead === undefined) return undefined;
  derivedAhead.delete(id);
  return ahead.passphrase === passphrase ? ahead.key : undefined;
}
