import { randomInt } from 'node:crypto';
import { forEachLimited } from '../concurrency/index.js';
import { CofferError } from '../errors/index.js';
import { ObjectKind } from './format/envelope.js';
import { decodeVerificationRecord, encodeVerificationRecord, subsetContains, type VerificationRecord, type VerificationSubset } from './format/verification-record.js';
import { addSnapshotNote, deleteSnapshotNote, listSnapshotNotes } from './snapshot-notes.js';
import type { SnapshotVerification } from './verify.js';
import { verificationKey, VERIFICATIONS_PREFIX } from './layout.js';
import type { Repository } from './repository.js';

/** Stores the record of a verify run (see format/verification-record.ts). */
export async function addVerificationRecord(repo: Repository, record: VerificationRecord): Promise<string> {
  const plaintext = encodeVerificationRecord(record);
  const objectId = repo.codec.idOf(plaintext);
  const id = objectId.toString('hex');
  await repo.backend.put(verificationKey(id), repo.codec.seal(plaintext, ObjectKind.verificationRecord, objectId));
  return id;
}

/** Every verification record, oldest first; damaged ones are reported and skipped. */
export async function listVerificationRecords(repo: Repository, onDamaged?: (key: string, error: CofferError) => void): Promise<VerificationRecord[]> {
  const keys: string[] = [];
  for await (const entry of repo.backend.list(VERIFICATIONS_PREFIX)) if (/^verifications\/[0-9a-f]{64}$/.test(entry.key)) keys.push(entry.key);
  const records: VerificationRecord[] = [];
  await forEachLimited(keys, 16, async (key) => {
    try {
      const id = Buffer.from(key.slice(VERIFICATIONS_PREFIX.length), 'hex');
      records.push(decodeVerificationRecord(repo.codec.open(await repo.backend.get(key), ObjectKind.verificationRecord, key, id), key));
    } catch (error) {
      if (error instanceof CofferError && error.code === 'E_CORRUPT_OBJECT' && onDamaged) return onDamaged(key, error);
      if (error instanceof CofferError && error.code === 'E_MISSING_OBJECT') return;
      throw error;
    }
  });
  return records.sort((a, b) => a.time.localeCompare(b.time));
}

/**
 * When each chunk was last read and found intact, from the verification records: a function
 * from a chunk id to a time in ms since 1970, or undefined when no record read it.
 */
export function lastVerifiedLookup(records: readonly VerificationRecord[]): (id: Uint8Array, hex: string) => number | undefined {
  const sorted = [...records].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  // A full read (every chunk, no `since`) decides every chunk by itself: read then, or damaged.
  // The runs before the last one change nothing, and a repository verified every night for
  // years would replay them all for every chunk of every snapshot.
  let from = 0;
  sorted.forEach((r, i) => {
    if (r.subset.kind === 'all' && r.since === null) from = i;
  });
  const parsed = sorted.slice(from).map((r) => ({ subset: r.subset, since: r.since, time: Date.parse(r.time), damaged: new Set(r.damaged) }));
  return (id, hex) => {
    // Replays the runs oldest first: a run read the chunk unless its `since` let it skip it
    // (then the older read still stands: skipping never makes a chunk look fresher).
    let last: number | undefined;
    for (const run of parsed) {
      if (!subsetContains(run.subset, id)) continue;
      if (run.damaged.has(hex)) last = undefined;
      else if (run.since === null || last === undefined || last < run.time - run.since) last = run.time;
    }
    return last;
  };
}

/** The note kind under which each snapshot's verified share is recorded after a verify run. */
export const VERIFICATION_NOTE = 'verification';

/**
 * `N/M` (the N-th of M slices by chunk id) or `P%` (a random sample, new every run), as
 * `coffer verify --read-data-subset` and a verify task take it; `what` names the input in the
 * error. @throws E_USAGE.
 */
export function parseVerificationSubset(text: string, what: string): VerificationSubset {
  const slice = /^(\d{1,6})\/(\d{1,6})$/.exec(text);
  if (slice !== null) {
    const n = Number(slice[1]);
    const of = Number(slice[2]);
    if (n >= 1 && of >= 1 && n <= of) return { kind: 'slice', n, of };
  }
  const percent = /^(\d{1,3}(?:\.\d+)?)%$/.exec(text);
  if (percent !== null) {
    const p = Number(percent[1]);
    if (p > 0 && p <= 100) return p === 100 ? { kind: 'all' } : { kind: 'sample', percent: p, seed: randomInt(2 ** 32 - 1) };
  }
  throw new CofferError('E_USAGE', `${what} ${text}: give N/M (the N-th of M slices, e.g. 3/7 on the 3rd day of a week) or P% (e.g. 10%)`);
}

/** Replaces each snapshot's verification note with this run's figures. */
export async function recordSnapshotVerifications(repo: Repository, verification: readonly SnapshotVerification[]): Promise<void> {
  const previous = await listSnapshotNotes(repo, { kind: VERIFICATION_NOTE, onDamaged: () => undefined });
  const older = new Map<string, string[]>();
  for (const note of previous) older.set(note.snapshot, [...(older.get(note.snapshot) ?? []), note.id]);
  for (const v of verification) {
    await addSnapshotNote(repo, v.snapshot, VERIFICATION_NOTE, { chunks: v.chunks, verifiedChunks: v.verifiedChunks, fullyVerifiedAt: v.fullyVerifiedAt });
    for (const id of older.get(v.snapshot) ?? []) await deleteSnapshotNote(repo, v.snapshot, id);
  }
}
