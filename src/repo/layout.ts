/**
 * Where each kind of object lives in a repository (the backend keys). Version 1:
 *
 * | key                           | what                                             |
 * |-------------------------------|--------------------------------------------------|
 * | `config`                      | the repository config (plain JSON)               |
 * | `keys/<16 hex>`               | a key file (plain JSON, the wrapped master key)  |
 * | `chunks/<2 hex>/<64 hex>`     | a data chunk (envelope kind 1)                   |
 * | `indexes/<2 hex>/<64 hex>`    | a disk index page (envelope kind 2)              |
 * | `snapshots/<64 hex>`          | a snapshot manifest (envelope kind 3)            |
 * | `quarantine/<64 hex>.<unix ms>` | a damaged chunk set aside by verify           |
 * | `protected/<64 hex>.<64 hex>` | a protection marker: snapshot id, marker id (kind 4) |
 * | `notes/<64 hex>.<64 hex>`     | a snapshot note: snapshot id, note id (kind 5)   |
 * | `tags/<64 hex>.<64 hex>`      | a tag record (`coffer tag`): snapshot id, record id (kind 12, format/tag-record.ts) |
 * | `verifications/<64 hex>`      | the record of a verify run (kind 6)              |
 * | `leases/<64 hex>`             | a running backup's or prune's lease (kind 7)     |
 * | `trees/<2 hex>/<64 hex>`      | a directory of a file snapshot (kind 8)          |
 * | `deletions`                   | a random token (32 hex + newline), rewritten before chunks are deleted (chunk-cache.ts) |
 * | `digests/<64 hex>`            | a signed digest record: SHA-256 of stored bytes, plaintext (format/digest-record.ts) |
 * | `stored-digest-key`           | the public key that signs digest records, plain JSON (format/digest-key.ts) |
 * | `packs/<2 hex>/<64 hex>`      | format 2: a pack of frames of chunks; the id is the SHA-256 of its bytes (format/pack.ts) |
 * | `segments/<64 hex>`           | format 2: an index segment, chunk id → location (kind 11, format/index-segment.ts) |
 * | `removed-packs/<12 digits>.<32 hex>` | format 2: the packs one prune removed, plaintext (format/removed-packs.ts) |
 * | `reserve`                     | local folders: 16 MiB of random bytes kept free for prune on a full disk (space-reserve.ts) |
 *
 * The two-hex fan-out spreads a local repository's chunks over 256 directories (16,000
 * entries each per TB at the default block size, not 4 million in one); object stores
 * ignore it.
 */
export const CONFIG_KEY = 'config';
export const DELETIONS_KEY = 'deletions';
export const KEYS_PREFIX = 'keys/';
export const CHUNKS_PREFIX = 'chunks/';
export const INDEXES_PREFIX = 'indexes/';
export const SNAPSHOTS_PREFIX = 'snapshots/';
export const QUARANTINE_PREFIX = 'quarantine/';
export const PROTECTED_PREFIX = 'protected/';
export const NOTES_PREFIX = 'notes/';
export const TAGS_PREFIX = 'tags/';
export const VERIFICATIONS_PREFIX = 'verifications/';
export const LEASES_PREFIX = 'leases/';
export const TREES_PREFIX = 'trees/';
export const DIGESTS_PREFIX = 'digests/';
export const DIGEST_KEY_KEY = 'stored-digest-key';
export const PACKS_PREFIX = 'packs/';
export const SEGMENTS_PREFIX = 'segments/';
export const REMOVED_PACKS_PREFIX = 'removed-packs/';
export const SPACE_RESERVE_KEY = 'reserve';
export const packKey = (hex: string): string => `${PACKS_PREFIX}${hex.slice(0, 2)}/${hex}`;
export const segmentKey = (hex: string): string => `${SEGMENTS_PREFIX}${hex}`;

export const chunkKey = (hex: string): string => `${CHUNKS_PREFIX}${hex.slice(0, 2)}/${hex}`;
export const indexKey = (hex: string): string => `${INDEXES_PREFIX}${hex.slice(0, 2)}/${hex}`;
export const treeKey = (hex: string): string => `${TREES_PREFIX}${hex.slice(0, 2)}/${hex}`;
export const snapshotKey = (hex: string): string => `${SNAPSHOTS_PREFIX}${hex}`;
export const protectionKey = (snapshotHex: string, markerHex: string): string => `${PROTECTED_PREFIX}${snapshotHex}.${markerHex}`;
export const noteKey = (snapshotHex: string, noteHex: string): string => `${NOTES_PREFIX}${snapshotHex}.${noteHex}`;
export const tagRecordKey = (snapshotHex: string, recordHex: string): string => `${TAGS_PREFIX}${snapshotHex}.${recordHex}`;
export const verificationKey = (hex: string): string => `${VERIFICATIONS_PREFIX}${hex}`;
export const leaseKey = (hex: string): string => `${LEASES_PREFIX}${hex}`;
export const keyFileKey = (id: string): string => `${KEYS_PREFIX}${id}`;
export const digestRecordKey = (hex: string): string => `${DIGESTS_PREFIX}${hex}`;

/** The hex id at the end of a content-addressed key, or null if the key is not one. */
export function idFromKey(key: string): string | null {
  const hex = key.slice(key.lastIndexOf('/') + 1);
  return /^[0-9a-f]{64}$/.test(hex) ? hex : null;
}
