import { forEachLimited } from '../concurrency/index.js';
import { CofferError } from '../errors/index.js';
import { ObjectKind } from './format/envelope.js';
import { decodeManifest, encodeManifest, type SnapshotManifest } from './format/manifest.js';
import { idFromKey, snapshotKey, SNAPSHOTS_PREFIX } from './layout.js';
import { RetentionEnsurer } from './lock/ensure-retention.js';
import { snapshotLockUntil, writeRetention } from './lock/lock-policy.js';
import { lockedBackendOf, type LockedBackend } from './lock/locked-backend.js';
import { digestRecorderOf } from './digests/digest-recording-backend.js';
import { protectionOf } from './protection.js';
import type { Repository } from './repository.js';
import { deleteSnapshotNotes } from './snapshot-notes.js';
import { deleteTagRecords, listTagRecords, withTagRecords } from './snapshot-tags.js';

/**
 * A manifest with its id (64 hex), and its effective tags: `tags` is what the newest tag
 * record (`coffer tag`, snapshot-tags.ts) set, when there is one; the manifest's own tags are
 * then in `retagged.manifestTags`. Write a manifest from a snapshot only through
 * `storedManifest` (snapshot-tags.ts), which puts them back.
 */
export interface Snapshot extends SnapshotManifest {
  id: string;
  /** Present when a tag record set `tags`: that record's time, and the tags the manifest holds. */
  retagged?: { time: string; manifestTags: string[] };
}

/**
 * Writes a manifest, the last step of a backup: atomic, so the snapshot appears whole or not
 * at all. Returns the snapshot's id. Every chunk and index page it names must be stored.
 * In a repository with Object Lock, first every object the snapshot needs (its index pages
 * and chunks, the config and the key files) is made to stay locked at least until the
 * snapshot's lock-until (extending those a reuse left short, lock/ensure-retention.ts), then
 * the manifest is written locked until exactly that date; `lock.lastSnapshot` says what it took.
 */
export async function saveSnapshot(repo: Repository, manifest: SnapshotManifest): Promise<Snapshot> {
  const plaintext = encodeManifest(manifest);
  const objectId = repo.codec.idOf(plaintext);
  const id = objectId.toString('hex');
  const sealed = repo.codec.seal(plaintext, ObjectKind.manifest, objectId);
  await repo.backend.sync(); // everything the manifest names is durable before it exists
  const lock = lockedBackendOf(repo);
  if (lock === undefined) await repo.backend.put(snapshotKey(id), sealed);
  else await putLockedManifest(repo, lock, id, manifest, sealed);
  await repo.backend.sync();
  // Read back what was written (restic's verifyHeader habit): a manifest that does not open
  // must never be left believed in.
  loadFromBlob(repo, id, await repo.backend.get(snapshotKey(id)));
  return { id, ...manifest };
}

async function putLockedManifest(repo: Repository, lock: LockedBackend, id: string, manifest: SnapshotManifest, sealed: Buffer): Promise<void> {
  const now = lock.now();
  const lockedUntil = snapshotLockUntil(lock.policy, now);
  const ensurer = new RetentionEnsurer(lock, { trustCache: true, target: (required) => new Date(Math.max(required.getTime(), writeRetention(lock.policy, lock.now()).until.getTime())) });
  const started = Date.now();
  await ensurer.requireConfigAndKeys(repo, lockedUntil);
  await ensurer.requireDisks(repo, manifest.disks, lockedUntil);
  if (manifest.files !== undefined) await ensurer.requireFileTree(repo, manifest.files.tree, lockedUntil);
  await lock.putUntil(snapshotKey(id), sealed, lockedUntil);
  // Written below the digest recorder: recorded here (repository-format.md §18).
  await digestRecorderOf(repo)?.vouch(snapshotKey(id), sealed);
  lock.lastSnapshot = { id, lockedUntil, ...ensurer.report, durationMs: Date.now() - started };
  await lock.cache.save(now);
}

/**
 * Every snapshot, oldest first (by time, then id). A damaged manifest (corrupt or missing) is
 * reported by `onDamaged` and left out; without `onDamaged` it fails the listing. Callers that
 * only need the readable snapshots (a backup's parent, `latest`) pass {@link skipDamaged}:
 * one damaged manifest must not stop every backup of the repository (verify and repair report it).
 * Each snapshot has its effective tags: the listing reads `tags/` once (snapshot-tags.ts) and
 * only the records of the snapshots it returns; it never reads notes.
 */
export async function listSnapshots(
  repo: Repository,
  options: {
    vm?: string;
    onDamaged?: (id: string, error: CofferError) => void;
    /** A tag record that does not open (skipped: an older one, or the manifest's tags, stand). */
    onDamagedTags?: (key: string, error: CofferError) => void;
    /**
     * For what decides from the tags (retention): a store that refuses the listing of tag
     * records is an error, never the manifests' tags (snapshot-tags.ts `listTagRecords`).
     */
    requireTags?: boolean;
  } = {},
): Promise<Snapshot[]> {
  const snapshots: Snapshot[] = [];
  const ids: string[] = [];
  for await (const entry of repo.backend.list(SNAPSHOTS_PREFIX)) {
    const id = idFromKey(entry.key);
    if (id !== null) ids.push(id);
  }
  await forEachLimited(ids, 16, async (id) => {
    try {
      const snapshot = await loadStoredSnapshot(repo, id);
      if (options.vm === undefined || snapshot.vm === options.vm) snapshots.push(snapshot);
    } catch (error) {
      if (error instanceof CofferError && (error.code === 'E_CORRUPT_OBJECT' || error.code === 'E_MISSING_OBJECT') && options.onDamaged) {
        options.onDamaged(id, error);
        return;
      }
      throw error;
    }
  });
  // One listing of `tags/`; only the records of the snapshots listed are read (those of one VM for a backup's parent).
  const records = await listTagRecords(repo, {
    snapshots: new Set(snapshots.map((s) => s.id)),
    ...(options.onDamagedTags === undefined ? {} : { onDamaged: options.onDamagedTags }),
    ...(options.requireTags === true ? { required: true } : {}),
  });
  return snapshots
    .map((snapshot) => withTagRecords(snapshot, records.get(snapshot.id) ?? []))
    .sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
}

/** For {@link listSnapshots}: leave damaged manifests out without a word (verify and repair report them). */
export function skipDamaged(): void {}

/**
 * One snapshot by full id, with its effective tags (its tag records are found by its id: one
 * small listing). A damaged tag record is passed over (`coffer snapshots` names it).
 */
export async function loadSnapshot(repo: Repository, id: string): Promise<Snapshot> {
  const snapshot = await loadStoredSnapshot(repo, id);
  return withTagRecords(snapshot, (await listTagRecords(repo, { snapshot: id })).get(id) ?? []);
}

/**
 * One snapshot by full id, its manifest only: the tags it was written with, no tag record
 * applied. For a reader that keeps its own account of the tag records (the server's snapshot
 * index) and applies them with `withTagRecords`; every other reader wants {@link loadSnapshot}.
 */
export async function loadStoredSnapshot(repo: Repository, id: string): Promise<Snapshot> {
  return loadFromBlob(repo, id, await repo.backend.get(snapshotKey(id)));
}

/**
 * Removes a snapshot's manifest (its chunks stay until prune), then its notes (except the
 * lasting kinds) and its tag records. Refuses a protected snapshot
 * (`E_SNAPSHOT_PROTECTED`), checked right before the delete: `coffer unprotect` first; and,
 * in a repository with Object Lock, a snapshot whose manifest is still locked
 * (`E_SNAPSHOT_LOCKED`, with the date).
 */
export async function deleteSnapshot(repo: Repository, id: string): Promise<void> {
  if ((await protectionOf(repo, id)) !== null) {
    throw new CofferError('E_SNAPSHOT_PROTECTED', `snapshot ${id.slice(0, 8)} is protected; run 'coffer unprotect ${id.slice(0, 8)}' first`, { subject: { repository: repo.location, snapshot: id } });
  }
  await refuseLocked(repo, id);
  await repo.backend.delete(snapshotKey(id));
  // After the manifest: a crash leaves orphan notes and tag records, which are ignored (and prune removes).
  await deleteSnapshotNotes(repo, id);
  await deleteTagRecords(repo, id);
}

/**
 * `E_SNAPSHOT_LOCKED` when the repository has Object Lock and the snapshot's manifest is
 * locked now (read from the store: the truth, whatever any cache says).
 */
export async function refuseLocked(repo: Repository, id: string): Promise<void> {
  const lock = lockedBackendOf(repo);
  if (lock === undefined) return;
  const until = (await lock.retention(snapshotKey(id)))?.until;
  if (until !== undefined && until.getTime() > lock.now().getTime()) {
    throw new CofferError('E_SNAPSHOT_LOCKED', `snapshot ${id.slice(0, 8)} is locked until ${until.toISOString()} (Object Lock, ${lock.policy.mode}): it can be forgotten after that`, {
      subject: { repository: repo.location, snapshot: id },
    });
  }
}

/**
 * Finds a snapshot by what a user typed: a full id, a unique prefix of at least 4 hex
 * characters, `latest` (the newest of all), or `NAME:latest` (the newest of one VM).
 */
export async function resolveSnapshot(repo: Repository, reference: string): Promise<Snapshot> {
  const notFound = (message: string) => new CofferError('E_SNAPSHOT_NOT_FOUND', message, { subject: { repository: repo.location, snapshot: reference } });
  const latest = /^(?:(.+):)?latest$/.exec(reference);
  if (latest !== null) {
    const vm = latest[1];
    const snapshots = await listSnapshots(repo, vm === undefined ? { onDamaged: skipDamaged } : { vm, onDamaged: skipDamaged });
    const newest = snapshots.at(-1);
    if (newest === undefined) throw notFound(vm === undefined ? `${repo.location} has no snapshots` : `no snapshot of VM ${vm} in ${repo.location}`);
    return newest;
  }
  return loadSnapshot(repo, await resolveSnapshotId(repo, reference));
}

/**
 * The full id a snapshot id or unique prefix (at least 4 hex characters, either case) names, found among
 * the manifests' names without reading one: what `forget` needs to remove a snapshot whose
 * manifest is damaged. `E_SNAPSHOT_NOT_FOUND` otherwise.
 */
export async function resolveSnapshotId(repo: Repository, typed: string): Promise<string> {
  // Ids are lower-case hex; one copied in capitals (from a report or a spreadsheet) names the same.
  const reference = /^[0-9a-f]+$/i.test(typed) ? typed.toLowerCase() : typed;
  const notFound = (message: string) => new CofferError('E_SNAPSHOT_NOT_FOUND', message, { subject: { repository: repo.location, snapshot: reference } });
  if (/^[0-9a-f]{1,3}$/.test(reference)) throw notFound(`${JSON.stringify(reference)} is too short a snapshot prefix: give at least 4 of its hex digits`);
  if (!/^[0-9a-f]{4,64}$/.test(reference)) throw notFound(`${JSON.stringify(reference)} is not a snapshot id, a prefix of one, 'latest' or 'NAME:latest'`);
  const matches: string[] = [];
  for await (const entry of repo.backend.list(SNAPSHOTS_PREFIX)) {
    const id = idFromKey(entry.key);
    if (id?.startsWith(reference)) matches.push(id);
  }
  if (matches.length === 0) throw notFound(`no snapshot ${reference} in ${repo.location}`);
  if (matches.length > 1) throw notFound(`snapshot id ${reference} is ambiguous (${matches.length} match); give more characters`);
  return matches[0] as string;
}

function loadFromBlob(repo: Repository, id: string, blob: Buffer): Snapshot {
  const name = snapshotKey(id);
  const plaintext = repo.codec.open(blob, ObjectKind.manifest, name, Buffer.from(id, 'hex'));
  return { id, ...decodeManifest(plaintext, name) };
}
