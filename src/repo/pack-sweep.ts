import { FrameSlot } from './frame-slot.js';
import { CofferError, isCofferError } from '../errors/index.js';
import { ChunkIndex } from './chunk-index.js';
import { listQuarantined } from './damage.js';
import { ObjectKind } from './format/envelope.js';
import { encodeSegment } from './format/index-segment.js';
import { decodeTrailer, PACK_FOOTER_SIZE, trailerRange, UNADDRESSED_ID } from './format/pack.js';
import type { IdPrefixSet } from './id-prefix-set.js';
import { idFromKey, packKey, SEGMENTS_PREFIX, segmentKey } from './layout.js';
import { readSegment, type PackDecision, type PackPlan } from './pack-plan.js';
import { recordRemovedPacks } from './pack-removals.js';
import { RepackWriter, type SealedFrame } from './repack-writer.js';
import type { Repository } from './repository.js';

/** What the pack sweep of a format 2 prune did (or, in a dry run, would do). */
export interface PackSweepReport {
  packsBefore: number;
  packsKept: number;
  /** Packs deleted: none of their chunks was used (or every used one was kept elsewhere). */
  packsDeleted: number;
  /** Packs whose used chunks were copied into new packs, then deleted. */
  packsRepacked: number;
  /** New packs and their bytes, with the new index segments (0 in a dry run). */
  packsWritten: number;
  bytesRewritten: number;
  /** Plaintext bytes of the used chunks of the packs to repack (what the dry run would copy, at most). */
  liveBytesInRepacked: number;
  chunksCopied: number;
  /** Frames moved byte for byte (every chunk used), and frames recompressed (some unused). */
  framesMoved: number;
  framesRecompressed: number;
  segmentsBefore: number;
  /** Segments that named a removed pack: rewritten without it (or removed when nothing was left). */
  segmentsRewritten: number;
  segmentsRemoved: number;
  /** Bytes of packs and segments removed, less the bytes written. */
  bytesFreed: number;
  /** Packs kept because a frame or the trailer does not read (run verify --read-data, repair). */
  unreadable: { pack: string; message: string }[];
  /** Packs that were due for a repack but kept as they are: the sweep ran `deleteOnly` (a full disk). */
  repacksPostponed: number;
}

/**
 * Carries out a {@link PackPlan} (format 2's sweep), in this order, so that a crash at any
 * point leaves every snapshot readable and a second prune finishes the work
 * (docs/repository-format.md §19.7):
 * 1. the used chunks of each pack to repack are written into new packs — a frame whose chunks
 *    are all used is moved byte for byte, a frame with unused chunks is reopened and sealed
 *    again with the used ones; a chunk that a kept pack also holds is not copied;
 * 2. the new index segments naming the new packs;
 * 3. every old segment that names a pack to remove is written again without those entries;
 *    then the pack-removal record naming every pack to remove and every pack the snapshots
 *    name that is gone already (pack-removals.ts: the next incremental learns from it alone
 *    which of its parent's packs may be gone);
 * 4. sync; then the old segments are deleted; then the old packs.
 * Until step 4 every old place still exists; after it, every used chunk of a removed pack is
 * named by a segment at its new place, where readers fall back when a snapshot's entry points
 * at a pack that is gone (snapshot-disk.ts). Frames that do not open keep their pack as it is.
 * `deleteOnly` (prune on a full disk, space-reserve.ts): step 1 writes nothing; a pack due for
 * a repack is kept as it is (`repacksPostponed`), except a pack no segment names whose used
 * chunks all have a kept copy elsewhere (an interrupted repack's output), which is deleted.
 */
export async function sweepPacks(
  repo: Repository,
  plan: PackPlan,
  live: IdPrefixSet,
  options: { dryRun: boolean; deleteOnly?: boolean; signal?: AbortSignal; onProgress?: (phase: 'repack' | 'sweep', done: number, total: number) => void },
): Promise<PackSweepReport> {
  const report: PackSweepReport = {
    packsBefore: plan.packs, packsKept: plan.kept.size, packsDeleted: 0, packsRepacked: 0, packsWritten: 0, bytesRewritten: 0, liveBytesInRepacked: 0, chunksCopied: 0,
    framesMoved: 0, framesRecompressed: 0, segmentsBefore: plan.segments, segmentsRewritten: 0, segmentsRemoved: 0, bytesFreed: 0, unreadable: [...plan.unreadable], repacksPostponed: 0,
  };
  /** A pack due for a repack kept as it is (deleteOnly). */
  const postpone = (decision: PackDecision): void => {
    plan.kept.add(decision.id);
    report.packsKept++;
    report.repacksPostponed++;
  };
  const interrupted = () => new CofferError('E_INTERRUPTED', 'prune interrupted (run it again: every snapshot still reads, and the next prune finishes the work)');
  let repacks = plan.changes.filter((c) => c.action === 'repack');
  if (options.deleteOnly === true && !options.dryRun) {
    // No new pack may be written: every pack due for a repack stays as it is (first, so that
    // the chunks of an interrupted prune's unnamed packs count as kept in them).
    for (const decision of repacks.filter((c) => c.named)) postpone(decision);
    repacks = repacks.filter((c) => !c.named);
  }
  report.liveBytesInRepacked = repacks.reduce((sum, c) => sum + c.liveBytes, 0);
  if (options.dryRun) {
    report.packsDeleted = plan.changes.length - repacks.length;
    report.packsRepacked = repacks.length;
    report.bytesFreed = plan.changes.reduce((sum, c) => sum + c.size, 0);
    return report;
  }

  // 1–2: copy what is used out of the packs to repack.
  const removed: PackDecision[] = plan.changes.filter((c) => c.action === 'delete');
  if (repacks.length > 0) {
    const index = await ChunkIndex.load(repo);
    const quarantined = await listQuarantined(repo);
    const writer = new RepackWriter(repo);
    const namedRepacks = new Set(repacks.filter((c) => c.named).map((c) => c.id));
    let done = 0;
    for (const decision of repacks) {
      if (options.signal?.aborted) throw interrupted();
      const copied = await repackOne(repo, decision, { live, index, quarantined, kept: plan.kept, namedRepacks });
      options.onProgress?.('repack', ++done, repacks.length);
      if ('unreadable' in copied) {
        report.unreadable.push({ pack: decision.key, message: copied.unreadable });
        plan.kept.add(decision.id);
        report.packsKept++;
        continue;
      }
      if (options.deleteOnly === true && copied.frames.length > 0) {
        postpone(decision);
        continue;
      }
      for (const frame of copied.frames) await writer.addFrame(frame);
      report.framesMoved += copied.moved;
      report.framesRecompressed += copied.frames.length - copied.moved;
      report.chunksCopied += copied.frames.reduce((sum, f) => sum + f.chunks.length, 0);
      if (copied.frames.length === 0) report.packsDeleted++;
      else report.packsRepacked++;
      removed.push(decision);
    }
    await writer.finish();
    report.packsWritten = writer.written.packs;
    report.bytesRewritten = writer.written.bytes;
  }
  report.packsDeleted += plan.changes.filter((c) => c.action === 'delete').length;
  if (removed.length === 0) return report;

  // 3: segments without the removed packs (each old segment's replacement first).
  const gone = new Set(removed.map((r) => r.id));
  const oldSegments: { key: string; size: number }[] = [];
  for await (const entry of repo.backend.list(SEGMENTS_PREFIX)) if (idFromKey(entry.key) !== null) oldSegments.push(entry);
  const stale: { key: string; size: number }[] = [];
  for (const entry of oldSegments) {
    if (options.signal?.aborted) throw interrupted();
    const segment = await readSegment(repo, idFromKey(entry.key) as string);
    const keep: Buffer[] = [];
    for (let i = 0; i < segment.count; i++) {
      const located = segment.entryAt(i);
      if (!gone.has(located.subarray(32, 64).toString('hex'))) keep.push(Buffer.from(located));
    }
    if (keep.length === segment.count) continue;
    if (keep.length > 0) {
      const plaintext = encodeSegment(keep);
      const id = repo.codec.idOf(plaintext);
      const sealed = await repo.pool.seal(plaintext, ObjectKind.indexSegment, id);
      await repo.backend.put(segmentKey(id.toString('hex')), sealed);
      report.bytesFreed -= sealed.length;
      report.segmentsRewritten++;
    } else report.segmentsRemoved++;
    stale.push(entry);
  }
  // Before the first delete: a backup that lists the records after this one sees every pack
  // this prune may remove (one that read them before holds a lease this prune waited for),
  // and those the snapshots name that were gone already (an older prune's, or lost).
  await recordRemovedPacks(repo, [...removed.map((r) => r.id), ...plan.missing]);
  await repo.backend.sync();

  // 4: the old segments, then the old packs.
  let swept = 0;
  const total = stale.length + removed.length;
  for (const entry of stale) {
    if (options.signal?.aborted) throw interrupted();
    await deleteIfPresent(repo, entry.key);
    report.bytesFreed += entry.size;
    options.onProgress?.('sweep', ++swept, total);
  }
  for (const decision of removed) {
    if (options.signal?.aborted) throw interrupted();
    await deleteIfPresent(repo, decision.key);
    report.bytesFreed += decision.size;
    options.onProgress?.('sweep', ++swept, total);
  }
  report.bytesFreed -= report.bytesRewritten;
  return report;
}

/** The frames to write for one pack to repack, or why it must stay. */
async function repackOne(
  repo: Repository,
  decision: PackDecision,
  context: { live: IdPrefixSet; index: ChunkIndex; quarantined: ReadonlySet<string>; kept: ReadonlySet<string>; namedRepacks: ReadonlySet<string> },
): Promise<{ frames: SealedFrame[]; moved: number } | { unreadable: string }> {
  // A used chunk another kept pack also holds (a backup stored it again, or an interrupted
  // prune copied it already) need not be copied; a quarantined id is never trusted elsewhere.
  // A pack no segment names (an interrupted prune's copy, written before its segment) also
  // leaves to the named packs being repacked the chunks they hold: they copy them. Two named
  // packs never leave a chunk to each other (each would count on the other).
  const keptElsewhere = async (id: Buffer): Promise<boolean> => {
    if (context.quarantined.has(id.toString('hex'))) return false;
    for (const entry of await context.index.lookupAll(id)) {
      const pack = entry.subarray(32, 64).toString('hex');
      if (pack === decision.id) continue;
      if (context.kept.has(pack) || (!decision.named && context.namedRepacks.has(pack))) return true;
    }
    return false;
  };
  let pack: Buffer;
  try {
    pack = await repo.backend.get(decision.key);
    if (pack.length < PACK_FOOTER_SIZE) throw new CofferError('E_CORRUPT_OBJECT', `pack ${decision.key} is corrupt: ${pack.length} bytes`);
    const range = trailerRange(pack.subarray(pack.length - PACK_FOOTER_SIZE), pack.length, decision.key);
    const trailer = decodeTrailer(
      repo.codec.open(pack.subarray(range.offset, range.offset + range.length), ObjectKind.packTrailer, decision.key, UNADDRESSED_ID, { rehash: false, unaddressed: true }),
      pack.length,
      decision.key,
    );
    const wanted = trailer.frames.map(() => new Set<string>());
    for (const chunk of trailer.chunks) {
      if (context.live.has(chunk.id) && !(await keptElsewhere(Buffer.from(chunk.id)))) wanted[chunk.frame]?.add(chunk.id.toString('hex'));
    }
    const frames: SealedFrame[] = [];
    let moved = 0;
    for (const [number, frame] of trailer.frames.entries()) {
      const ids = wanted[number] as Set<string>;
      if (ids.size === 0) continue;
      const sealed = pack.subarray(frame.offset, frame.offset + frame.length);
      const name = `${packKey(decision.id)}@${frame.offset}`;
      const opened = await repo.pool.openFrame(Buffer.from(sealed), { name, rehash: false, keep: true });
      const table = opened.table;
      const used = table.filter((c) => ids.has(c.id.toString('hex')));
      if (used.length !== ids.size) throw new CofferError('E_CORRUPT_OBJECT', `frame ${name} does not hold every chunk the pack's trailer says it does`, { subject: { object: name } });
      if (used.length === table.length) {
        frames.push({ sealed: Buffer.from(sealed), chunks: table });
        moved++;
        continue;
      }
      const plaintext = opened.plaintext as Buffer;
      // Laid out and sealed in place in shared memory, as the pack writer does (frame-slot.ts).
      const slot = new FrameSlot(used.length, used.reduce((sum, c) => sum + c.length, 0), 0);
      for (const c of used) slot.add(c.id, plaintext.subarray(c.offset, c.offset + c.length));
      const { length, chunks } = slot.close();
      const sealedLength = await repo.pool.sealFrame(slot.memory, length);
      const resealed = Buffer.from(slot.memory.subarray(0, sealedLength));
      frames.push({ sealed: resealed, chunks });
    }
    return { frames, moved };
  } catch (error) {
    if (isCofferError(error, 'E_CORRUPT_OBJECT') || isCofferError(error, 'E_MISSING_OBJECT')) return { unreadable: error.message };
    throw error;
  }
}

async function deleteIfPresent(repo: Repository, key: string): Promise<void> {
  await repo.backend.delete(key).catch((error: unknown) => {
    if (!isCofferError(error, 'E_MISSING_OBJECT')) throw error;
  });
}
