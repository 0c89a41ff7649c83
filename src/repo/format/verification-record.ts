/**
 * A verification record, version 1: one `coffer verify --read-data` run, so later runs can
 * skip what was read recently (`--since`) and spread full reads over days
 * (`--read-data-subset`). Stored as an envelope of kind 6 under `verifications/<record id>`
 * (the object id of the plaintext). Added after format version 1 was first written,
 * compatibly: readers that do not know it ignore the prefix. The plaintext is UTF-8 JSON:
 *
 * ```json
 * {
 *   "version": 1,
 *   "time": "2026-11-26T01:00:00.000Z",   // when the run started, ISO 8601 UTC
 *   "subset": { "kind": "all" }
 *           | { "kind": "slice", "n": 2, "of": 7 }          // chunks whose id's bytes 0..3 (big-endian) mod 7 = 1
 *           | { "kind": "sample", "percent": 10, "seed": 123456789 },  // ((bytes 4..7) XOR seed) < percent% of 2^32
 *   "since": 604800000 | null,             // chunks read within this many ms before were skipped
 *   "chunksRead": 1234, "bytesRead": 5678,
 *   "damaged": ["<64 hex>", ...]           // chunks of the subset that failed (they were not verified)
 * }
 * ```
 * A chunk counts as verified at `time` by a record when it is in the record's subset, is not
 * in `damaged`, and was not skipped by the record's `since` (a skipped chunk keeps the time
 * of the read that let it be skipped). Chunk ids are MACs (uniform), so slices and samples
 * are even shares of the chunks.
 */
import { CofferError } from '../../errors/index.js';

export type VerificationSubset =
  | { kind: 'all' }
  | { kind: 'slice'; n: number; of: number }
  | { kind: 'sample'; percent: number; seed: number };

export interface VerificationRecord {
  version: 1;
  time: string;
  subset: VerificationSubset;
  since: number | null;
  chunksRead: number;
  bytesRead: number;
  damaged: string[];
}

/** True when the chunk with this id is in the subset. */
export function subsetContains(subset: VerificationSubset, id: Uint8Array): boolean {
  if (subset.kind === 'all') return true;
  const view = new DataView(id.buffer, id.byteOffset, id.byteLength);
  if (subset.kind === 'slice') return view.getUint32(0) % subset.of === subset.n - 1;
  return ((view.getUint32(4) ^ subset.seed) >>> 0) < (subset.percent / 100) * 2 ** 32;
}

export function encodeVerificationRecord(record: VerificationRecord): Buffer {
  return Buffer.from(JSON.stringify(record), 'utf8');
}

/** Parses and validates a record; `E_CORRUPT_OBJECT` for anything malformed. */
export function decodeVerificationRecord(bytes: Buffer, name: string): VerificationRecord {
  const corrupt = (why: string) => new CofferError('E_CORRUPT_OBJECT', `verification record ${name} is corrupt: ${why}`, { subject: { object: name } });
  let r: Partial<VerificationRecord>;
  try {
    r = JSON.parse(bytes.toString('utf8')) as Partial<VerificationRecord>;
  } catch {
    throw corrupt('not JSON');
  }
  if (typeof r !== 'object' || r === null || r.version !== 1) throw corrupt('unknown version');
  if (typeof r.time !== 'string' || Number.isNaN(Date.parse(r.time))) throw corrupt('bad time');
  const s = r.subset as Partial<{ kind: string; n: number; of: number; percent: number; seed: number }> | undefined;
  const goodSubset =
    s !== undefined && s !== null && typeof s === 'object' &&
    (s.kind === 'all' ||
      (s.kind === 'slice' && Number.isInteger(s.n) && Number.isInteger(s.of) && (s.of as number) >= 1 && (s.n as number) >= 1 && (s.n as number) <= (s.of as number)) ||
      (s.kind === 'sample' && typeof s.percent === 'number' && s.percent > 0 && s.percent <= 100 && Number.isInteger(s.seed) && (s.seed as number) >= 0 && (s.seed as number) < 2 ** 32));
  if (!goodSubset) throw corrupt('bad subset');
  if (r.since !== null && !(typeof r.since === 'number' && r.since >= 0)) throw corrupt('bad since');
  if (!Number.isSafeInteger(r.chunksRead) || !Number.isSafeInteger(r.bytesRead)) throw corrupt('bad counts');
  if (!Array.isArray(r.damaged) || !r.damaged.every((d) => typeof d === 'string' && /^[0-9a-f]{64}$/.test(d))) throw corrupt('bad damaged list');
  return { version: 1, time: r.time, subset: r.subset as VerificationSubset, since: r.since ?? null, chunksRead: r.chunksRead as number, bytesRead: r.bytesRead as number, damaged: r.damaged };
}
