import { CHUNKS_PREFIX, CONFIG_KEY, DELETIONS_KEY, DIGEST_KEY_KEY, DIGESTS_PREFIX, INDEXES_PREFIX, KEYS_PREFIX, LEASES_PREFIX, NOTES_PREFIX, PACKS_PREFIX, PROTECTED_PREFIX, QUARANTINE_PREFIX, REMOVED_PACKS_PREFIX, SEGMENTS_PREFIX, SNAPSHOTS_PREFIX, TAGS_PREFIX, TREES_PREFIX, VERIFICATIONS_PREFIX } from '../../repo/index.js';
import type { Principal } from './token-store.js';

/**
 * What a token may do to which object: the whole policy of the repository server, as pure
 * functions of the token, the key and the key's recorded writer (owner-index.ts). A full
 * token (the administrator's: prune, forget, verify) may do everything. An append-only token
 * (a guest's agent) may:
 *
 * | prefix / key                                        | read, has | list            | put new | put existing                     | delete |
 * |-----------------------------------------------------|-----------|-----------------|---------|----------------------------------|--------|
 * | `config`, `deletions`                               | yes       | —               | no      | no                               | no     |
 * | `keys/`                                             | yes       | yes             | no      | no                               | no     |
 * | `chunks/`, `indexes/`, `trees/`                     | yes (by id) | **no**        | yes     | kept as is, answered as stored ¹ | no     |
 * | `packs/` (format 2) ⁶                               | yes (by id, also a byte range) | **no** | yes, when its bytes hash to its id | kept as is | no |
 * | `segments/` (format 2) ⁶                            | yes (by id) | its own only  | yes     | kept as is                       | no     |
 * | `snapshots/`, `notes/`, `protected/`, `verifications/` | its own ² | its own only  | yes     | only the identical bytes         | no     |
 * | `tags/` ⁸                                           | its own snapshots' | its own snapshots' only | **no** | **no**              | **no** |
 * | `leases/`                                           | yes       | yes ³           | yes     | its own (a refresh)              | its own |
 * | `quarantine/`                                       | no        | yes ⁴           | no      | no                               | no     |
 * | `removed-packs/` (format 2) ⁷                       | yes       | yes             | no      | no                               | no     |
 * | `stored-digest-key`                                 | yes       | —               | yes     | only the identical bytes         | no     |
 * | `digests/` ⁵                                        | no        | no              | yes     | kept as is                       | no     |
 * | anything else, and listing everything (`''`)        | no        | no              | no      | no                               | no     |
 *
 * ¹ Chunk, index page and file tree ids are keyed MACs of their plaintext: an object already stored under an
 *   id holds that content, so a second writer (a retry, or another guest deduplicating the same
 *   block at the same moment, whose random nonce makes other bytes) is told it is stored and
 *   nothing is overwritten. Listing them is refused: the ids are unguessable, and a listing
 *   would hand them out (a backup through such a token asks `has` per chunk instead).
 * ² Another writer's object there is answered 404, as if absent: a guest learns nothing of
 *   other guests' snapshots.
 * ³ A backup lists every lease to see a running prune; leases are random ids.
 * ⁴ A backup lists the quarantined chunk ids so that it stores those chunks again.
 * ⁵ Signed digest records (docs/repository-format.md §18), named by the SHA-256 of their
 *   bytes. A writer adds its own; reading them is refused, since they name other writers'
 *   objects (`verify --stored` runs with a full token, or on the storage itself).
 * ⁶ A pack's id is the SHA-256 of its bytes (docs/repository-format.md §19): the server checks
 *   it on a put by an append-only token ({@link contentDigestOf}), so a stored pack always holds
 *   the bytes its name promises and "kept as is" loses nothing. A segment's id is a keyed MAC
 *   like a chunk's. A format 2 backup lists `segments/` to load its chunk index: an append-only
 *   token lists only the segments it wrote (their writer is recorded), since another writer's
 *   segment would hand out that writer's chunk ids and where they lie. So a guest deduplicates
 *   against its own earlier backups, never against other guests' (docs/repository-server.md).
 *   A full token (the administrator's prune) may delete and replace packs and segments.
 * ⁷ Pack-removal records (docs/repository-format.md §19.11): a backup lists them and reads
 *   those since its parent's, to learn which of its parent's packs a prune removed. Only prune
 *   (a full token) writes them; they name packs, never chunks.
 * ⁸ Tag records (`coffer tag`, docs/repository-format.md §20): the newest one sets a snapshot's
 *   tags whole, so a writer could remove a tag an administrator set for retention
 *   (`forget --keep-tag legal-hold`) and let the next forget remove the snapshot. Only a full
 *   token writes or deletes them, whoever wrote the snapshot. An agent reads and lists the
 *   records of its own snapshots, so that `snapshots`, `restore`, `backup` show and use the
 *   effective tags: the key names the snapshot (`tags/<snapshot id>.<record id>`), and the
 *   owner that counts is the recorded writer of `snapshots/<snapshot id>`
 *   ({@link ownershipKey}); other snapshots' records are answered 404 and left out of
 *   listings, as ².
 */
export type ListScope = 'all' | 'own' | 'denied';

/** Prefixes whose objects are visible to an append-only token only when it wrote them. */
export const OWNED_PREFIXES = [SNAPSHOTS_PREFIX, NOTES_PREFIX, PROTECTED_PREFIX, VERIFICATIONS_PREFIX] as const;

const TAG_RECORD = /^tags\/([0-9a-f]{64})\.[0-9a-f]{64}$/;

/**
 * The key whose recorded writer decides who may see `key`: for a tag record
 * (`tags/<snapshot id>.<record id>`) the snapshot's manifest, `snapshots/<snapshot id>` (a
 * tag record is always a full token's, and belongs to the snapshot it tags); `key` itself for
 * every other key.
 */
export function ownershipKey(key: string): string {
  const snapshot = TAG_RECORD.exec(key)?.[1];
  return snapshot === undefined ? key : `${SNAPSHOTS_PREFIX}${snapshot}`;
}

/** True for keys whose writer the server records (the owned prefixes and leases). */
export function recordsOwner(key: string): boolean {
  return key.startsWith(LEASES_PREFIX) || key.startsWith(SEGMENTS_PREFIX) || OWNED_PREFIXES.some((prefix) => key.startsWith(prefix));
}

/**
 * Content-addressed prefixes: chunks, disk index pages, the file trees of file-level
 * snapshots (`trees/`, docs/repository-format.md §16), and format 2's packs and index
 * segments (§19).
 */
const CONTENT_ADDRESSED_PREFIXES = [CHUNKS_PREFIX, INDEXES_PREFIX, TREES_PREFIX, PACKS_PREFIX, SEGMENTS_PREFIX] as const;

/**
 * The SHA-256 (hex) that the bytes of `key` must have, when the key names it: a pack
 * (`packs/<2 hex>/<64 hex>`, whose id is the SHA-256 of its bytes); null for every other key.
 */
export function contentDigestOf(key: string): string | null {
  const match = /^packs\/([0-9a-f]{2})\/([0-9a-f]{64})$/.exec(key);
  return match !== null && (match[2] as string).startsWith(match[1] as string) ? (match[2] as string) : null;
}

const isOwned = (key: string) => OWNED_PREFIXES.some((prefix) => key.startsWith(prefix));
const isContentAddressed = (key: string) => CONTENT_ADDRESSED_PREFIXES.some((prefix) => key.startsWith(prefix));

/**
 * May this token read (get, has) `key`? `'hidden'`: answer as if absent. `owner` is the
 * recorded writer of {@link ownershipKey}(key).
 */
export function readAccess(who: Principal, key: string, owner: string | undefined): 'yes' | 'hidden' | 'denied' {
  if (!who.appendOnly) return 'yes';
  if (key === CONFIG_KEY || key === DELETIONS_KEY || key.startsWith(KEYS_PREFIX) || isContentAddressed(key) || key.startsWith(LEASES_PREFIX)) return 'yes';
  if (key.startsWith(REMOVED_PACKS_PREFIX)) return 'yes';
  if (key === DIGEST_KEY_KEY) return 'yes';
  if (isOwned(key) || key.startsWith(TAGS_PREFIX)) return owner === who.name ? 'yes' : 'hidden';
  return 'denied';
}

/** Which keys under `prefix` this token may list (`own`: those whose {@link ownershipKey} it wrote). */
export function listScope(who: Principal, prefix: string): ListScope {
  if (!who.appendOnly) return 'all';
  if (prefix.startsWith(KEYS_PREFIX) || prefix.startsWith(LEASES_PREFIX) || prefix.startsWith(QUARANTINE_PREFIX) || prefix.startsWith(REMOVED_PACKS_PREFIX)) return 'all';
  if (isOwned(prefix) || prefix.startsWith(SEGMENTS_PREFIX) || prefix.startsWith(TAGS_PREFIX)) return 'own';
  return 'denied';
}

/**
 * What a put of `key` by this token does, given whether the key exists and who wrote it:
 * `write` (store it), `keep` (leave the stored object, answer success), `same-bytes` (succeed
 * only if the bytes equal the stored ones, otherwise refuse), or `denied`.
 */
export function putAccess(who: Principal, key: string, existing: { owner: string | undefined } | null): 'write' | 'keep' | 'same-bytes' | 'denied' {
  if (!who.appendOnly) return 'write';
  if (key === CONFIG_KEY || key === DELETIONS_KEY || key.startsWith(KEYS_PREFIX) || key.startsWith(QUARANTINE_PREFIX) || key.startsWith(TAGS_PREFIX)) return 'denied';
  if (key === DIGEST_KEY_KEY) return existing === null ? 'write' : 'same-bytes';
  if (key.startsWith(DIGESTS_PREFIX)) return /^digests\/[0-9a-f]{64}$/.test(key) ? (existing === null ? 'write' : 'keep') : 'denied';
  if (!isContentAddressed(key) && !isOwned(key) && !key.startsWith(LEASES_PREFIX)) return 'denied';
  if (existing === null) return 'write';
  if (isContentAddressed(key)) return 'keep';
  if (key.startsWith(LEASES_PREFIX) && existing.owner === who.name) return 'write';
  return 'same-bytes';
}

/** May this token delete `key`? */
export function deleteAccess(who: Principal, key: string, owner: string | undefined): boolean {
  if (!who.appendOnly) return true;
  return key.startsWith(LEASES_PREFIX) && owner === who.name;
}
