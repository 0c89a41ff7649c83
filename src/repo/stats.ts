import { isZeroEntry } from './format/index-page.js';
import { walkFileTrees } from './file-trees.js';
import { CHUNKS_PREFIX, INDEXES_PREFIX, PACKS_PREFIX, SEGMENTS_PREFIX, SNAPSHOTS_PREFIX } from './layout.js';
import type { Repository } from './repository.js';
import { listSnapshots } from './snapshots.js';
import { walkBlocks } from './walk.js';

/** What a repository holds and what deduplication and compression save. */
export interface RepositoryStats {
  snapshots: number;
  vms: number;
  /** Sum of the disk sizes of every snapshot: what restoring everything would write. */
  bytesLogical: number;
  /** Of that, bytes in blocks that are not all zeros. */
  bytesData: number;
  /** Plaintext bytes of the distinct chunks the snapshots refer to. */
  bytesUnique: number;
  /** Bytes the repository takes: chunks + index pages + manifests. */
  bytesStored: number;
  bytesStoredChunks: number;
  chunks: number;
  indexPages: number;
  /** bytesData / bytesUnique. */
  dedupRatio: number;
  /** bytesUnique / bytesStoredChunks. */
  compressionRatio: number;
  /** bytesLogical / bytesStored: everything saved (zeros, dedup, compression). */
  totalRatio: number;
}

/** Walks every snapshot's index and lists the stored objects. */
export async function repositoryStats(repo: Repository): Promise<RepositoryStats> {
  const snapshots = await listSnapshots(repo);
  const unique = new Map<string, number>();
  let bytesLogical = 0;
  let bytesData = 0;
  for (const snapshot of snapshots) for (const disk of snapshot.disks) bytesLogical += disk.size;
  await walkBlocks(
    repo,
    snapshots,
    (visit) => {
      if (isZeroEntry(visit.entry)) return;
      bytesData += visit.length;
      unique.set(visit.entry.toString('hex'), visit.length);
    },
    () => undefined,
  );
  let bytesUnique = 0;
  for (const length of unique.values()) bytesUnique += length;
  const sizeOf = async (prefix: string) => {
    let bytes = 0;
    let count = 0;
    for await (const entry of repo.backend.list(prefix)) {
      bytes += entry.size;
      count += 1;
    }
    return { bytes, count };
  };
  // Format 2: chunks live in packs (and the index segments that find them); the count is the
  // distinct chunks referenced, since packs are not per chunk.
  const packed = repo.config.version === 2;
  let fileChunks = 0; // format 2: the distinct chunks of file snapshots not among the disks' (format 1 lists them as objects)
  if (packed) {
    const seen = new Set<string>();
    await walkFileTrees(repo, snapshots, { chunk: (visit) => (unique.has(visit.id) ? undefined : seen.add(visit.id)) }, () => undefined, { distinct: true });
    fileChunks = seen.size;
  }
  const chunks = packed ? await packedSize(sizeOf, unique.size + fileChunks) : await sizeOf(CHUNKS_PREFIX);
  const indexes = await sizeOf(INDEXES_PREFIX);
  const manifests = await sizeOf(SNAPSHOTS_PREFIX);
  const bytesStored = chunks.bytes + indexes.bytes + manifests.bytes;
  const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);
  return {
    snapshots: snapshots.length,
    vms: new Set(snapshots.map((snapshot) => snapshot.vm)).size,
    bytesLogical,
    bytesData,
    bytesUnique,
    bytesStored,
    bytesStoredChunks: chunks.bytes,
    chunks: chunks.count,
    indexPages: indexes.count,
    dedupRatio: ratio(bytesData, bytesUnique),
    compressionRatio: ratio(bytesUnique, chunks.bytes),
    totalRatio: ratio(bytesLogical, bytesStored),
  };
}

/** Format 2's stored chunk bytes: packs plus index segments; `count` chunks. */
async function packedSize(sizeOf: (prefix: string) => Promise<{ bytes: number; count: number }>, count: number): Promise<{ bytes: number; count: number }> {
  const packs = await sizeOf(PACKS_PREFIX);
  const segments = await sizeOf(SEGMENTS_PREFIX);
  return { bytes: packs.bytes + segments.bytes, count };
}
