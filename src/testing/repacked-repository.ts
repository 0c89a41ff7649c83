/**
 * The "repacked repository" fixture: a format 2 repository in which a repacking prune moved
 * chunks that a kept snapshot still names at their old places (docs/repository-format.md
 * §19.7). Back up, change, back up, forget the first, prune: the tests of moved chunks
 * (restore, serve, verify, sync, the next incremental) and bench/restore-after-prune.ts start
 * from it, on any backend (a local directory, Ceph's S3 gateway), each with its own disk data
 * and its own assertions about the prune's report.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { backupVm } from '../backup/index.js';
import { deleteSnapshot, ForwardingBackend, pruneRepository, type Backend, type PruneReport, type Repository, type Snapshot } from '../repo/index.js';
import { openImageSource } from '../source/index.js';
import { seededBytes } from './disks.js';

/** What {@link repackRepository} did. */
export interface RepackedRepository {
  /** Every snapshot backed up, in order; the first is forgotten (and pruned). */
  snapshots: Snapshot[];
  /** The snapshots kept: every one but the first; their index pages name the removed packs where the prune moved their chunks. */
  kept: Snapshot[];
  /** The prune's report (a test checks that it repacked what it expects). */
  report: PruneReport;
  /** The packs the prune removed: key (`packs/<2 hex>/<64 hex>`) → size in bytes. */
  removed: Map<string, number>;
  /** The packs the prune wrote: key → size in bytes. */
  written: Map<string, number>;
}

/**
 * Backs up each of `versions` in turn into `repo` (an open format 2 repository) as one raw
 * image file in `imageDir`, VM `vm` (default `vm`), each backup the previous one's incremental;
 * then forgets the first snapshot and prunes (the prune's own defaults: repack threshold 20 %).
 * The versions are read one at a time as they come: an async iterable may change one buffer
 * in place between them (bench/restore-after-prune.ts does, for 512 MiB).
 *
 * @example
 * const first = seededBytes(81, 64 * BLOCK);
 * const second = rewriteFrames(first, { frames: [0, 4], frameBytes: 8 * BLOCK, seed: 90 });
 * const { removed, report } = await repackRepository(repo, { versions: [first, second], imageDir });
 */
export async function repackRepository(
  repo: Repository,
  options: { versions: Iterable<Uint8Array> | AsyncIterable<Uint8Array>; imageDir: string; vm?: string },
): Promise<RepackedRepository> {
  const image = join(options.imageDir, 'repacked-disk.raw');
  const snapshots: Snapshot[] = [];
  for await (const bytes of options.versions) {
    await writeFile(image, bytes);
    const source = await openImageSource(options.vm ?? 'vm', [image]);
    try {
      snapshots.push(await backupVm(repo, source));
    } finally {
      await source.close();
    }
  }
  const [forgotten, ...kept] = snapshots;
  if (forgotten === undefined || kept.length === 0) throw new RangeError('a repacked repository needs at least two versions of the disk');
  await deleteSnapshot(repo, forgotten.id);
  const before = await packSizes(repo.backend);
  const report = await pruneRepository(repo);
  const after = await packSizes(repo.backend);
  return {
    snapshots,
    kept,
    report,
    removed: new Map([...before].filter(([key]) => !after.has(key))),
    written: new Map([...after].filter(([key]) => !before.has(key))),
  };
}

/**
 * A copy of `bytes` in which each frame in `frames` (frame `f` covers bytes `f × frameBytes` onward)
 * holds `seededBytes(seed + f, frameBytes)`: new data a backup packs into new frames, leaving
 * the old frames' chunks unused once the old snapshot is forgotten.
 */
export function rewriteFrames(bytes: Uint8Array, options: { frames: Iterable<number>; frameBytes: number; seed: number }): Buffer {
  const out = Buffer.from(bytes);
  for (const frame of options.frames) seededBytes(options.seed + frame, options.frameBytes).copy(out, frame * options.frameBytes);
  return out;
}

/** One ranged read made through a {@link RangedReadLog}. */
export interface RangedRead {
  key: string;
  offset: number;
  length: number;
  /** The read threw (a removed pack: ENOENT, a 404). */
  failed: boolean;
}

/**
 * A backend that records every ranged read made through it, in order, and passes everything
 * on (the backend's preferred concurrency included): how the tests of moved chunks count
 * requests to removed packs and to the packs a prune wrote.
 */
export class RangedReadLog extends ForwardingBackend {
  readonly reads: RangedRead[] = [];

  constructor(inner: Backend) {
    super(inner);
  }

  override async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    const read: RangedRead = { key, offset, length, failed: false };
    this.reads.push(read);
    try {
      return await super.getRange(key, offset, length);
    } catch (error) {
      read.failed = true;
      throw error;
    }
  }

  /** The reads of the objects whose keys are in `keys`. */
  readsOf(keys: { has(key: string): boolean }): RangedRead[] {
    return this.reads.filter((read) => keys.has(read.key));
  }
}

/** Asserts that no two of `reads` of one object overlap: each byte read at most once. */
export function assertEachByteOnce(reads: readonly RangedRead[]): void {
  const byKey = new Map<string, RangedRead[]>();
  for (const read of reads) byKey.set(read.key, [...(byKey.get(read.key) ?? []), read]);
  for (const [key, list] of byKey) {
    const sorted = [...list].sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < sorted.length; i++) {
      const previous = sorted[i - 1] as RangedRead;
      const read = sorted[i] as RangedRead;
      assert.ok(read.offset >= previous.offset + previous.length, `${key} read twice at ${read.offset}`);
    }
  }
}

/** The stored packs: key → size. */
export async function packSizes(backend: Backend): Promise<Map<string, number>> {
  const packs = new Map<string, number>();
  for await (const entry of backend.list('packs/')) packs.set(entry.key, entry.size);
  return packs;
}
