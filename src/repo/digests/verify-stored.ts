import { createHash } from 'node:crypto';
import { forEachLimited } from '../../concurrency/index.js';
import { CofferError, isCofferError } from '../../errors/index.js';
import type { Backend } from '../backend/backend.js';
import { decodeConfig } from '../format/config.js';
import { decodeDigestKey } from '../format/digest-key.js';
import { fingerprintOf } from '../keys/signing-key.js';
import { CONFIG_KEY, DIGEST_KEY_KEY } from '../layout.js';
import { isCoveredKey } from './covered-keys.js';

/** Options of {@link verifyStored}. */
export interface StoredVerifyOptions {
  /**
   * The fingerprint the key holder gave out of band (64 hex, `sha256:` allowed before it).
   * Without it the stored public key is used as found, and the report says it is unverified.
   */
  trust?: string;
  /** Objects read at once (default 8). */
  concurrency?: number;
  onProgress?: (progress: StoredVerifyProgress) => void;
  signal?: AbortSignal;
}

export interface StoredVerifyProgress {
  phase: 'records' | 'objects';
  /** Records checked, or objects read. */
  done: number;
  bytesRead: number;
  /** Objects phase: the bytes the records say are stored (what a full read reads). */
  bytesExpected: number;
}

import { DigestState, type RecordedState, type StoredProblem } from './digest-state.js';

export type { StoredProblem } from './digest-state.js';

/** The result of {@link verifyStored}. */
export interface StoredVerifyReport {
  /** The fingerprint of the stored public key. */
  fingerprint: string;
  /** True when it equals the `trust` given; false when none was given. */
  trusted: boolean;
  /** Digest records whose signature checked. */
  records: number;
  /** When the newest of them was written (ISO 8601 UTC), null when there is none. */
  newestRecord: string | null;
  /** Objects read (the digest records not counted). */
  objectsRead: number;
  /** Objects read and found as recorded. */
  objectsIntact: number;
  bytesRead: number;
  /** Damaged or missing objects, and records that cannot be trusted: each one is damage. */
  damaged: StoredProblem[];
  /** Objects no trusted record covers (written before digests existed, or by someone else). */
  notCovered: { key: string; size: number }[];
}


/**
 * `coffer verify --stored`: proves that every object's stored bytes are the ones the key holder
 * wrote, with no key (docs/repository-format.md §18). Loads the public key and checks it
 * against `trust`; checks every digest record's id and signature; replays them oldest first
 * into the expected state of every key (stored with a length and SHA-256, or deleted); then
 * lists the repository and reads every covered object (in parallel, one object in memory per
 * lane), comparing length and SHA-256. Covered objects not found are missing, unless a record
 * written meanwhile (a prune running at the same time) deleted them.
 *
 * Memory: the expected state, about 250 bytes per recorded object (measured: 500,000 chunk
 * keys take 240 bytes each of heap; a 1 TB repository at the default block size, 4 million
 * chunks, about 1 GB), plus one object per lane.
 *
 * Throws `E_REPO_NOT_FOUND` (no config), `E_USAGE` (a malformed `trust`, an unencrypted
 * repository), `E_VERIFY_FAILED` (no public key, or one whose fingerprint is not `trust`).
 */
export async function verifyStored(backend: Backend, options: StoredVerifyOptions = {}): Promise<StoredVerifyReport> {
  const trust = options.trust === undefined ? undefined : parseFingerprint(options.trust);
  if (!(await backend.has(CONFIG_KEY))) {
    throw new CofferError('E_REPO_NOT_FOUND', `${backend.location} is not a Coffer repository (no config)`, { subject: { repository: backend.location } });
  }
  const config = decodeConfig(await backend.get(CONFIG_KEY), backend.location);
  if (config.encryption === 'none') {
    throw new CofferError('E_USAGE', `${backend.location} is not encrypted, so it has no signed digests: 'coffer verify --read-data' needs no passphrase there`, {
      subject: { repository: backend.location },
    });
  }
  if (!(await backend.has(DIGEST_KEY_KEY))) {
    throw new CofferError('E_VERIFY_FAILED', `${backend.location} has no ${DIGEST_KEY_KEY}: no key holder has written to it since stored digests exist, so nothing can be checked without the key`, {
      subject: { repository: backend.location },
    });
  }
  const publicKey = decodeDigestKey(await backend.get(DIGEST_KEY_KEY), `${backend.location}/${DIGEST_KEY_KEY}`);
  const fingerprint = fingerprintOf(publicKey);
  if (trust !== undefined && trust !== fingerprint) {
    throw new CofferError(
      'E_VERIFY_FAILED',
      `the ${DIGEST_KEY_KEY} of ${backend.location} has fingerprint ${fingerprint}, not the trusted ${trust}: refusing to check with it (it was replaced, or this is another repository)`,
      { subject: { repository: backend.location } },
    );
  }
  const report: StoredVerifyReport = { fingerprint, trusted: trust !== undefined, records: 0, newestRecord: null, objectsRead: 0, objectsIntact: 0, bytesRead: 0, damaged: [], notCovered: [] };
  const concurrency = options.concurrency ?? 8;
  const checkAbort = () => {
    if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'verify --stored interrupted');
  };

  // 1. Records: check each, then replay the trusted ones oldest first.
  const digests = new DigestState(backend, publicKey, {
    concurrency,
    signal: options.signal,
    onRejected: (problem) => report.damaged.push(problem),
    onRecord: () => options.onProgress?.({ phase: 'records', done: digests.records, bytesRead: digests.bytesRead, bytesExpected: 0 }),
  });
  await digests.update();
  const expected = digests.expected;
  report.bytesRead = digests.bytesRead;
  let bytesExpected = 0;
  for (const recorded of expected.values()) bytesExpected += recorded.length;
  const bytesOfRecords = report.bytesRead;

  // 2. Objects: read every covered one; note the others.
  let done = 0;
  async function* covered(): AsyncGenerator<{ key: string; size: number; state: RecordedState }> {
    for await (const entry of backend.list('')) {
      if (!isCoveredKey(entry.key)) continue;
      const state = expected.get(entry.key);
      if (state === undefined || state.op === 'deleted') {
        report.notCovered.push({ key: entry.key, size: entry.size });
        continue;
      }
      state.seen = true;
      yield { key: entry.key, size: entry.size, state };
    }
  }
  await forEachLimited(covered(), concurrency, async ({ key, size, state }) => {
    checkAbort();
    const by = `recorded by ${state.record}`;
    if (size !== state.length) {
      report.damaged.push({ key, problem: 'wrong-length', message: `${size} bytes stored, ${state.length} written (${by})` });
      return;
    }
    let bytes: Buffer;
    try {
      bytes = await backend.get(key);
    } catch (error) {
      if (!isCofferError(error) || error.code !== 'E_MISSING_OBJECT') throw error;
      state.seen = false; // gone since listed: judged with the missing ones below
      return;
    }
    report.bytesRead += bytes.length;
    report.objectsRead++;
    if (bytes.length !== state.length) {
      report.damaged.push({ key, problem: 'wrong-length', message: `${bytes.length} bytes stored, ${state.length} written (${by})` });
    } else if (createHash('sha256').update(bytes).digest('binary') !== state.sha256) {
      report.damaged.push({ key, problem: 'corrupt', message: `the stored bytes differ from those written (SHA-256 mismatch, ${by})` });
    } else report.objectsIntact++;
    done++;
    options.onProgress?.({ phase: 'objects', done, bytesRead: report.bytesRead - bytesOfRecords, bytesExpected });
  });

  // 3. Missing: recorded as stored, not found. Records written since the first pass (a prune
  //    deleting at the same time) are read first, so their deletions are not reported.
  //    A key that a new record names was written or deleted after the listing: not judged.
  const unseen = [...expected.entries()].filter(([, state]) => state.op === 'stored' && !state.seen).map(([key, state]) => ({ key, record: state.record }));
  if (unseen.length > 0) await digests.update();
  for (const { key, record } of unseen) {
    const state = expected.get(key) as RecordedState;
    if (state.record === record) report.damaged.push({ key, problem: 'missing', message: `not found, but written (recorded by ${state.record})` });
  }
  report.records = digests.records;
  report.newestRecord = digests.newestMs === null ? null : new Date(digests.newestMs).toISOString();
  report.damaged.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  report.notCovered.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return report;
}

/** A fingerprint as given on the command line: 64 hex, optionally after `sha256:`. */
export function parseFingerprint(text: string): string {
  const hex = text.trim().toLowerCase().replace(/^sha256:/, '').replace(/:/g, '');
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new CofferError('E_USAGE', `--trust ${text}: a fingerprint is 64 hex digits (coffer init and coffer key list print it)`);
  return hex;
}
