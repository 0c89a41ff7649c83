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
import { PACK_DEFAULTS } from './pack-writer.js';
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
  /**
   * Damaged copies dropped with the packs removed: quarantined chunks whose frame there did not
   * open while another pack holds a good copy (a backup stored them again after verify found
   * them damaged), or while no snapshot uses them (pack-plan.ts, dead-copies.ts). Not copied,
   * not lost.
   */
  damagedCopiesDropped: number;
  /**
   * New packs and their bytes, with the new index segments. A dry run writes none and
   * estimates the bytes: each pack to repack's stored size in the share of its chunks' bytes
   * that are used (compression assumed even across the pack).
   */
  packsWritten: number;
  bytesRewritten: number;
  /** Of {@link bytesRewritten}, the new packs' (without their index segments). */
  packBytesWritten: number;
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
  /** Packs that were due for a repack but kept as they are: no room for their copy (`lowSpace`, a full disk). */
  repacksPostponed: number;
}

/** Options of {@link sweepPacks}. */
export interface SweepOptions {
  dryRun: boolean;
  /**
   * A disk with (almost) no room (prune on a full disk, space-reserve.ts): every pack with
   * nothing to copy is removed first, then the packs to repack go one pack's worth at a time,
   * each step's new pack written and its old packs removed before the next, so that each step
   * needs the room of one pack; the first step that finds no room stops, and its packs and
   * the rest are kept as they are (`repacksPostponed`).
   */
  lowSpace?: boolean;
  signal?: AbortSignal;
  onProgress?: (phase: 'repack' | 'sweep', done: number, total: number) => void;
}

/**
 * Carries out a {@link PackPlan} (format 2's sweep), in this order, so that a crash at any
 * point leaves every snapshot readable and a second prune finishes the work
 * (docs/repository-format.md §19.7):
 * 1. the used chunks of each pack to repack are written into new packs — a frame whose chunks
 *    are all used is moved byte for byte, a frame with unused chunks is reopened and sealed
 *    again with the used ones; a chunk that a kept pack also holds is not copied, nor a dead
 *    copy the plan found (`plan.deadCopies`: its frame does not open, another pack holds a good
 *    copy), whose frame is then never opened;
 * 2. the new index segments naming the new packs;
 * 3. every old segment that names a pack to remove is written again without those entries;
 *    then the pack-removal record naming every pack to remove and every pack the snapshots
 *    name that is gone already (pack-removals.ts: the next incremental learns from it alone
 *    which of its parent's packs may be gone);
 * 4. sync; then the old segments are deleted; then the old packs.
 * Until step 4 every old place still exists; after it, every used chunk of a removed pack is
 * named by a segment at its new place, where readers fall back when a snapshot's entry points
 * at a pack that is gone (snapshot-disk.ts). A frame that does not open, holding a used chunk
 * that is not a dead copy, keeps its pack as it is (reported in `unreadable`): it may hold the
 * only copy.
 * `lowSpace` runs the same four steps several times: once for the packs with nothing to copy,
 * then once per pack's worth of packs to repack ({@link SweepOptions.lowSpace}).
 */
export async function sweepPacks(repo: Repository, plan: PackPlan, live: IdPrefixSet, options: SweepOptions): Promise<PackSweepReport> {
  const report: PackSweepReport = {
    packsBefore: plan.packs, packsKept: plan.kept.size, packsDeleted: 0, packsRepacked: 0, damagedCopiesDropped: 0, packsWritten: 0, bytesRewritten: 0, packBytesWritten: 0, liveBytesInRepacked: 0, chunksCopied: 0,
    framesMoved: 0, framesRecompressed: 0, segmentsBefore: plan.segments, segmentsRewritten: 0, segmentsRemoved: 0, bytesFreed: 0, unreadable: [...plan.unreadable], repacksPostponed: 0,
  };
  const repacks = plan.changes.filter((c) => c.action === 'repack');
  report.liveBytesInRepacked = repacks.reduce((sum, c) => sum + c.liveBytes, 0);
  if (options.dryRun) {
    report.packsDeleted = plan.changes.length - repacks.length;
    report.packsRepacked = repacks.length;
    report.damagedCopiesDropped = plan.changes.reduce((sum, c) => sum + c.deadCopies, 0);
    // The repacks' copies take room again: counted as freed they made the dry run promise
    // more than prune gives back.
    report.bytesRewritten = repacks.reduce((sum, c) => sum + (c.bytes === 0 ? 0 : Math.round(c.size * (c.liveBytes / c.bytes))), 0);
    report.packBytesWritten = report.bytesRewritten;
    report.bytesFreed = plan.changes.reduce((sum, c) => sum + c.size, 0) - report.bytesRewritten;
    return report;
  }
  const sweep = new PackSweep(repo, plan, live, report, options);
  const deletions = plan.changes.filter((c) => c.action === 'delete');
  if (options.lowSpace !== true) {
    await sweep.step([...deletions, ...repacks]);
    return report;
  }
  await sweep.step(deletions);
  // Unnamed packs first: an interrupted repack's output, whose chunks the named packs being
  // repacked also hold, is deleted in a step of its own before those packs are copied.
  const ordered = [...repacks.filter((c) => !c.named), ...repacks.filter((c) => c.named)];
  let batch: PackDecision[] = [];
  let batchBytes = 0;
  for (const [i, decision] of ordered.entries()) {
    batch.push(decision);
    batchBytes += decision.liveBytes;
    const last = i === ordered.length - 1;
    if (!last && batchBytes < PACK_DEFAULTS.packSize && decision.named === (ordered[i + 1] as PackDecision).named) continue;
    const counts = { ...report, unreadable: [...report.unreadable] };
    try {
      await sweep.step(batch);
    } catch (error) {
      if (!isCofferError(error, 'E_NO_SPACE')) throw error;
      // No room even for one pack: this step's packs and the rest stay as they are, and the
      // report says the step did not happen. What it wrote before it failed is an interrupted
      // repack's output, which the next prune deletes, as after a crash (§19.7).
      Object.assign(report, counts);
      for (const postponed of ordered.slice(i + 1 - batch.length)) sweep.postpone(postponed);
      break;
    }
    batch = [];
    batchBytes = 0;
  }
  return report;
}

/** The steps of one sweep, sharing the chunk index and the report. */
class PackSweep {
  private context: RepackContext | undefined;
  /** Packs the snapshots name that are gone already: named in the first removal record. */
  private missing: string[];

  constructor(
    private readonly repo: Repository,
    private readonly plan: PackPlan,
    private readonly live: IdPrefixSet,
    private readonly report: PackSweepReport,
    private readonly options: SweepOptions,
  ) {
    this.missing = [...plan.missing];
  }

  /** A pack due for a repack kept as it is (no room for its copy). */
  postpone(decision: PackDecision): void {
    if (this.plan.kept.has(decision.id)) return;
    this.plan.kept.add(decision.id);
    this.report.packsKept++;
    this.report.repacksPostponed++;
  }

  /** Steps 1–4 for `changes` (packs to delete or repack). */
  async step(changes: PackDecision[]): Promise<void> {
    const removed = changes.filter((c) => c.action === 'delete');
    this.report.packsDeleted += removed.length;
    const repacks = changes.filter((c) => c.action === 'repack');
    if (repacks.length > 0) removed.push(...(await this.copyOut(repacks)));
    for (const decision of removed) this.report.damagedCopiesDropped += decision.deadCopies;
    if (removed.length > 0) await this.retire(removed);
  }

  /** 1–2: copies what is used out of `repacks`; returns those that may now be removed. */
  private async copyOut(repacks: PackDecision[]): Promise<PackDecision[]> {
    const { repo, report } = this;
    this.context ??= {
      live: this.live,
      index: await ChunkIndex.load(repo),
      quarantined: await listQuarantined(repo),
      kept: this.plan.kept,
      deadCopies: this.plan.deadCopies,
      namedRepacks: new Set(this.plan.changes.filter((c) => c.action === 'repack' && c.named).map((c) => c.id)),
    };
    const writer = new RepackWriter(repo);
    const removed: PackDecision[] = [];
    let done = 0;
    try {
      for (const decision of repacks) {
        if (this.options.signal?.aborted) throw interrupted();
        const copied = await repackOne(repo, decision, this.context);
        this.options.onProgress?.('repack', ++done, repacks.length);
        if ('unreadable' in copied) {
          report.unreadable.push({ pack: decision.key, message: copied.unreadable });
          this.plan.kept.add(decision.id);
          report.packsKept++;
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
    } finally {
      report.packsWritten += writer.written.packs;
      report.bytesRewritten += writer.written.bytes;
      report.packBytesWritten += writer.written.packBytes;
      report.bytesFreed -= writer.written.bytes;
    }
    return removed;
  }

  /** 3–4: segments without the removed packs, the removal record, then the deletes. */
  private async retire(removed: PackDecision[]): Promise<void> {
    const { repo, report, options } = this;
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
    await recordRemovedPacks(repo, [...removed.map((r) => r.id), ...this.missing]);
    this.missing = [];
    await repo.backend.sync();

    // 4: the old segments, then the old packs.
    const total = stale.length + removed.length;
    let swept = 0;
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
  }
}

function interrupted(): CofferError {
  return new CofferError('E_INTERRUPTED', 'prune interrupted (run it again: every snapshot still reads, and the next prune finishes the work)');
}

/** What {@link repackOne} needs to know beside the pack. */
interface RepackContext {
  live: IdPrefixSet;
  index: ChunkIndex;
  quarantined: ReadonlySet<string>;
  kept: ReadonlySet<string>;
  /** Per pack (hex), the used chunks (hex) whose copy there is dead (pack-plan.ts): never copied. */
  deadCopies: ReadonlyMap<string, ReadonlySet<string>>;
  namedRepacks: ReadonlySet<string>;
}

/** The frames to write for one pack to repack, or why it must stay. */
async function repackOne(
  repo: Repository,
  decision: PackDecision,
  context: RepackContext,
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
    // A dead copy (its frame does not open; another pack holds a good one) is left behind: its
    // frame is never opened for it, so the damage goes with the pack.
    const dead = context.deadCopies.get(decision.id);
    for (const chunk of trailer.chunks) {
      if (!context.live.has(chunk.id)) continue;
      const hex = chunk.id.toString('hex');
      if (dead?.has(hex) !== true && !(await keptElsewhere(Buffer.from(chunk.id)))) wanted[chunk.frame]?.add(hex);
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
