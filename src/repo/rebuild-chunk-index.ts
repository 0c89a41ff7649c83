import { CofferError } from '../errors/index.js';
import { readRange } from './backend/read-range.js';
import { ObjectKind } from './format/envelope.js';
import { encodeSegment, MAX_SEGMENT_ENTRIES } from './format/index-segment.js';
import { encodeLocatedEntry } from './format/located-entry.js';
import { decodeTrailer, PACK_FOOTER_SIZE, trailerRange, UNADDRESSED_ID } from './format/pack.js';
import { idFromKey, packKey, PACKS_PREFIX, SEGMENTS_PREFIX, segmentKey } from './layout.js';
import type { Repository } from './repository.js';

/** What {@link rebuildChunkIndex} did. */
export interface RebuildIndexReport {
  packs: number;
  chunks: number;
  segmentsWritten: number;
  segmentsRemoved: number;
  /** Packs whose trailer could not be read (their chunks are not in the new index). */
  unreadable: { pack: string; message: string }[];
}

/**
 * Rebuilds the global chunk index of a format 2 repository from the packs themselves: each
 * pack's trailer (two ranged reads: the footer, then the trailer) lists its frames and chunks,
 * which become new index segments (≤ 65,536 entries each); then the segments that were there
 * before are removed. For a lost or damaged index (`segments/`): nothing a restore needs lives
 * only in segments (manifests locate their chunks), so this only restores deduplication
 * across VMs and the fallback of damaged places.
 *
 * Memory: 80 bytes per chunk of the segment being gathered (≤ 5 MiB).
 */
export async function rebuildChunkIndex(repo: Repository, options: { onPack?: (done: number) => void } = {}): Promise<RebuildIndexReport> {
  if (repo.config.version !== 2) throw new CofferError('E_USAGE', `${repo.location} is format ${repo.config.version}: only format 2 has an index of packs to rebuild`);
  const before: string[] = [];
  for await (const entry of repo.backend.list(SEGMENTS_PREFIX)) before.push(entry.key);
  const report: RebuildIndexReport = { packs: 0, chunks: 0, segmentsWritten: 0, segmentsRemoved: 0, unreadable: [] };
  const written = new Set<string>();
  let gathered: Buffer[] = [];
  const flush = async (): Promise<void> => {
    if (gathered.length === 0) return;
    const plaintext = encodeSegment(gathered);
    gathered = [];
    const id = repo.codec.idOf(plaintext);
    const key = segmentKey(id.toString('hex'));
    await repo.backend.put(key, await repo.pool.seal(plaintext, ObjectKind.indexSegment, id));
    written.add(key);
    report.segmentsWritten += 1;
  };
  for await (const entry of repo.backend.list(PACKS_PREFIX)) {
    const hex = idFromKey(entry.key);
    if (hex === null) continue;
    try {
      const footer = await readRange(repo.backend, entry.key, entry.size - PACK_FOOTER_SIZE, PACK_FOOTER_SIZE);
      const range = trailerRange(footer, entry.size, entry.key);
      const sealed = await readRange(repo.backend, entry.key, range.offset, range.length);
      const trailer = decodeTrailer(repo.codec.open(sealed, ObjectKind.packTrailer, entry.key, UNADDRESSED_ID, { rehash: false, unaddressed: true }), entry.size, entry.key);
      const pack = Buffer.from(hex, 'hex');
      for (const chunk of trailer.chunks) {
        const frame = trailer.frames[chunk.frame] as { offset: number; length: number };
        gathered.push(encodeLocatedEntry({ id: Buffer.from(chunk.id), pack, frameOffset: frame.offset, frameLength: frame.length, chunkOffset: chunk.offset, chunkLength: chunk.length }));
        report.chunks += 1;
        if (gathered.length >= MAX_SEGMENT_ENTRIES) await flush();
      }
    } catch (error) {
      if (!(error instanceof CofferError) || (error.code !== 'E_CORRUPT_OBJECT' && error.code !== 'E_MISSING_OBJECT')) throw error;
      report.unreadable.push({ pack: packKey(hex), message: error.message });
    }
    report.packs += 1;
    options.onPack?.(report.packs);
  }
  await flush();
  await repo.backend.sync();
  for (const key of before) {
    if (written.has(key)) continue;
    await repo.backend.delete(key);
    report.segmentsRemoved += 1;
  }
  return report;
}
