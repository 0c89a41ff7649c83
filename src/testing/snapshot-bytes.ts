import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { backupVm } from '../backup/index.js';
import { decodeLocatedEntry, DiskIndexReader, FrameReader, isZeroEntry, MovedChunks, ObjectKind, type Repository, type Snapshot } from '../repo/index.js';
import { openImageSource } from '../source/index.js';

let written = 0;

/** Backs up `bytes` as the one disk of VM `vm` at `time`, through a raw image written in `dir`. */
export async function backupBytes(repo: Repository, vm: string, bytes: Buffer, time: string, dir: string, options: { tags?: string[] } = {}): Promise<Snapshot> {
  const path = join(dir, `disk-${process.pid}-${written++}.raw`);
  await writeFile(path, bytes);
  const source = await openImageSource(vm, [path]);
  try {
    return await backupVm(repo, source, { time: new Date(time), ...(options.tags === undefined ? {} : { tags: options.tags }) });
  } finally {
    await source.close();
  }
}

/**
 * The bytes of a snapshot's first disk, read from the repository block by block in either
 * format, without the restore pipeline. `movedChunks` (format 2): a chunk whose named place
 * fails is read where the index segments put it, as a restore reads after a heal or a repack;
 * without it the named place must read.
 */
export async function snapshotDiskBytes(repo: Repository, snapshot: Snapshot, options: { movedChunks?: boolean } = {}): Promise<Buffer> {
  const disk = snapshot.disks[0];
  assert.ok(disk, `snapshot ${snapshot.id} has a disk`);
  const reader = new DiskIndexReader(repo, disk);
  const frames = repo.config.version === 2 ? new FrameReader(repo) : undefined;
  const out = Buffer.alloc(disk.size);
  for (let block = 0; block < reader.blockCount; block++) {
    const entry = await reader.rawEntry(block);
    if (isZeroEntry(entry)) continue;
    const at = block * disk.blockSize;
    if (frames !== undefined) {
      const into = out.subarray(at, at + decodeLocatedEntry(entry, 'entry').chunkLength);
      if (options.movedChunks === true) await MovedChunks.of(repo).read(entry, (place) => frames.read(place, into));
      else await frames.read(entry, into);
    } else repo.codec.open(await repo.getChunkBlob(entry), ObjectKind.chunk, 'chunk', entry).copy(out, at);
  }
  return out;
}
