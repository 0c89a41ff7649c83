/**
 * A snapshot note, version 1: something learned about a snapshot after it was written (the
 * result of a test restore today; verification records later). Manifests are immutable and
 * content-addressed, so notes live beside them, each its own small object of envelope kind 5
 * under `notes/<snapshot id>.<note id>`, where the note id is the object id of the plaintext
 * (so it is authenticated and checked like every object). Notes are only ever added or
 * deleted, never rewritten: the newest note of a kind is the current one. The plaintext is
 * UTF-8 JSON:
 *
 * ```json
 * {
 *   "version": 1,
 *   "snapshot": "<64 hex>",               // the snapshot it is about; must match the key
 *   "kind": "test-restore",               // what it records: 1..64 of [a-z0-9-]
 *   "time": "2026-11-26T01:00:00.000Z",   // when, ISO 8601 UTC
 *   "data": { ... }                       // the record, as the kind defines it
 * }
 * ```
 * Readers that do not know notes ignore the `notes/` prefix and still read the repository;
 * readers that do not know a kind skip those notes.
 */
import { CofferError } from '../../errors/index.js';

/** A parsed snapshot note. */
export interface SnapshotNote {
  version: 1;
  snapshot: string;
  kind: string;
  time: string;
  data: unknown;
}

const HEX_ID = /^[0-9a-f]{64}$/;
export const NOTE_KIND = /^[a-z0-9-]{1,64}$/;

export function encodeSnapshotNote(note: SnapshotNote): Buffer {
  return Buffer.from(JSON.stringify(note), 'utf8');
}

/** Parses and validates a note; `E_CORRUPT_OBJECT` for anything malformed. */
export function decodeSnapshotNote(bytes: Buffer, name: string): SnapshotNote {
  const corrupt = (why: string) => new CofferError('E_CORRUPT_OBJECT', `snapshot note ${name} is corrupt: ${why}`, { subject: { object: name } });
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw corrupt('not JSON');
  }
  const n = value as Partial<SnapshotNote>;
  if (typeof n !== 'object' || n === null || n.version !== 1) throw corrupt('unknown version');
  if (typeof n.snapshot !== 'string' || !HEX_ID.test(n.snapshot)) throw corrupt('bad snapshot id');
  if (typeof n.kind !== 'string' || !NOTE_KIND.test(n.kind)) throw corrupt('bad kind');
  if (typeof n.time !== 'string' || Number.isNaN(Date.parse(n.time))) throw corrupt('bad time');
  if (!('data' in n)) throw corrupt('no data');
  return { version: 1, snapshot: n.snapshot, kind: n.kind, time: n.time, data: n.data };
}
