import { forEachLimited } from '../concurrency/index.js';
import { isCofferError } from '../errors/index.js';
import { quarantineChunk } from './damage.js';
import { ObjectKind } from './format/envelope.js';
import { isZeroEntry } from './format/index-page.js';
import { CHUNKS_PREFIX, chunkKey, idFromKey } from './layout.js';
import type { Repository } from './repository.js';
import { listSnapshots, type Snapshot } from './snapshots.js';
import { walkBlocks } from './walk.js';

/** A chunk, index page or manifest that is missing or corrupt. */
export interface DamagedObject {
  kind: 'chunk' | 'index page' | 'manifest';
  id: string;
  problem: 'missing' | 'corrupt';
  message: string;
}

/** A byte range of a disk of a snapshot that cannot be restored. */
export interface AffectedRange {
  snapshot: string;
  vm: string;
  time: string;
  disk: string;
  ranges: { start: number; end: number }[];
}

/** What verify found. */
export interface VerifyReport {
  snapshots: number;
  chunksReferenced: number;
  /** Chunks read and checked in full (with readData). */
  chunksRead: number;
  bytesRead: number;
  damaged: DamagedObject[];
  affected: AffectedRange[];
  /** Damaged chunks set aside under quarantine/ so the next backup stores them again. */
  quarantined: number;
}

/** Progress: chunks checked of the total. */
export interface VerifyProgress {
  phase: 'index' | 'chunks';
  done: number;
  total: number;
  bytesRead: number;
}

/**
 * Checks that every chunk every snapshot refers to exists and (with `readData`) reads,
 * authenticates, decompresses and rehashes each once. Damage is named down to the
 * snapshots, disks and byte ranges it affects. Damaged chunks are set aside (see
 * `damage.ts`) so that the next backup meeting the same data heals every snapshot.
 */
export async function verifyRepository(
  repo: Repository,
  options: { readData: boolean; now: () => Date; onProgress?: (progress: VerifyProgress) => void; concurrency?: number },
): Promise<VerifyReport> {
  const damaged: DamagedObject[] = [];
  const snapshots = await listSnapshots(repo, {
    onDamaged: (id, error) => damaged.push({ kind: 'manifest', id, problem: error.code === 'E_MISSING_OBJECT' ? 'missing' : 'corrupt', message: error.message }),
  });
  const referenced = new Map<string, number>(); // id → plaintext length
  const damagedPages: { snapshot: Snapshot; disk: string; start: number; end: number }[] = [];
  await walkBlocks(
    repo,
    snapshots,
    (visit) => {
      if (!isZeroEntry(visit.entry)) referenced.set(visit.entry.toString('hex'), visit.length);
    },
    (damage) => {
      damaged.push({ kind: 'index page', id: damage.page, problem: damage.error.code === 'E_MISSING_OBJECT' ? 'missing' : 'corrupt', message: damage.error.message });
      damagedPages.push({ snapshot: damage.snapshot, disk: damage.disk.name, start: damage.offset, end: damage.offset + damage.length });
    },
  );
  options.onProgress?.({ phase: 'index', done: snapshots.length, total: snapshots.length, bytesRead: 0 });

  const bad = new Map<string, DamagedObject>();
  let chunksRead = 0;
  let bytesRead = 0;
  if (options.readData) {
    await forEachLimited(referenced.keys(), options.concurrency ?? repo.pool.threads * 4, async (hex) => {
      const id = Buffer.from(hex, 'hex');
      try {
        const blob = await repo.getChunkBlob(id);
        bytesRead += blob.length;
        await repo.pool.open(blob, { kind: ObjectKind.chunk, name: chunkKey(hex), id, rehash: true, into: 'discard' });
      } catch (error) {
        if (!isCofferError(error, 'E_MISSING_OBJECT') && !isCofferError(error, 'E_CORRUPT_OBJECT')) throw error;
        bad.set(hex, { kind: 'chunk', id: hex, problem: error.code === 'E_MISSING_OBJECT' ? 'missing' : 'corrupt', message: error.message });
      }
      chunksRead += 1;
      options.onProgress?.({ phase: 'chunks', done: chunksRead, total: referenced.size, bytesRead });
    });
  } else {
    const missing = new Set(referenced.keys());
    for await (const entry of repo.backend.list(CHUNKS_PREFIX)) {
      const hex = idFromKey(entry.key);
      if (hex !== null) missing.delete(hex);
    }
    for (const hex of missing) bad.set(hex, { kind: 'chunk', id: hex, problem: 'missing', message: `chunk ${hex} is missing` });
  }
  damaged.push(...bad.values());

  const affected = await affectedRanges(repo, snapshots, bad, damagedPages);
  for (const hex of bad.keys()) await quarantineChunk(repo, Buffer.from(hex, 'hex'), options.now());
  return { snapshots: snapshots.length, chunksReferenced: referenced.size, chunksRead, bytesRead, damaged, affected, quarantined: bad.size };
}

/** Second pass, only when something is damaged: which snapshot, disk and bytes it touches. */
async function affectedRanges(
  repo: Repository,
  snapshots: Snapshot[],
  bad: ReadonlyMap<string, DamagedObject>,
  damagedPages: { snapshot: Snapshot; disk: string; start: number; end: number }[],
): Promise<AffectedRange[]> {
  const byDisk = new Map<string, AffectedRange>();
  const add = (snapshot: Snapshot, disk: string, start: number, end: number) => {
    const key = `${snapshot.id}/${disk}`;
    let record = byDisk.get(key);
    if (record === undefined) {
      record = { snapshot: snapshot.id, vm: snapshot.vm, time: snapshot.time, disk, ranges: [] };
      byDisk.set(key, record);
    }
    const last = record.ranges.at(-1);
    if (last !== undefined && last.end === start) last.end = end;
    else record.ranges.push({ start, end });
  };
  for (const page of damagedPages) add(page.snapshot, page.disk, page.start, page.end);
  if (bad.size > 0) {
    await walkBlocks(
      repo,
      snapshots,
      (visit) => {
        if (bad.has(visit.entry.toString('hex'))) add(visit.snapshot, visit.disk.name, visit.offset, visit.offset + visit.length);
      },
      () => undefined,
    );
  }
  return [...byDisk.values()];
}
