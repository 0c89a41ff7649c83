import { forEachLimited } from '../../concurrency/index.js';
import { CofferError, isCofferError } from '../../errors/index.js';
import { decodeConfig } from '../format/config.js';
import { ObjectKind } from '../format/envelope.js';
import { decodeTrailer, PACK_FOOTER_SIZE, trailerRange, UNADDRESSED_ID } from '../format/pack.js';
import { CONFIG_KEY, idFromKey, KEYS_PREFIX, PACKS_PREFIX, QUARANTINE_PREFIX } from '../layout.js';
import type { Repository } from '../repository.js';
import { isCoveredKey } from './covered-keys.js';
import { digestRecorderOf, type DigestRecordingBackend } from './digest-recording-backend.js';
import { DigestState, type StoredProblem } from './digest-state.js';

/** What {@link coverStoredObjects} did. */
export interface CoverReport {
  /** Objects that had no trusted digest, were authenticated, and now have one. */
  objectsCovered: number;
  bytesRead: number;
  /** Objects left not covered, and why. */
  skipped: { key: string; reason: string }[];
  /** Digest records that are not trusted (their objects were looked at again). */
  rejectedRecords: StoredProblem[];
}

/** How each kind of object is authenticated before the key holder vouches for its bytes. */
const ENVELOPES: { prefix: string; kind: ObjectKind; id: (key: string) => string | undefined }[] = [
  { prefix: 'chunks/', kind: ObjectKind.chunk, id: (key) => /^chunks\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(key)?.[1] },
  { prefix: 'indexes/', kind: ObjectKind.indexPage, id: (key) => /^indexes\/[0-9a-f]{2}\/([0-9a-f]{64})$/.exec(key)?.[1] },
  { prefix: 'snapshots/', kind: ObjectKind.manifest, id: (key) => /^snapshots\/([0-9a-f]{64})$/.exec(key)?.[1] },
  { prefix: 'notes/', kind: ObjectKind.snapshotNote, id: (key) => /^notes\/[0-9a-f]{64}\.([0-9a-f]{64})$/.exec(key)?.[1] },
  { prefix: 'protected/', kind: ObjectKind.protectionMarker, id: (key) => /^protected\/[0-9a-f]{64}\.([0-9a-f]{64})$/.exec(key)?.[1] },
  { prefix: 'tags/', kind: ObjectKind.tagRecord, id: (key) => /^tags\/[0-9a-f]{64}\.([0-9a-f]{64})$/.exec(key)?.[1] },
  { prefix: 'verifications/', kind: ObjectKind.verificationRecord, id: (key) => /^verifications\/([0-9a-f]{64})$/.exec(key)?.[1] },
  { prefix: 'segments/', kind: ObjectKind.indexSegment, id: (key) => /^segments\/([0-9a-f]{64})$/.exec(key)?.[1] },
];

/**
 * `coffer verify --cover-stored`, run by a key holder: gives a signed digest
 * (docs/repository-format.md §18) to every object that has none — objects written before
 * stored digests existed, which a backup never rewrites — after checking that it is genuine:
 * each envelope is authenticated under its id (AES-GCM, §5), the config must be the one the
 * repository was opened with, and of the key files only the one that opened it counts.
 * Format 2: a pack is vouched for when its id is the SHA-256 of its bytes and its trailer and
 * every frame authenticate; an index segment like any envelope. Quarantined chunks and
 * anything that does not authenticate are left not covered (and listed). Reads every object that needs it, `concurrency` at a time, on the worker pool.
 */
export async function coverStoredObjects(repo: Repository, options: { concurrency?: number; signal?: AbortSignal; onProgress?: (done: number) => void } = {}): Promise<CoverReport> {
  const recorder = digestRecorderOf(repo);
  if (recorder === undefined) {
    throw new CofferError('E_USAGE', `${repo.location} is not encrypted: it has no signed digests to cover objects with`, { subject: { repository: repo.location } });
  }
  const backend: DigestRecordingBackend = recorder;
  const report: CoverReport = { objectsCovered: 0, bytesRead: 0, skipped: [], rejectedRecords: [] };
  const concurrency = options.concurrency ?? 8;
  const state = new DigestState(backend.inner, backend.publicKey, { concurrency, signal: options.signal, onRejected: (problem) => report.rejectedRecords.push(problem) });
  await state.update();
  async function* uncovered(): AsyncGenerator<string> {
    for await (const entry of backend.inner.list('')) {
      if (isCoveredKey(entry.key) && state.expected.get(entry.key)?.op !== 'stored') yield entry.key;
    }
  }
  await forEachLimited(uncovered(), concurrency, async (key) => {
    if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'verify --cover-stored interrupted (run it again: what it covered is recorded)');
    let bytes: Buffer;
    try {
      bytes = await backend.inner.get(key);
    } catch (error) {
      if (isCofferError(error) && error.code === 'E_MISSING_OBJECT') return; // deleted since listed
      throw error;
    }
    report.bytesRead += bytes.length;
    const why = await notGenuine(repo, key, bytes);
    if (why !== null) {
      report.skipped.push({ key, reason: why });
      return;
    }
    await backend.vouch(key, bytes);
    report.objectsCovered++;
    options.onProgress?.(report.objectsCovered);
  });
  await backend.flush();
  await backend.inner.sync();
  report.skipped.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return report;
}

/** Null when the key holder can vouch for these bytes under this key, else why not. */
async function notGenuine(repo: Repository, key: string, bytes: Buffer): Promise<string | null> {
  if (key === CONFIG_KEY) {
    try {
      const config = decodeConfig(bytes, key);
      return JSON.stringify(config) === JSON.stringify(repo.config) ? null : 'differs from the config the repository was opened with';
    } catch (error) {
      if (isCofferError(error)) return error.message;
      throw error;
    }
  }
  if (key.startsWith(KEYS_PREFIX)) return key === `${KEYS_PREFIX}${repo.openedWithKey ?? ''}` ? null : 'a key file other than the one in use cannot be authenticated with this passphrase';
  if (key.startsWith(QUARANTINE_PREFIX)) return 'a quarantined (damaged) chunk';
  if (key.startsWith(PACKS_PREFIX)) return packNotGenuine(repo, key, bytes);
  const envelope = ENVELOPES.find((e) => key.startsWith(e.prefix));
  const id = envelope?.id(key);
  if (envelope === undefined || id === undefined) return 'not a known kind of object';
  try {
    // A copy goes to the worker (it takes the buffer): the bytes vouched for are these.
    await repo.pool.open(Buffer.from(bytes), { kind: envelope.kind, name: key, id: Buffer.from(id, 'hex'), rehash: false, into: 'discard' });
    return null;
  } catch (error) {
    if (isCofferError(error) && error.code === 'E_CORRUPT_OBJECT') return `does not authenticate (${error.message}): coffer verify --read-data tells more`;
    throw error;
  }
}

/** Null when a pack (format 2) is what its key holder wrote: its id, its trailer and every frame check. */
async function packNotGenuine(repo: Repository, key: string, bytes: Buffer): Promise<string | null> {
  const id = idFromKey(key);
  if (id === null) return 'not a known kind of object';
  try {
    if (!(await repo.pool.sha256(Buffer.from(bytes))).equals(Buffer.from(id, 'hex'))) return 'its bytes do not hash to its id: coffer verify --read-data tells more';
    if (bytes.length < PACK_FOOTER_SIZE) return 'too short to be a pack';
    const range = trailerRange(bytes.subarray(bytes.length - PACK_FOOTER_SIZE), bytes.length, key);
    const trailer = decodeTrailer(
      repo.codec.open(bytes.subarray(range.offset, range.offset + range.length), ObjectKind.packTrailer, key, UNADDRESSED_ID, { rehash: false, unaddressed: true }),
      bytes.length,
      key,
    );
    for (const frame of trailer.frames) {
      await repo.pool.openFrame(Buffer.from(bytes.subarray(frame.offset, frame.offset + frame.length)), { name: `${key}@${frame.offset}`, rehash: false, keep: false });
    }
    return null;
  } catch (error) {
    if (isCofferError(error) && error.code === 'E_CORRUPT_OBJECT') return `does not authenticate (${error.message}): coffer verify --read-data tells more`;
    throw error;
  }
}
