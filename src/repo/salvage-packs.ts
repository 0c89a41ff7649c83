import { isCofferError } from '../errors/index.js';
import { readRange } from './backend/read-range.js';
import { DiskIndexReader } from './disk-index.js';
import { isZeroEntry } from './format/index-page.js';
import { decodeLocatedEntry } from './format/located-entry.js';
import type { DiskRecord } from './format/manifest.js';
import { frameName } from './frame-reader.js';
import { packKey } from './layout.js';
import { RepackWriter } from './repack-writer.js';
import type { Repository } from './repository.js';
import type { Snapshot } from './snapshots.js';

/** What {@link rescueDamagedPacks} saved. */
export interface RescuedChunks {
  /** New located entry of each chunk saved out of a damaged pack, by chunk id (hex). */
  placed: Map<string, Buffer>;
  /** Chunks of damaged packs whose frame does not open either: damaged too. */
  lost: Set<string>;
}

/**
 * Format 2's half of `repair --salvage`: the packs that hold a damaged chunk of `snapshot`
 * may hold good ones too. Every frame of those packs the snapshot uses is read again; those
 * that still open (authenticated, every chunk rehashed) are copied byte for byte into a new
 * pack, with an index segment naming them, so the salvaged copy need not read the damaged
 * pack at all (and a later prune can delete it once the damaged snapshot is forgotten).
 * Frames that do not open make their chunks damaged too. Call it under a backup lease: the
 * new pack is referenced by no manifest until the salvaged snapshot is saved.
 */
export async function rescueDamagedPacks(repo: Repository, snapshot: Snapshot, isDamaged: (idHex: string) => boolean): Promise<RescuedChunks> {
  const damagedPacks = new Set<string>();
  await forEachLocated(repo, snapshot.disks, (entry, id) => {
    if (isDamaged(id)) damagedPacks.add(entry.subarray(32, 64).toString('hex'));
  });
  const frames = new Map<string, Buffer>();
  await forEachLocated(repo, snapshot.disks, (entry, id) => {
    if (isDamaged(id) || !damagedPacks.has(entry.subarray(32, 64).toString('hex'))) return;
    const name = frameName(decodeLocatedEntry(entry, id));
    if (!frames.has(name)) frames.set(name, entry);
  });
  const writer = new RepackWriter(repo, { remember: true });
  const lost = new Set<string>();
  for (const [name, entry] of frames) {
    const location = decodeLocatedEntry(entry, name);
    try {
      const sealed = await readRange(repo.backend, packKey(location.pack.toString('hex')), location.frameOffset, location.frameLength);
      const { table } = await repo.pool.openFrame(Buffer.from(sealed), { name, rehash: true, keep: false });
      await writer.addFrame({ sealed, chunks: table });
    } catch (error) {
      if (!isCofferError(error, 'E_CORRUPT_OBJECT') && !isCofferError(error, 'E_MISSING_OBJECT')) throw error;
      lost.add(location.id.toString('hex'));
    }
  }
  await writer.finish();
  // A frame that failed loses every chunk the snapshot has in it, not only the one that located it.
  if (lost.size > 0) {
    const failed = new Set([...frames].filter(([, entry]) => lost.has(entry.subarray(0, 32).toString('hex'))).map(([name]) => name));
    await forEachLocated(repo, snapshot.disks, (entry, id) => {
      if (!isDamaged(id) && failed.has(frameName(decodeLocatedEntry(entry, id)))) lost.add(id);
    });
  }
  return { placed: writer.placed, lost };
}

/** Visits each non-zero located entry of `disks` (pages that do not read are skipped: salvage zeroes them). */
async function forEachLocated(repo: Repository, disks: readonly DiskRecord[], visit: (entry: Buffer, idHex: string) => void): Promise<void> {
  for (const disk of disks) {
    const reader = new DiskIndexReader(repo, disk, 1);
    for (let page = 0; page < disk.pages.length; page++) {
      const entries = await reader.rawPage(page).catch((error: unknown) => {
        if (isCofferError(error, 'E_MISSING_OBJECT') || isCofferError(error, 'E_CORRUPT_OBJECT')) return [];
        throw error;
      });
      for (const entry of entries) if (!isZeroEntry(entry) && entry.length === 80) visit(entry, entry.subarray(0, 32).toString('hex'));
    }
  }
}
