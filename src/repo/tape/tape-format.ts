/**
 * The Coffer tape format, versions 1 and 2 (docs/tape-format.md has the same layout with examples).
 * PLEASE DO NOT CHANGE these names and fields: tapes written today are read in ten years.
 *
 * A *tape set* is one export: one or more *volumes* (a tape each, or a file each), every volume
 * a complete POSIX tar archive (ustar headers, a subset of the pax interchange format; our
 * member names are ASCII and shorter than 100 bytes and no member reaches 8 GiB, so no pax
 * extended header is ever needed) written in fixed-size records:
 *
 * | member                     | content                                                      |
 * |----------------------------|--------------------------------------------------------------|
 * | `COFFER-TAPE/label.json`   | the volume's label (below), always first                     |
 * | `keys/<16 hex>`, `config`  | the repository's key files, then its config (volume 1 only)  |
 * | `snapshots/<64 hex>`       | a snapshot manifest, then its disks' index pages and chunks  |
 * | `indexes/<2>/<64 hex>`     | an index page, once per tape set                             |
 * | `chunks/<2>/<64 hex>`      | a chunk, once per tape set                                   |
 * | `trees/<2>/<64 hex>`       | a file snapshot's directory tree, once per tape set (below)  |
 * | `COFFER-TAPE/index.json`   | the volume's index (below), always last                      |
 *
 * `trees/` members are a compatible addition (2026-11-26, the version stays 1): a file snapshot's
 * manifest is followed by its trees depth first, each tree followed by the chunks its files
 * name that are not on the set yet. A tape without file snapshots is byte for byte what it
 * was; a reader older than this refuses a tape holding `trees/` members as holding something
 * that is not a repository object (it could not restore such a snapshot anyway).
 *
 * Version 2 (2026-11-26) is the tape of a format 2 repository (docs/repository-format.md §19):
 * its label says `"version":2`, and instead of `chunks/` members it holds the packs the
 * snapshots' index pages locate their chunks in, whole, and index segments naming their chunks:
 *
 * | member                     | content                                                      |
 * |----------------------------|--------------------------------------------------------------|
 * | `packs/<2>/<64 hex>`       | a pack (stored bytes, id = their SHA-256), once per tape set, after the index page that first names it |
 * | `segments/<64 hex>`        | an index segment naming every chunk of the packs written for a snapshot, after them |
 *
 * Everything else (members, index, their versions) is as in version 1, so a version 2 set is,
 * extracted, a valid format 2 repository whose chunk index knows what it holds. A reader of
 * version 1 only refuses a version 2 label (it could not read packs). Format 1 repositories
 * still write version 1 sets, byte for byte as before.
 *
 * Objects are the repository's stored bytes, unchanged (already encrypted and authenticated),
 * under their repository keys, so `tar -x` of every volume into one folder gives a valid local
 * repository. An object is never split across volumes. Each member is a 512-byte ustar header
 * (type `0`, mode 0600, uid/gid 0, mtime = the label's `created`) and its data padded with zeros
 * to a multiple of 512 bytes. The archive ends with two zero blocks, then zeros up to the end
 * of the record: a volume's length is a multiple of its record size.
 *
 * Label (UTF-8 JSON):
 * `{"format":"coffer-tape","version":1,"tapeSet":"<32 hex>","sequence":N,"repository":"<32 hex>",
 *   "created":"<ISO 8601 UTC>","recordSize":N}`
 *
 * Index (UTF-8 JSON, the volume's catalog):
 * `{"format":"coffer-tape-index","version":1,"tapeSet":"<32 hex>","sequence":N,"final":bool,
 *   "volumes":N|null,"snapshots":["<64 hex>",…],"members":[{"name":…,"offset":N,"size":N,
 *   "sha256":"<64 hex>"},…]}`
 * `members` lists every member of the volume before the index, in order, with the byte offset
 * of its header from the start of the volume; `snapshots` is the whole set's; `final` is true
 * only on the set's last volume, whose `volumes` is the number of volumes (null elsewhere).
 */
import { CofferError } from '../../errors/index.js';

export const TAPE_FORMAT = 'coffer-tape';
export const TAPE_INDEX_FORMAT = 'coffer-tape-index';
/** The version of a format 1 repository's tape set, and of every volume index. */
export const TAPE_FORMAT_VERSION = 1;
/** The version of a format 2 repository's tape set (packs and segments instead of chunks). */
export const TAPE_FORMAT_VERSION_PACKS = 2;
/** The label versions this Coffer reads. */
export type TapeLabelVersion = typeof TAPE_FORMAT_VERSION | typeof TAPE_FORMAT_VERSION_PACKS;
export const LABEL_MEMBER = 'COFFER-TAPE/label.json';
export const INDEX_MEMBER = 'COFFER-TAPE/index.json';

/** Tar's unit: a header, and the padding of member data. */
export const TAR_BLOCK = 512;
/** What ends a tar archive: two zero blocks. */
export const TAR_END_BYTES = 2 * TAR_BLOCK;
/** The longest member name a plain ustar header holds without a prefix field. */
export const USTAR_NAME_MAX = 100;
/**
 * The largest index a volume may have: a JSON text past ~512 MiB cannot be parsed in one
 * string by V8. About 160 bytes per member: over 3 million members (750 GiB of 256 KiB
 * chunks); the writer starts a new volume before an index would grow past it.
 */
export const MAX_INDEX_BYTES = 512 * 1024 * 1024;
/** Record sizes accepted: multiples of 512 from 512 bytes to 16 MiB (LTO drives take up to 8 MiB). */
export const RECORD_SIZE_MAX = 16 * 1024 * 1024;

/** The bytes a member takes in the archive: its header and its data padded to 512. */
export function memberLength(size: number): number {
  return TAR_BLOCK + Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
}

export function isValidRecordSize(size: number): boolean {
  return Number.isInteger(size) && size >= TAR_BLOCK && size <= RECORD_SIZE_MAX && size % TAR_BLOCK === 0;
}

/** A volume's label. */
export interface TapeLabel {
  format: typeof TAPE_FORMAT;
  version: TapeLabelVersion;
  tapeSet: string;
  sequence: number;
  repository: string;
  created: string;
  recordSize: number;
}

/** One member of a volume, as its index lists it. */
export interface TapeMember {
  name: string;
  offset: number;
  size: number;
  sha256: string;
}

/** A volume's index. */
export interface TapeIndex {
  format: typeof TAPE_INDEX_FORMAT;
  version: typeof TAPE_FORMAT_VERSION;
  tapeSet: string;
  sequence: number;
  final: boolean;
  volumes: number | null;
  snapshots: string[];
  members: TapeMember[];
}

const HEX32 = /^[0-9a-f]{32}$/;
const HEX64 = /^[0-9a-f]{64}$/;
/** The names an object member may have: the repository keys a tape carries. */
export const OBJECT_MEMBER = /^(config|keys\/[0-9a-f]{16}|snapshots\/[0-9a-f]{64}|(indexes|chunks|trees)\/([0-9a-f]{2})\/\3[0-9a-f]{62})$/;
/** The object members a version 2 set may hold besides: packs and index segments. */
export const PACKED_OBJECT_MEMBER = /^(packs\/([0-9a-f]{2})\/\2[0-9a-f]{62}|segments\/[0-9a-f]{64})$/;

export function encodeTapeLabel(label: TapeLabel): Buffer {
  return Buffer.from(`${JSON.stringify(label)}\n`, 'utf8');
}

export function encodeTapeIndex(index: TapeIndex): Buffer {
  return Buffer.from(`${JSON.stringify(index)}\n`, 'utf8');
}

/** The byte length of one member's entry in an encoded index, with its separating comma. */
export function indexEntryLength(member: TapeMember, first: boolean): number {
  return Buffer.byteLength(JSON.stringify(member), 'utf8') + (first ? 0 : 1);
}

const invalid = (where: string, why: string) => new CofferError('E_TAPE_INVALID', `${where}: ${why}`, { subject: { path: where } });
const isCount = (value: unknown, min: number): value is number => Number.isSafeInteger(value) && (value as number) >= min;

function parseJsonObject(bytes: Uint8Array, where: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw invalid(where, 'not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(where, 'not a JSON object');
  return value as Record<string, unknown>;
}

/** Parses a label; `E_TAPE_INVALID` for anything else (`where` names the volume). */
export function decodeTapeLabel(bytes: Uint8Array, where: string): TapeLabel {
  const v = parseJsonObject(bytes, where);
  if (v.format !== TAPE_FORMAT) throw invalid(where, 'not a Coffer tape label');
  if (v.version !== TAPE_FORMAT_VERSION && v.version !== TAPE_FORMAT_VERSION_PACKS) {
    throw invalid(where, `tape format version ${String(v.version)} is not known to this Coffer (it reads versions ${TAPE_FORMAT_VERSION} and ${TAPE_FORMAT_VERSION_PACKS})`);
  }
  if (typeof v.tapeSet !== 'string' || !HEX32.test(v.tapeSet)) throw invalid(where, 'bad tapeSet in the label');
  if (!isCount(v.sequence, 1)) throw invalid(where, 'bad sequence number in the label');
  if (typeof v.repository !== 'string' || !HEX32.test(v.repository)) throw invalid(where, 'bad repository id in the label');
  if (typeof v.created !== 'string' || Number.isNaN(Date.parse(v.created))) throw invalid(where, 'bad creation time in the label');
  if (!isCount(v.recordSize, 1) || !isValidRecordSize(v.recordSize)) throw invalid(where, 'bad record size in the label');
  return { format: TAPE_FORMAT, version: v.version, tapeSet: v.tapeSet, sequence: v.sequence, repository: v.repository, created: v.created, recordSize: v.recordSize };
}

/** Parses an index; `E_TAPE_INVALID` for anything else. */
export function decodeTapeIndex(bytes: Uint8Array, where: string): TapeIndex {
  const v = parseJsonObject(bytes, where);
  if (v.format !== TAPE_INDEX_FORMAT || v.version !== TAPE_FORMAT_VERSION) throw invalid(where, 'not a version 1 Coffer tape index');
  if (typeof v.tapeSet !== 'string' || !HEX32.test(v.tapeSet)) throw invalid(where, 'bad tapeSet in the index');
  if (!isCount(v.sequence, 1)) throw invalid(where, 'bad sequence number in the index');
  if (typeof v.final !== 'boolean') throw invalid(where, 'bad final flag in the index');
  if (v.final ? !isCount(v.volumes, 1) || v.volumes !== v.sequence : v.volumes !== null) throw invalid(where, 'bad volume count in the index');
  if (!Array.isArray(v.snapshots) || !v.snapshots.every((s) => typeof s === 'string' && HEX64.test(s))) throw invalid(where, 'bad snapshot list in the index');
  if (!Array.isArray(v.members)) throw invalid(where, 'no member list in the index');
  const members: TapeMember[] = v.members.map((m: unknown, i) => {
    const e = m as Record<string, unknown>;
    if (typeof e !== 'object' || e === null || typeof e.name !== 'string' || !isCount(e.offset, 0) || !isCount(e.size, 0) || typeof e.sha256 !== 'string' || !HEX64.test(e.sha256)) {
      throw invalid(where, `bad member ${i} in the index`);
    }
    return { name: e.name, offset: e.offset, size: e.size, sha256: e.sha256 };
  });
  return {
    format: TAPE_INDEX_FORMAT,
    version: TAPE_FORMAT_VERSION,
    tapeSet: v.tapeSet,
    sequence: v.sequence,
    final: v.final,
    volumes: v.final ? (v.volumes as number) : null,
    snapshots: v.snapshots as string[],
    members,
  };
}
