/**
 * A pack-removal record, version 1 (format 2 only, a compatible addition of 2026-11-26:
 * docs/repository-format.md §19.11): the packs one prune run removed (deleted or repacked),
 * written by that prune before its first delete. Stored, plaintext (pack ids are SHA-256s of
 * stored bytes and say nothing of the data), under
 *
 *   `removed-packs/<generation>.<token>`
 *
 * `generation`: 12 decimal digits, 1 for a repository's first record, one more than the
 * newest listed for each later one (prunes never overlap: a prune lease, leases.ts); `token`:
 * 32 random hex digits, so that a name means one record of one repository (a snapshot copied
 * from elsewhere never matches by chance). The bytes:
 *
 * | offset     | size | field |
 * |-----------:|-----:|-------|
 * | 0          | 4    | magic, ASCII `CFR1` |
 * | 4          | 4    | pack count n, uint32, 1..{@link MAX_REMOVED_PACKS} |
 * | 8          | 8    | the generation, uint64 (the same as in the key) |
 * | 16         | 32·n | the pack ids, ascending, unique |
 * | 16 + 32·n  | 32   | SHA-256 of bytes 0 .. 16 + 32·n (a torn or damaged record is refused) |
 *
 * A snapshot manifest records, in `prunedThrough`, the name of the newest record when its
 * backup started (`none` when there was none): see {@link parseRecordName} and pack-removals.ts.
 */
import { createHash } from 'node:crypto';
import { CofferError } from '../../errors/index.js';
import { REMOVED_PACKS_PREFIX } from '../layout.js';

/** The `prunedThrough` of a snapshot written when the repository had no record. */
export const NO_REMOVALS = 'none';
/** The most pack ids one record holds (32 MiB); a prune removing more writes several records. */
export const MAX_REMOVED_PACKS = 1 << 20;

const MAGIC = Buffer.from('CFR1', 'ascii');
const HEADER = 16;
const ID = 32;
const DIGEST = 32;
const OFFSET_COUNT = 4;
const OFFSET_GENERATION = 8;
const NAME = /^(\d{12})\.([0-9a-f]{32})$/;

/** A record's place in the sequence: its generation and its name (`<generation>.<token>`). */
export interface RecordName {
  generation: number;
  name: string;
}

/** The name of record `generation` with `token` (32 hex). */
export function recordName(generation: number, token: string): string {
  if (!Number.isSafeInteger(generation) || generation < 1 || generation > 999_999_999_999 || !/^[0-9a-f]{32}$/.test(token)) {
    throw new RangeError(`no record name for generation ${generation}, token ${token}`);
  }
  return `${String(generation).padStart(12, '0')}.${token}`;
}

/** The generation and name of `name` (a key without its prefix, or a `prunedThrough`), or null when it is not a record name. */
export function parseRecordName(name: string): RecordName | null {
  const match = NAME.exec(name);
  if (match === null) return null;
  const generation = Number(match[1]);
  return generation >= 1 ? { generation, name } : null;
}

/** The record's bytes; `packs` are 64-hex pack ids, 1..{@link MAX_REMOVED_PACKS}. */
export function encodeRemovedPacks(generation: number, packs: readonly string[]): Buffer {
  const sorted = [...new Set(packs)].sort();
  if (sorted.length < 1 || sorted.length > MAX_REMOVED_PACKS) throw new RangeError(`a record holds 1 to ${MAX_REMOVED_PACKS} packs, not ${sorted.length}`);
  const bytes = Buffer.alloc(HEADER + ID * sorted.length + DIGEST);
  MAGIC.copy(bytes, 0);
  bytes.writeUInt32LE(sorted.length, OFFSET_COUNT);
  bytes.writeBigUInt64LE(BigInt(generation), OFFSET_GENERATION);
  for (const [i, hex] of sorted.entries()) {
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new RangeError(`not a pack id: ${hex}`);
    bytes.write(hex, HEADER + ID * i, 'hex');
  }
  const end = HEADER + ID * sorted.length;
  createHash('sha256').update(bytes.subarray(0, end)).digest().copy(bytes, end);
  return bytes;
}

/**
 * The pack ids (hex) of record `name` (key `removed-packs/<name>`), checked: magic, count,
 * length, the generation its name says, ascending unique ids, digest. `E_CORRUPT_OBJECT` otherwise.
 */
export function decodeRemovedPacks(bytes: Buffer, name: string): string[] {
  const corrupt = (why: string) => new CofferError('E_CORRUPT_OBJECT', `pack-removal record ${REMOVED_PACKS_PREFIX}${name} is corrupt: ${why}`, { subject: { object: `${REMOVED_PACKS_PREFIX}${name}` } });
  const parsed = parseRecordName(name);
  if (parsed === null) throw corrupt('not a record name');
  if (bytes.length < HEADER + ID + DIGEST || !bytes.subarray(0, 4).equals(MAGIC)) throw corrupt('bad magic or too short');
  const count = bytes.readUInt32LE(OFFSET_COUNT);
  if (count < 1 || count > MAX_REMOVED_PACKS || bytes.length !== HEADER + ID * count + DIGEST) throw corrupt(`count ${count} does not match its ${bytes.length} bytes`);
  if (bytes.readBigUInt64LE(OFFSET_GENERATION) !== BigInt(parsed.generation)) throw corrupt('its generation is not its name\'s');
  const end = HEADER + ID * count;
  if (!createHash('sha256').update(bytes.subarray(0, end)).digest().equals(bytes.subarray(end))) throw corrupt('digest mismatch');
  const packs: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = bytes.subarray(HEADER + ID * i, HEADER + ID * (i + 1));
    if (i > 0 && Buffer.compare(bytes.subarray(HEADER + ID * (i - 1), HEADER + ID * i), id) >= 0) throw corrupt('pack ids not ascending');
    packs.push(id.toString('hex'));
  }
  return packs;
}
