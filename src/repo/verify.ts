import { forEachLimited } from '../concurrency/index.js';
import { CofferError, isCofferError } from '../errors/index.js';
import { listQuarantined, quarantineChunk } from './damage.js';
import { ObjectKind } from './format/envelope.js';
import { isZeroEntry } from './format/index-page.js';
import { segmentNames } from './chunk-index.js';
import { CHUNKS_PREFIX, chunkKey, idFromKey } from './layout.js';
import { readSegment } from './pack-plan.js';
import type { Repository } from './repository.js';
import { listSnapshots, type Snapshot } from './snapshots.js';
import { walkBlocks } from './walk.js';
import { checkPackedChunks, checkPackTrailers, chunksInMissingPacks, listStoredPacks, withoutRemovedPacks } from './verify-packs.js';
import { walkFileTrees } from './file-trees.js';
import { FrameReadAhead } from './frame-read-ahead.js';
import { locateChunks } from './chunks-by-id.js';
import { subsetContains, type VerificationRecord, type VerificationSubset } from './format/verification-record.js';
import { addVerificationRecord, lastVerifiedLookup, listVerificationRecords } from './verification-log.js';

/**
 * Chunks checked per worker task. 16 chunks are ≤ 4 MiB of plaintext at the default 256 KiB
 * block: enough to make a task's round trip negligible, small enough to keep both workers fed.
 */
const CHECK_BATCH = 16;

/** A chunk, index page or manifest that is missing or corrupt. */
export interface DamagedObject {
  kind: 'chunk' | 'index page' | 'manifest' | 'file tree' | 'pack' | 'segment';
  id: string;
  problem: 'missing' | 'corrupt';
  message: string;
}

/**
 * A byte range of a disk of a snapshot that cannot be restored; for a file snapshot, `disk`
 * is the path of the file (or of the directory whose tree is damaged, with no ranges).
 */
export interface AffectedRange {
  snapshot: string;
  vm: string;
  time: string;
  disk: string;
  ranges: { start: number; end: number }[];
  /**
   * An index page of this disk (a file snapshot: a directory tree) is missing or corrupt, not
   * only chunks: nothing but the snapshot's source gives it back, by a new copy (sync, once the
   * damaged copy is forgotten) or a new backup.
   */
  indexDamaged?: true;
}

/** How much of a snapshot's data has been read and found intact, over all verify runs. */
export interface SnapshotVerification {
  snapshot: string;
  vm: string;
  time: string;
  /** Distinct chunks the snapshot uses. */
  chunks: number;
  /** Of those, how many some verify run read and found intact (this one included). */
  verifiedChunks: number;
  /** When every chunk had been read: the oldest of their last reads; null while some never was. */
  fullyVerifiedAt: string | null;
}

/** What verify found. */
export interface VerifyReport {
  snapshots: number;
  chunksReferenced: number;
  /** Chunks of the subset not read because a run within `since` read them (with readData). */
  chunksSkipped: number;
  /** Per snapshot, how much is verified (with readData). */
  verification: SnapshotVerification[];
  /** Chunks read and checked in full (with readData). */
  chunksRead: number;
  bytesRead: number;
  damaged: DamagedObject[];
  affected: AffectedRange[];
  /** Damaged chunks set aside under quarantine/ so the next backup stores them again. */
  quarantined: number;
  /**
   * Why verify's own records (quarantine markers, the verification record) could not be
   * written: a read-only or full repository (an offsite copy, WORM storage, read-only
   * credentials). The findings above stand; only their record is missing.
   */
  notRecorded?: string;
}

/** Format 2: the index segments that cannot be read or do not decode, each with the way to rebuild them. */
async function damagedSegments(repo: Repository): Promise<DamagedObject[]> {
  const damaged: DamagedObject[] = [];
  await forEachLimited(await segmentNames(repo), 8, async (hex) => {
    try {
      await readSegment(repo, hex);
    } catch (error) {
      if (!isCofferError(error, 'E_CORRUPT_OBJECT') && !isCofferError(error, 'E_MISSING_OBJECT')) throw error;
      damaged.push({ kind: 'segment', id: hex, problem: error.code === 'E_MISSING_OBJECT' ? 'missing' : 'corrupt', message: `${error.message}; 'coffer repair --index' rebuilds the index from the packs` });
    }
  });
  return damaged;
}

/**
 * Whether a failed write of verify's own records leaves its findings true and worth
 * reporting: the repository is read-only, full, or refuses writes to these credentials.
 */
export function isUnwritableStorage(error: unknown): boolean {
  if (!(error instanceof CofferError)) return false;
  if (error.code === 'E_NO_SPACE' || error.code === 'E_ACCESS_DENIED') return true;
  if (error.code !== 'E_BACKEND_IO') return false;
  const cause = (error.cause as NodeJS.ErrnoException | undefined)?.code;
  return cause === 'EROFS' || cause === 'EACCES' || cause === 'EPERM' || /access denied/.test(error.message);
}

/** Progress: chunks checked of the total. */
export interface VerifyProgress {
  phase: 'index' | 'chunks';
  done: number;
  total: number;
  bytesRead: number;
}

/** How {@link verifyRepository} runs. */
export interface VerifyOptions {
  readData: boolean;
  now: () => Date;
  onProgress?: (progress: VerifyProgress) => void;
  concurrency?: number;
  /** With readData: which chunks to read (default all); see format/verification-record.ts. */
  subset?: VerificationSubset;
  /** With readData: skip chunks some run read and found intact less than this many ms ago. */
  sinceMs?: number;
}

/**
 * Checks that every chunk every snapshot refers to exists and (with `readData`) reads,
 * authenticates, decompresses and rehashes each once. Damage is named down to the
 * snapshots, disks and byte ranges it affects. Damaged chunks are set aside (see
 * `damage.ts`) so that the next backup meeting the same data heals every snapshot.
 */
export async function verifyRepository(repo: Repository, options: VerifyOptions): Promise<VerifyReport> {
  const started = options.now();
  // The threads load their modules (~0.1 s) while the snapshots and their indexes are read.
  if (options.readData) repo.pool.start();
  const subset: VerificationSubset = options.subset ?? { kind: 'all' };
  // A full read of format 2 starts reading frames now, not after the walk (frame-read-ahead.ts).
  const readAhead = options.readData && repo.config.version === 2 && subset.kind === 'all' && options.sinceMs === undefined ? new FrameReadAhead(repo) : undefined;
  try {
    await readAhead?.started; // the threads get their first frames before the walk takes the main thread
    return await verifyWith(repo, options, started, subset, readAhead);
  } finally {
    readAhead?.stop();
  }
}

/** {@link verifyRepository}, with its start time, subset and (a full read of format 2) read-ahead settled. */
async function verifyWith(
  repo: Repository,
  options: VerifyOptions,
  started: Date,
  subset: VerificationSubset,
  readAhead: FrameReadAhead | undefined,
): Promise<VerifyReport> {
  const records = options.readData ? await listVerificationRecords(repo) : [];
  const lastVerified = lastVerifiedLookup(records);
  const damaged: DamagedObject[] = [];
  const snapshots = await listSnapshots(repo, {
    onDamaged: (id, error) => damaged.push({ kind: 'manifest', id, problem: error.code === 'E_MISSING_OBJECT' ? 'missing' : 'corrupt', message: error.message }),
  });
  const referenced = new Map<string, number>(); // id → plaintext length
  const locations = new Map<string, Buffer>(); // format 2: id → the located entry a snapshot names it by
  const packed = repo.config.version === 2;
  const damagedPages: { snapshot: Snapshot; disk: string; start: number; end: number }[] = [];
  await walkBlocks(
    repo,
    snapshots,
    (visit) => {
      if (isZeroEntry(visit.entry)) return;
      const hex = visit.entry.toString('hex');
      referenced.set(hex, visit.length);
      if (visit.located !== undefined && !locations.has(hex)) locations.set(hex, Buffer.from(visit.located));
    },
    (damage) => {
      damaged.push({ kind: 'index page', id: damage.page, problem: damage.error.code === 'E_MISSING_OBJECT' ? 'missing' : 'corrupt', message: damage.error.message });
      damagedPages.push({ snapshot: damage.snapshot, disk: damage.disk.name, start: damage.offset, end: damage.offset + damage.length });
    },
    { distinctPages: true },
  );
  // File snapshots: every tree is read (and so checked), every chunk of every file marked.
  await walkFileTrees(
    repo,
    snapshots,
    { chunk: (visit) => referenced.set(visit.id, visit.length) },
    (damage) => {
      damaged.push({ kind: 'file tree', id: damage.tree, problem: damage.error.code === 'E_MISSING_OBJECT' ? 'missing' : 'corrupt', message: damage.error.message });
      damagedPages.push({ snapshot: damage.snapshot, disk: damage.path, start: 0, end: 0 });
    },
    { distinct: true },
  );
  // Format 2: every index segment read and authenticated. They are derived (rebuilt from the
  // packs' trailers by 'repair --index'), but a damaged one stops backups and prunes.
  if (packed) damaged.push(...(await damagedSegments(repo)));
  // Format 2: file trees name their chunks by id only; the places come from the index
  // segments, read once for all of them (docs/repository-format.md §19.10).
  const unlocated: string[] = [];
  if (packed) {
    const wanted = new Set([...referenced.keys()].filter((hex) => !locations.has(hex)));
    const places = await locateChunks(repo, wanted);
    for (const hex of wanted) {
      const entry = places.get(hex)?.[0];
      if (entry === undefined) unlocated.push(hex);
      else locations.set(hex, entry);
    }
  }
  options.onProgress?.({ phase: 'index', done: snapshots.length, total: snapshots.length, bytesRead: 0 });

  const bad = new Map<string, DamagedObject>();
  for (const hex of unlocated) bad.set(hex, { kind: 'chunk', id: hex, problem: 'missing', message: `chunk ${hex} is missing: no index segment names it` });
  let chunksRead = 0;
  let bytesRead = 0;
  let chunksSkipped = 0;
  let verifiedIfIntact: (() => Promise<SnapshotVerification[]>) | undefined;
  if (options.readData) {
    const cutoff = options.sinceMs === undefined ? undefined : started.getTime() - options.sinceMs;
    const toRead: string[] = [];
    for (const hex of referenced.keys()) {
      const id = Buffer.from(hex, 'hex');
      if (!subsetContains(subset, id)) continue;
      const last = cutoff === undefined ? undefined : lastVerified(id, hex);
      if (last !== undefined && cutoff !== undefined && last >= cutoff) chunksSkipped++;
      else toRead.push(hex);
    }
    // While the workers read, the main thread (mostly idle then) counts each snapshot's
    // verified share as it will be if nothing is damaged; used only then (~0.1 s of a verify).
    // Started once the first chunks are checked, so as not to delay the first reads.
    const countWhileReading = (): void => {
      verifiedIfIntact ??= settled(verificationOfSnapshots(repo, snapshots, lastVerifiedLookup([...records, runRecord(started, subset, options.sinceMs, 0, 0, [])])));
    };
    if (packed) {
      // Format 2: each frame read once, every chunk in it rehashed (verify-packs.ts).
      const packs = await (readAhead?.packs ?? listStoredPacks(repo));
      // A full read also checks what the frames do not cover: each pack's footer and trailer.
      const trailers = readAhead !== undefined ? () => readAhead.trailerProblems() : subset.kind === 'all' ? settled(checkPackTrailers(repo, packs)) : undefined;
      const problems = await checkPackedChunks(repo, toRead, locations, (chunks, bytes) => {
        countWhileReading();
        chunksRead += chunks;
        bytesRead += bytes;
        options.onProgress?.({ phase: 'chunks', done: chunksRead, total: toRead.length, bytesRead });
      }, packs, readAhead);
      for (const [hex, p] of problems) bad.set(hex, { kind: 'chunk', id: hex, problem: p.problem, message: p.message });
      toRead.length = 0;
      // A pack a prune beside verify removed since verify listed it (no lease between them) is gone, not damaged.
      for (const p of await withoutRemovedPacks(repo, (await trailers?.()) ?? [])) damaged.push({ kind: 'pack', id: p.pack, problem: p.problem, message: p.message });
    }
    // Chunks go to the workers CHECK_BATCH at a time (one task each: see CodecPool.checkMany);
    // `concurrency` counts chunks in flight, as before.
    const batches: string[][] = [];
    for (let i = 0; i < toRead.length; i += CHECK_BATCH) batches.push(toRead.slice(i, i + CHECK_BATCH));
    const inFlight = options.concurrency ?? repo.pool.threads * 2 * CHECK_BATCH;
    const problem = (hex: string, error: unknown): void => {
      if (!isCofferError(error, 'E_MISSING_OBJECT') && !isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
      bad.set(hex, { kind: 'chunk', id: hex, problem: error.code === 'E_MISSING_OBJECT' ? 'missing' : 'corrupt', message: error.message });
    };
    if (batches.length > 0) countWhileReading();
    await forEachLimited(batches, Math.max(1, Math.round(inFlight / CHECK_BATCH)), async (batch) => {
      const read = await Promise.all(
        batch.map(async (hex) => {
          try {
            const blob = await repo.getChunkBlob(Buffer.from(hex, 'hex'));
            bytesRead += blob.length;
            return { hex, blob };
          } catch (error) {
            problem(hex, error);
            return null;
          }
        }),
      );
      const present = read.filter((r) => r !== null);
      const checked = await repo.pool.checkMany(present.map((r) => ({ blob: r.blob, kind: ObjectKind.chunk, name: chunkKey(r.hex), id: Buffer.from(r.hex, 'hex') })));
      checked.forEach((error, i) => {
        if (error !== null) problem(present[i]!.hex, error);
      });
      chunksRead += batch.length;
      options.onProgress?.({ phase: 'chunks', done: chunksRead, total: toRead.length, bytesRead });
    });
  }
  if (packed && (!options.readData || subset.kind !== 'all' || chunksSkipped > 0)) {
    const unread = [...referenced.keys()].filter((hex) => !bad.has(hex));
    for (const [hex, p] of await chunksInMissingPacks(repo, unread, locations)) bad.set(hex, { kind: 'chunk', id: hex, problem: p.problem, message: p.message });
  } else if (!options.readData || subset.kind !== 'all' || chunksSkipped > 0) {
    // What was not read is at least checked to exist (one listing).
    const missing = new Set([...referenced.keys()].filter((hex) => !bad.has(hex)));
    for await (const entry of repo.backend.list(CHUNKS_PREFIX)) {
      const hex = idFromKey(entry.key);
      if (hex !== null) missing.delete(hex);
    }
    for (const hex of missing) bad.set(hex, { kind: 'chunk', id: hex, problem: 'missing', message: `chunk ${hex} is missing` });
  }
  damaged.push(...bad.values());

  const affected = await affectedRanges(repo, snapshots, bad, damagedPages);
  let notRecorded: string | undefined;
  /** Verify's own writes: on a repository that takes none, the findings are still reported. */
  const recording = async (write: () => Promise<unknown>): Promise<boolean> => {
    if (notRecorded !== undefined) return false;
    try {
      await write();
      return true;
    } catch (error) {
      if (!isUnwritableStorage(error)) throw error;
      notRecorded = (error as CofferError).message;
      return false;
    }
  };
  const setAside = bad.size > 0 ? await listQuarantined(repo) : new Set<string>();
  for (const [hex, damage] of bad) await recording(() => quarantineChunk(repo, Buffer.from(hex, 'hex'), options.now(), damage.message, setAside));
  let verification: SnapshotVerification[] = [];
  if (options.readData) {
    const record = runRecord(started, subset, options.sinceMs, chunksRead, bytesRead, [...bad.keys()].filter((hex) => subsetContains(subset, Buffer.from(hex, 'hex'))));
    await recording(() => addVerificationRecord(repo, record));
    const counted = await verifiedIfIntact?.();
    verification = counted !== undefined && record.damaged.length === 0 ? counted : await verificationOfSnapshots(repo, snapshots, lastVerifiedLookup([...records, record]));
  }
  return { snapshots: snapshots.length, chunksReferenced: referenced.size, chunksSkipped, verification, chunksRead, bytesRead, damaged, affected, quarantined: notRecorded === undefined ? bad.size : 0, ...(notRecorded !== undefined ? { notRecorded } : {}) };
}

/** The record of this verify run (format/verification-record.ts). */
function runRecord(started: Date, subset: VerificationSubset, sinceMs: number | undefined, chunksRead: number, bytesRead: number, damaged: string[]): VerificationRecord {
  return { version: 1, time: started.toISOString(), subset, since: sinceMs ?? null, chunksRead, bytesRead, damaged: damaged.sort() };
}

/**
 * Starts `work` now and answers a function that awaits it: its rejection, should it come
 * before anyone waits, is held (not an unhandled rejection) and thrown by that function.
 */
function settled<T>(work: Promise<T>): () => Promise<T> {
  const outcome = work.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  return async () => {
    const result = await outcome;
    if (!result.ok) throw result.error;
    return result.value;
  };
}

/** Per snapshot: how many of its chunks have been verified, and since when all of them. */
async function verificationOfSnapshots(
  repo: Repository,
  snapshots: Snapshot[],
  lastVerified: (id: Uint8Array, hex: string) => number | undefined,
): Promise<SnapshotVerification[]> {
  const results: SnapshotVerification[] = [];
  for (const snapshot of snapshots) {
    const seen = new Set<string>();
    let verified = 0;
    let neverRead = false;
    let oldest = Number.POSITIVE_INFINITY;
    await walkBlocks(
      repo,
      [snapshot],
      (visit) => {
        if (isZeroEntry(visit.entry)) return;
        const hex = visit.entry.toString('hex');
        if (seen.has(hex)) return;
        seen.add(hex);
        const last = lastVerified(visit.entry, hex);
        if (last === undefined) neverRead = true;
        else {
          verified++;
          oldest = Math.min(oldest, last);
        }
      },
      () => (neverRead = true), // a damaged index page: its chunks are unknown
      { distinctPages: true },
    );
    await walkFileTrees(
      repo,
      [snapshot],
      {
        chunk: (visit) => {
          if (seen.has(visit.id)) return;
          seen.add(visit.id);
          const last = lastVerified(Buffer.from(visit.id, 'hex'), visit.id);
          if (last === undefined) neverRead = true;
          else {
            verified++;
            oldest = Math.min(oldest, last);
          }
        },
      },
      () => (neverRead = true),
      { distinct: true },
    );
    const complete = !neverRead && Number.isFinite(oldest);
    results.push({
      snapshot: snapshot.id,
      vm: snapshot.vm,
      time: snapshot.time,
      chunks: seen.size,
      verifiedChunks: verified,
      fullyVerifiedAt: complete ? new Date(oldest).toISOString() : null,
    });
  }
  return results;
}

/** Second pass, only when something is damaged: which snapshot, disk and bytes it touches. */
async function affectedRanges(
  repo: Repository,
  snapshots: Snapshot[],
  bad: ReadonlyMap<string, DamagedObject>,
  damagedPages: { snapshot: Snapshot; disk: string; start: number; end: number }[],
): Promise<AffectedRange[]> {
  const byDisk = new Map<string, AffectedRange>();
  const add = (snapshot: Snapshot, disk: string, start: number, end: number, index = false) => {
    const key = `${snapshot.id}/${disk}`;
    let record = byDisk.get(key);
    if (record === undefined) {
      record = { snapshot: snapshot.id, vm: snapshot.vm, time: snapshot.time, disk, ranges: [] };
      byDisk.set(key, record);
    }
    if (index) record.indexDamaged = true;
    const last = record.ranges.at(-1);
    if (last !== undefined && last.end === start) last.end = end;
    else if (end > start) record.ranges.push({ start, end });
  };
  for (const page of damagedPages) add(page.snapshot, page.disk, page.start, page.end, true);
  if (bad.size > 0) {
    await walkBlocks(
      repo,
      snapshots,
      (visit) => {
        if (bad.has(visit.entry.toString('hex'))) add(visit.snapshot, visit.disk.name, visit.offset, visit.offset + visit.length);
      },
      () => undefined,
    );
    await walkFileTrees(
      repo,
      snapshots,
      { chunk: (visit) => (bad.has(visit.id) ? add(visit.snapshot, visit.path, visit.offset, visit.offset + visit.length) : undefined) },
      () => undefined,
    );
  }
  return [...byDisk.values()];
}
