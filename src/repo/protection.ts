import { CofferError } from '../errors/index.js';
import { ObjectKind } from './format/envelope.js';
import { decodeProtectionMarker, encodeProtectionMarker, PROTECTION_REASON } from './format/protection.js';
import { PROTECTED_PREFIX, protectionKey, snapshotKey } from './layout.js';
import type { Repository } from './repository.js';

/** A snapshot's protection, as its newest marker (format/protection.ts) records it. */
export interface Protection {
  snapshot: string;
  /** When it was protected (ISO 8601 UTC); null when the marker is damaged. */
  time: string | null;
  reason: string | null;
  /**
   * The marker exists but does not open (corrupt or tampered). The snapshot still counts as
   * protected: a damaged marker must never make a snapshot removable.
   */
  damaged: boolean;
}

const MARKER_KEY = /^protected\/([0-9a-f]{64})\.([0-9a-f]{64})$/;

interface MarkerKey {
  key: string;
  snapshot: string;
  marker: string;
}

async function markerKeys(repo: Repository, prefix: string): Promise<MarkerKey[]> {
  const keys: MarkerKey[] = [];
  for await (const entry of repo.backend.list(prefix)) {
    const match = MARKER_KEY.exec(entry.key);
    if (match !== null) keys.push({ key: entry.key, snapshot: match[1] as string, marker: match[2] as string });
  }
  return keys;
}

async function readMarker(repo: Repository, found: MarkerKey): Promise<Protection> {
  try {
    const plaintext = repo.codec.open(await repo.backend.get(found.key), ObjectKind.protectionMarker, found.key, Buffer.from(found.marker, 'hex'));
    const marker = decodeProtectionMarker(plaintext, found.key);
    if (marker.snapshot !== found.snapshot) {
      throw new CofferError('E_CORRUPT_OBJECT', `protection marker ${found.key} names snapshot ${marker.snapshot}`, { subject: { object: found.key } });
    }
    return { snapshot: found.snapshot, time: marker.time, reason: marker.reason, damaged: false };
  } catch (error) {
    // A marker deleted between list and get (unprotect running at the same time) is gone, not damaged.
    if (error instanceof CofferError && error.code === 'E_MISSING_OBJECT') throw error;
    if (error instanceof CofferError && error.code === 'E_CORRUPT_OBJECT') return { snapshot: found.snapshot, time: null, reason: null, damaged: true };
    throw error;
  }
}

/** The newest of several markers of one snapshot: sound ones first, then by time. */
function newest(a: Protection | undefined, b: Protection): Protection {
  if (a === undefined) return b;
  if (a.damaged !== b.damaged) return a.damaged ? b : a;
  return (b.time ?? '') > (a.time ?? '') ? b : a;
}

async function protectionsUnder(repo: Repository, prefix: string): Promise<Map<string, Protection>> {
  const result = new Map<string, Protection>();
  for (const found of await markerKeys(repo, prefix)) {
    let protection: Protection;
    try {
      protection = await readMarker(repo, found);
    } catch (error) {
      if (error instanceof CofferError && error.code === 'E_MISSING_OBJECT') continue;
      throw error;
    }
    result.set(found.snapshot, newest(result.get(found.snapshot), protection));
  }
  return result;
}

/** Every protected snapshot, by id. Damaged markers count as protection (`damaged: true`). */
export function listProtections(repo: Repository): Promise<Map<string, Protection>> {
  return protectionsUnder(repo, PROTECTED_PREFIX);
}

/** The protection of one snapshot (full id), or null when it is not protected. */
export async function protectionOf(repo: Repository, snapshotId: string): Promise<Protection | null> {
  return (await protectionsUnder(repo, `${PROTECTED_PREFIX}${snapshotId}.`)).get(snapshotId) ?? null;
}

/**
 * Protects a snapshot (full id) so that no forget removes it, or replaces the reason of an
 * existing protection. Writes the new marker first (atomic put, synced, read back), then
 * deletes older markers of the snapshot: a crash in between leaves it protected twice, never
 * unprotected. `now` is the time recorded (the core reads no clock). Throws
 * `E_SNAPSHOT_NOT_FOUND` when no such snapshot exists, `E_USAGE` for a bad reason.
 */
export async function protectSnapshot(repo: Repository, snapshotId: string, options: { reason?: string | null; now: Date }): Promise<Protection> {
  const reason = options.reason ?? null;
  if (reason !== null && !PROTECTION_REASON.test(reason)) {
    throw new CofferError('E_USAGE', 'a protection reason is 1 to 200 characters on one line');
  }
  if (!(await repo.backend.has(snapshotKey(snapshotId)))) {
    throw new CofferError('E_SNAPSHOT_NOT_FOUND', `no snapshot ${snapshotId} in ${repo.location}`, { subject: { repository: repo.location, snapshot: snapshotId } });
  }
  const before = await markerKeys(repo, `${PROTECTED_PREFIX}${snapshotId}.`);
  const plaintext = encodeProtectionMarker({ version: 1, snapshot: snapshotId, time: options.now.toISOString(), reason });
  const markerId = repo.codec.idOf(plaintext);
  const key = protectionKey(snapshotId, markerId.toString('hex'));
  await repo.backend.put(key, repo.codec.seal(plaintext, ObjectKind.protectionMarker, markerId));
  await repo.backend.sync();
  const written = await readMarker(repo, { key, snapshot: snapshotId, marker: markerId.toString('hex') });
  if (written.damaged) throw new CofferError('E_BACKEND_IO', `protection marker ${key} does not read back`, { subject: { repository: repo.location, object: key } });
  for (const old of before) if (old.key !== key) await repo.backend.delete(old.key);
  return written;
}

/** Removes every protection marker of a snapshot (full id). Returns whether it was protected. Idempotent. */
export async function unprotectSnapshot(repo: Repository, snapshotId: string): Promise<boolean> {
  const markers = await markerKeys(repo, `${PROTECTED_PREFIX}${snapshotId}.`);
  for (const marker of markers) await repo.backend.delete(marker.key);
  if (markers.length > 0) await repo.backend.sync();
  return markers.length > 0;
}
