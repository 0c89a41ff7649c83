/**
 * A snapshot manifest, version 1: one backup of one VM. Stored as a content-addressed object
 * of kind 3 under `snapshots/<id>`, where `<id>` is the manifest's object id in hex; it is
 * written last, atomically, after every chunk and index page it names, so a snapshot exists
 * only when complete. The plaintext is UTF-8 JSON:
 *
 * ```json
 * {
 *   "version": 1,
 *   "vm": "web01",                        // 1..200 printable characters
 *   "time": "2026-11-25T01:00:00.000Z",   // ISO 8601 UTC, the instant the data was captured
 *   "hostname": "hv03",                   // where the backup ran
 *   "tags": ["nightly"],
 *   "parent": "<64 hex> | null",          // the snapshot this one was compared against
 *   "definition": { "format": "none" | "qemu-qmp" | "libvirt-xml" | ..., "data": "<base64>" } | null,
 *   "disks": [{
 *     "name": "disk0", "size": 4294967296, "sourceFormat": "raw", "source": "/vm/web01.raw",
 *     "blockSize": 262144, "entriesPerPage": 4096,
 *     "pages": ["<64 hex: index page object id>", ...],  // ceil(ceil(size / blockSize) / entriesPerPage)
 *     "layers": [{ "path": "/vm/top.qcow2", "identity": "<dev:ino:size:mtime>" }, ...],  // optional
 *     "changeTracking": { "method": "dirty-bitmap", "checkpoint": "coffer-…", "reason": "…" }  // optional
 *   }],
 *   "stats": { "bytesLogical": 0, "bytesRead": 0, "bytesNew": 0, "bytesStored": 0, "durationMs": 0 },
 *   "consistency": { "level": "application" | "crash", "reason": "…",   // optional: absent when
 *                    "frozenFilesystems": 2, "frozenMs": 35 },           // the source cannot tell
 *   "prunedThrough": "000000000007.<32 hex>" | "none"   // optional, format 2: the newest pack-removal
 *                                                     // record when the backup started (removed-packs.ts)
 * }
 * ```
 * Version 2 (a file snapshot, docs/repository-format.md §16) has the same fields with
 * `"version": 2`, `"disks": []` and a `files` member:
 * ```json
 *   "files": { "tree": "<64 hex: root tree object>", "paths": ["/etc", "/home/ann"],
 *              "stdinName": "db.sql",            // optional: a stream read from standard input
 *              "entries": 1234,                  // entries in all the trees
 *              "warnings": [{ "path": "/var/log/x", "message": "changed while read" }] }
 * ```
 * A version 1 reader refuses version 2 ("unknown version"), so nothing that only knows disks
 * (a prune that would not see the chunks of file snapshots) ever misreads one.
 *
 * Byte `i` of a disk lies in block `floor(i / blockSize)`, whose entry is entry
 * `block % entriesPerPage` of page `floor(block / entriesPerPage)`. The last block of a disk
 * may be shorter than `blockSize`; its chunk holds only the bytes inside the disk.
 */
import { CofferError } from '../../errors/index.js';
import { isValidBlockSize } from './config.js';
import { MAX_ENTRIES_PER_PAGE } from './index-page.js';

/** The figures of one backup run. */
export interface SnapshotStats {
  /** Sum of the sizes of the disks. */
  bytesLogical: number;
  /** Bytes actually read from the source (zero and unchanged ranges are not read). */
  bytesRead: number;
  /** Plaintext bytes of chunks that the repository did not have before. */
  bytesNew: number;
  /** Bytes those new chunks (and new index pages) take in the repository. */
  bytesStored: number;
  durationMs: number;
}

/** One disk of a snapshot. */
export interface DiskRecord {
  name: string;
  size: number;
  sourceFormat: string;
  source: string;
  blockSize: number;
  entriesPerPage: number;
  pages: string[];
  /** The image chain read, top first, when the source was a chain of files (optional). */
  layers?: { path: string; identity: string }[];
  /** How this capture knew which ranges were unchanged since its parent (optional). */
  changeTracking?: ChangeTrackingRecord;
}

/**
 * Change tracking of one disk in one snapshot. `method` says how unchanged ranges were known:
 * `dirty-bitmap` (a QEMU dirty bitmap since the parent's checkpoint), `image-chain` (the
 * parent read the same backing files), `changed-ranges` (a list given by the user against an
 * explicit base), or `none` (every allocated range was read; `reason`
 * says why when tracking was expected). `checkpoint` names what this capture left for the next
 * backup to start from (a QEMU persistent dirty bitmap on the disk's node).
 */
export interface ChangeTrackingRecord {
  method: 'dirty-bitmap' | 'image-chain' | 'changed-ranges' | 'none';
  reason?: string;
  checkpoint?: string;
}

/**
 * How consistent the captured disks are. `application`: the guest's filesystems were frozen
 * through its agent at the instant (`frozenFilesystems` of them, for `frozenMs` ms);
 * `crash`: as after a power cut at the instant, `reason` says why nothing was frozen (no
 * guest agent channel, the agent did not answer, the freeze failed, `--no-freeze`).
 * Optional and added later: readers ignore it when absent, and older readers ignore it.
 */
export interface ConsistencyRecord {
  level: 'application' | 'crash';
  reason?: string;
  frozenFilesystems?: number;
  frozenMs?: number;
}

/** The VM's definition as the source reported it; opaque to the repository. */
export interface VmDefinition {
  format: string;
  data: string;
}

/** A problem met while reading the files of a file snapshot (the backup went on). */
export interface FileWarning {
  path: string;
  message: string;
}

/** What a file snapshot (manifest version 2) holds instead of disks. */
export interface FilesRecord {
  /** The root tree object (64 hex). */
  tree: string;
  /** The absolute paths backed up (empty for a stream from standard input). */
  paths: string[];
  /** The name of the stream read from standard input, when that is what was backed up. */
  stdinName?: string;
  /** Entries in all trees. */
  entries: number;
  warnings: FileWarning[];
}

/** A parsed manifest. */
export interface SnapshotManifest {
  /** 1: disks; 2: a file snapshot (`files`, no disks). */
  version: 1 | 2;
  vm: string;
  time: string;
  hostname: string;
  tags: string[];
  parent: string | null;
  definition: VmDefinition | null;
  disks: DiskRecord[];
  stats: SnapshotStats;
  consistency?: ConsistencyRecord;
  /**
   * Format 2 disk snapshots (docs/repository-format.md §19.11): the name of the newest
   * pack-removal record when the backup started, or `none`; absent in snapshots written
   * before. The next incremental reads only the records after it. A value that is not a
   * record name is read as absent.
   */
  prunedThrough?: string;
  /** Version 2 only. */
  files?: FilesRecord;
}

const HEX_ID = /^[0-9a-f]{64}$/;
const NAME = /^[^\u0000-\u001f\u007f]{1,200}$/;

/** A tag as a manifest may hold it (and a tag record, §20): 1 to 200 characters, no control character. */
export function isValidTag(tag: unknown): tag is string {
  return typeof tag === 'string' && NAME.test(tag);
}

/** Serializes a manifest. */
export function encodeManifest(manifest: SnapshotManifest): Buffer {
  return Buffer.from(JSON.stringify(manifest), 'utf8');
}

/** Number of index pages a disk of `size` bytes needs. */
export function pageCount(size: number, blockSize: number, entriesPerPage: number): number {
  return Math.ceil(Math.ceil(size / blockSize) / entriesPerPage);
}

/** Parses and validates a manifest; `E_CORRUPT_OBJECT` for anything malformed. */
export function decodeManifest(bytes: Buffer, name: string): SnapshotManifest {
  const corrupt = (why: string) =>
    new CofferError('E_CORRUPT_OBJECT', `snapshot manifest ${name} is corrupt: ${why}`, { subject: { object: name } });
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw corrupt('not JSON');
  }
  const m = value as Partial<SnapshotManifest>;
  if (typeof m !== 'object' || m === null || (m.version !== 1 && m.version !== 2)) throw corrupt('unknown version');
  if (typeof m.vm !== 'string' || !NAME.test(m.vm)) throw corrupt('bad VM name');
  if (typeof m.time !== 'string' || Number.isNaN(Date.parse(m.time))) throw corrupt('bad time');
  if (typeof m.hostname !== 'string') throw corrupt('bad hostname');
  if (!Array.isArray(m.tags) || !m.tags.every(isValidTag)) throw corrupt('bad tags');
  if (m.parent !== null && (typeof m.parent !== 'string' || !HEX_ID.test(m.parent))) throw corrupt('bad parent');
  const definition = m.definition;
  if (definition !== null && (typeof definition !== 'object' || typeof definition?.format !== 'string' || typeof definition.data !== 'string')) {
    throw corrupt('bad definition');
  }
  if (m.version === 1 && m.files !== undefined) throw corrupt('files in a version 1 manifest');
  if (m.version === 2 && !isFilesRecord(m.files)) throw corrupt('bad files');
  if (!Array.isArray(m.disks) || (m.version === 1 ? m.disks.length === 0 : m.disks.length !== 0)) throw corrupt(m.version === 1 ? 'no disks' : 'disks in a file snapshot');
  for (const disk of m.disks) validateDisk(disk, corrupt);
  const stats = m.stats;
  const figures = ['bytesLogical', 'bytesRead', 'bytesNew', 'bytesStored', 'durationMs'] as const;
  if (typeof stats !== 'object' || stats === null || !figures.every((key) => Number.isSafeInteger(stats[key]) && stats[key] >= 0)) {
    throw corrupt('bad stats');
  }
  if (m.consistency !== undefined && !isConsistency(m.consistency)) throw corrupt('bad consistency');
  if (m.prunedThrough !== undefined && typeof m.prunedThrough !== 'string') throw corrupt('bad prunedThrough');
  return m as SnapshotManifest;
}

function validateDisk(disk: DiskRecord, corrupt: (why: string) => CofferError): void {
  if (typeof disk !== 'object' || disk === null || typeof disk.name !== 'string' || !NAME.test(disk.name)) throw corrupt('bad disk name');
  if (!Number.isSafeInteger(disk.size) || disk.size < 0) throw corrupt(`disk ${disk.name}: bad size`);
  if (!isValidBlockSize(disk.blockSize)) throw corrupt(`disk ${disk.name}: bad block size`);
  if (!Number.isInteger(disk.entriesPerPage) || disk.entriesPerPage < 1 || disk.entriesPerPage > MAX_ENTRIES_PER_PAGE) {
    throw corrupt(`disk ${disk.name}: bad entries per page`);
  }
  if (typeof disk.sourceFormat !== 'string' || typeof disk.source !== 'string') throw corrupt(`disk ${disk.name}: bad source`);
  if (!Array.isArray(disk.pages) || !disk.pages.every((page) => typeof page === 'string' && HEX_ID.test(page))) {
    throw corrupt(`disk ${disk.name}: bad pages`);
  }
  if (disk.pages.length !== pageCount(disk.size, disk.blockSize, disk.entriesPerPage)) throw corrupt(`disk ${disk.name}: wrong page count`);
  if (disk.layers !== undefined && (!Array.isArray(disk.layers) || !disk.layers.every((l) => typeof l?.path === 'string' && typeof l.identity === 'string'))) {
    throw corrupt(`disk ${disk.name}: bad layers`);
  }
  const tracking = disk.changeTracking;
  if (
    tracking !== undefined &&
    (typeof tracking !== 'object' || tracking === null || !['dirty-bitmap', 'image-chain', 'changed-ranges', 'none'].includes(tracking.method) ||
      (tracking.reason !== undefined && typeof tracking.reason !== 'string') ||
      (tracking.checkpoint !== undefined && (typeof tracking.checkpoint !== 'string' || !NAME.test(tracking.checkpoint))))
  ) {
    throw corrupt(`disk ${disk.name}: bad change tracking`);
  }
}

function isConsistency(value: unknown): value is ConsistencyRecord {
  if (typeof value !== 'object' || value === null) return false;
  const c = value as Partial<ConsistencyRecord>;
  const count = (n: unknown) => n === undefined || (Number.isSafeInteger(n) && (n as number) >= 0);
  return (c.level === 'application' || c.level === 'crash') && (c.reason === undefined || typeof c.reason === 'string') && count(c.frozenFilesystems) && count(c.frozenMs);
}

function isFilesRecord(value: unknown): value is FilesRecord {
  if (typeof value !== 'object' || value === null) return false;
  const f = value as Partial<FilesRecord>;
  return (
    typeof f.tree === 'string' && HEX_ID.test(f.tree) &&
    Array.isArray(f.paths) && f.paths.every((p) => typeof p === 'string' && p.startsWith('/')) &&
    (f.stdinName === undefined || typeof f.stdinName === 'string') &&
    Number.isSafeInteger(f.entries) && (f.entries as number) >= 0 &&
    Array.isArray(f.warnings) && f.warnings.every((w) => typeof w?.path === 'string' && typeof w.message === 'string')
  );
}
