/**
 * A protection marker, version 1: says that a snapshot must not be removed (`coffer protect`).
 * Manifests are immutable and content-addressed, so protection lives beside them, as its own
 * small object of envelope kind 4 under `protected/<snapshot id>.<marker id>`, where the
 * marker id is the object id of the plaintext (like every object, so it is checked the same
 * way). The plaintext is UTF-8 JSON:
 *
 * ```json
 * {
 *   "version": 1,
 *   "snapshot": "<64 hex>",               // the protected snapshot; must match the key
 *   "time": "2026-11-25T01:00:00.000Z",   // when it was protected, ISO 8601 UTC
 *   "reason": "legal hold #42" | null     // 1..200 printable characters
 * }
 * ```
 * A snapshot is protected while at least one marker names it. Protecting again writes a new
 * marker, then deletes the older ones; unprotecting deletes them all. Readers that do not
 * know markers ignore the `protected/` prefix and still read the repository.
 */
import { CofferError } from '../../errors/index.js';

/** A parsed protection marker. */
export interface ProtectionMarker {
  version: 1;
  snapshot: string;
  time: string;
  reason: string | null;
}

const HEX_ID = /^[0-9a-f]{64}$/;
/** The same rule as VM names and tags: 1..200 characters, no control characters. */
export const PROTECTION_REASON = /^[^\u0000-\u001f\u007f]{1,200}$/;

/** Serializes a marker. */
export function encodeProtectionMarker(marker: ProtectionMarker): Buffer {
  return Buffer.from(JSON.stringify(marker), 'utf8');
}

/** Parses and validates a marker; `E_CORRUPT_OBJECT` for anything malformed. */
export function decodeProtectionMarker(bytes: Buffer, name: string): ProtectionMarker {
  const corrupt = (why: string) => new CofferError('E_CORRUPT_OBJECT', `protection marker ${name} is corrupt: ${why}`, { subject: { object: name } });
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw corrupt('not JSON');
  }
  const m = value as Partial<ProtectionMarker>;
  if (typeof m !== 'object' || m === null || m.version !== 1) throw corrupt('unknown version');
  if (typeof m.snapshot !== 'string' || !HEX_ID.test(m.snapshot)) throw corrupt('bad snapshot id');
  if (typeof m.time !== 'string' || Number.isNaN(Date.parse(m.time))) throw corrupt('bad time');
  if (m.reason !== null && (typeof m.reason !== 'string' || !PROTECTION_REASON.test(m.reason))) throw corrupt('bad reason');
  return { version: 1, snapshot: m.snapshot, time: m.time, reason: m.reason };
}
