/**
 * A tag record, version 1: a snapshot's tags set after the fact (`coffer tag`,
 * docs/repository-format.md §20). Manifests are immutable and content-addressed, so, like
 * protection markers, tag records live beside them, each its own small object of envelope
 * kind 12 under `tags/<snapshot id>.<record id>`, where the record id is the object id of the
 * plaintext (authenticated and checked like every object). The plaintext is UTF-8 JSON:
 *
 * ```json
 * {
 *   "version": 1,
 *   "snapshot": "<64 hex>",               // the snapshot it tags; must match the key
 *   "time": "2026-11-30T01:00:00.000Z",   // when the tags were set, ISO 8601 UTC
 *   "tags": ["nightly", "legal-hold"]     // the whole list; each as a manifest's tag (§7)
 * }
 * ```
 * The newest record of a snapshot (by time, then record id) is its tags, whole. Records are
 * added and deleted, never rewritten. Readers that do not know records ignore the `tags/`
 * prefix and see the tags the snapshot was backed up with.
 */
import { CofferError } from '../../errors/index.js';
import { isValidTag } from './manifest.js';

/** A parsed tag record. */
export interface TagRecordBody {
  version: 1;
  snapshot: string;
  time: string;
  tags: string[];
}

const HEX_ID = /^[0-9a-f]{64}$/;

/** Serializes a record. */
export function encodeTagRecord(record: TagRecordBody): Buffer {
  return Buffer.from(JSON.stringify(record), 'utf8');
}

/** Parses and validates a record; `E_CORRUPT_OBJECT` for anything malformed. */
export function decodeTagRecord(bytes: Buffer, name: string): TagRecordBody {
  const corrupt = (why: string) => new CofferError('E_CORRUPT_OBJECT', `tag record ${name} is corrupt: ${why}`, { subject: { object: name } });
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw corrupt('not JSON');
  }
  const r = value as Partial<TagRecordBody>;
  if (typeof r !== 'object' || r === null || r.version !== 1) throw corrupt('unknown version');
  if (typeof r.snapshot !== 'string' || !HEX_ID.test(r.snapshot)) throw corrupt('bad snapshot id');
  if (typeof r.time !== 'string' || Number.isNaN(Date.parse(r.time))) throw corrupt('bad time');
  if (!Array.isArray(r.tags) || !r.tags.every(isValidTag)) throw corrupt('bad tags');
  return { version: 1, snapshot: r.snapshot, time: r.time, tags: [...r.tags] };
}
