import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, openSync, readdirSync, readSync, renameSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writeFullySync, makeFoldersSync } from '../native/index.js';
import { FINGERPRINT_BYTES, FINGERPRINT_KEY_BYTES } from '../repo/index.js';

/**
 * The block fingerprint cache: for one disk of one VM, the fingerprint (repo/block-fingerprint.ts)
 * of every block as it was at one snapshot, kept on the backup host. A backup with no change
 * tracking must read every block of an image; with the cache of its parent snapshot it
 * computes each block's fingerprint (~12 GB/s per core) and reuses the parent's entry for a
 * block whose fingerprint is unchanged, instead of hashing it (SHA-256 or the repository's
 * keyed MAC, ~1.9 GB/s): an incremental of an image where little changed costs a fraction of
 * the CPU. Blocks that did change are hashed and stored as before, so the snapshot is the one
 * a hashing backup would have written: the cache only decides which blocks are hashed.
 *
 * Where: `<cache directory>/block-fingerprints/<repository id>/<SHA-256 of "vm\0disk", hex>`
 * (the cache directory is `$XDG_CACHE_HOME/coffer` or `~/.cache/coffer`), mode 0600 in
 * directories of mode 0700: its key is in it. Written beside as `<name>.tmp-<random>` during
 * the backup and renamed over the old one once the snapshot is saved.
 *
 * Format, version 1 (integers little-endian):
 *
 * | offset | bytes | field                                                          |
 * |--------|-------|----------------------------------------------------------------|
 * | 0      | 4     | magic `CBFP`                                                   |
 * | 4      | 4     | version, 1                                                     |
 * | 8      | 4     | block size in bytes                                            |
 * | 12     | 4     | zero                                                           |
 * | 16     | 8     | disk size in bytes                                             |
 * | 24     | 8     | block count, ⌈size / block size⌉                               |
 * | 32     | 32    | id of the snapshot the fingerprints describe                   |
 * | 64     | 32    | the fingerprint key (random, kept from one snapshot to the next) |
 * | 96     | 32    | zero                                                           |
 * | 128    | 16 × count | block i's fingerprint at 128 + 16·i; all zero: not known  |
 *
 * A cache is used only when its snapshot is the backup's parent and its geometry is the
 * disk's; otherwise the backup hashes every block it reads and writes a new cache. Blocks
 * settled without reading (unchanged by change tracking) keep their fingerprint; zero extents
 * and patched blocks get none (hashed next time).
 *
 * The cache it replaces is kept beside it as `<name>.older` (same format): the fingerprints
 * of the parent's parent. A block back to what it was two snapshots ago (a VM reverted to an
 * earlier state, a change undone) matches there and takes that snapshot's chunk id, unhashed
 * (its bytes are stored again only if that chunk is gone). It is used only when it describes
 * the parent's parent and shares the key.
 *
 * Trust: a block is taken as unchanged on a fingerprint match, so the cache must be as safe
 * as the host that runs the backups (root's home by default): whoever can read its key and
 * write a guest's disk could craft a block that matches its old fingerprint. Without the
 * key, a changed block goes unnoticed with probability about 2^-89. The cache is an
 * optimisation only: any failure to read or write it makes the backup hash instead (a write
 * that fails, a full disk, drops this backup's cache but not the parent's for reading).
 */
export class BlockFingerprints {
  private broken = false;

  private constructor(
    readonly key: Buffer,
    private readonly previous: number | undefined,
    private readonly older: number | undefined,
    private readonly next: number,
    private readonly temp: string,
    private readonly path: string,
    readonly blockCount: number,
  ) {}

  /** True when fingerprints of the parent are known: {@link expected} can match. */
  get hasPrevious(): boolean {
    return this.previous !== undefined;
  }

  /** True when fingerprints of the parent's parent are known: {@link expectedOlder} can match. */
  get hasOlder(): boolean {
    return this.older !== undefined;
  }

  /**
   * Opens the cache of `disk` of `vm` for a backup whose parent is `lineage.parent` (hex; its
   * own parent `lineage.grandparent`), and starts the one this backup writes. Undefined when
   * no cache can be written there.
   */
  static open(directory: string, where: { repository: string; vm: string; disk: string }, geometry: { size: number; blockSize: number }, lineage: { parent?: string | undefined; grandparent?: string | undefined }): BlockFingerprints | undefined {
    const folder = join(directory, 'block-fingerprints', where.repository);
    const path = join(folder, createHash('sha256').update(`${where.vm}\0${where.disk}`).digest('hex'));
    const blockCount = Math.ceil(geometry.size / geometry.blockSize);
    // None, or unreadable: hash everything this time.
    const previous = lineage.parent === undefined ? undefined : openCache(path, geometry, blockCount, lineage.parent);
    let older = previous === undefined || lineage.grandparent === undefined ? undefined : openCache(`${path}${OLDER}`, geometry, blockCount, lineage.grandparent);
    if (older !== undefined && previous !== undefined && !older.key.equals(previous.key)) {
      closeSync(older.fd);
      older = undefined;
    }
    const temp = `${path}.tmp-${randomBytes(8).toString('hex')}`;
    try {
      makeFoldersSync(folder, 0o700);
      const next = openSync(temp, 'wx+', 0o600);
      const key = previous?.key ?? randomBytes(FINGERPRINT_KEY_BYTES);
      try {
        const header = Buffer.alloc(HEADER_BYTES);
        header.write(MAGIC, 0, 'latin1');
        header.writeUInt32LE(VERSION, 4);
        header.writeUInt32LE(geometry.blockSize, 8);
        header.writeBigUInt64LE(BigInt(geometry.size), 16);
        header.writeBigUInt64LE(BigInt(blockCount), 24);
        key.copy(header, 64);
        writeFullySync(next, header, 0);
        // The tags are written where their blocks are, in any order; the rest reads as zero.
        if (blockCount > 0) writeFullySync(next, Buffer.alloc(1), tagOffset(blockCount) - 1);
      } catch (error) {
        closeSync(next);
        unlinkQuietly(temp);
        throw error;
      }
      return new BlockFingerprints(key, previous?.fd, older?.fd, next, temp, path, blockCount);
    } catch {
      for (const opened of [previous, older]) if (opened !== undefined) closeSync(opened.fd);
      return undefined;
    }
  }

  /** The parent's fingerprints of blocks `indexes` (16 bytes each; zero where not known). */
  expected(indexes: readonly number[]): Buffer {
    return this.read(this.hasPrevious ? this.previous : undefined, indexes);
  }

  /** The fingerprints of blocks `indexes` at the parent's parent (16 bytes each; zero where not known). */
  expectedOlder(indexes: readonly number[]): Buffer {
    return this.read(this.hasOlder ? this.older : undefined, indexes);
  }

  private read(fd: number | undefined, indexes: readonly number[]): Buffer {
    const out = Buffer.alloc(indexes.length * FINGERPRINT_BYTES);
    if (fd === undefined) return out;
    try {
      forEachRun(indexes, (first, count, at) => readFully(fd, out, at * FINGERPRINT_BYTES, count * FINGERPRINT_BYTES, tagOffset(first)));
    } catch {
      out.fill(0);
    }
    return out;
  }

  /** Records this backup's fingerprints of blocks `indexes` (`tags`: 16 bytes each, in the same order). */
  record(indexes: readonly number[], tags: Uint8Array): void {
    if (this.broken) return;
    try {
      forEachRun(indexes, (first, count, at) => writeFullySync(this.next, tags.subarray(at * FINGERPRINT_BYTES, (at + count) * FINGERPRINT_BYTES), tagOffset(first)));
    } catch {
      this.broken = true;
    }
  }

  /** Blocks `indexes` are the parent's, unread (change tracking said so): their fingerprints carry over. */
  carry(indexes: readonly number[]): void {
    if (this.previous === undefined || this.broken) return;
    try {
      forEachRun(indexes, (first, count) => {
        const chunk = Buffer.allocUnsafe(Math.min(count, CARRY_BLOCKS) * FINGERPRINT_BYTES);
        for (let at = first; at < first + count; at += CARRY_BLOCKS) {
          const n = Math.min(CARRY_BLOCKS, first + count - at);
          readFully(this.previous as number, chunk, 0, n * FINGERPRINT_BYTES, tagOffset(at));
          writeFullySync(this.next, chunk.subarray(0, n * FINGERPRINT_BYTES), tagOffset(at));
        }
      });
    } catch {
      this.broken = true;
    }
  }

  /** The snapshot `snapshotId` (hex) is saved: its fingerprints replace the parent's. */
  commit(snapshotId: string): void {
    if (this.broken) return this.discard();
    try {
      writeFullySync(this.next, Buffer.from(snapshotId, 'hex'), 32);
      const hadPrevious = this.previous !== undefined;
      this.closeFiles();
      // The parent's cache becomes the older one; without it, an older one describes nothing near.
      try {
        if (hadPrevious) renameSync(this.path, `${this.path}${OLDER}`);
        else unlinkQuietly(`${this.path}${OLDER}`);
      } catch {
        unlinkQuietly(`${this.path}${OLDER}`); // the parent's was replaced meanwhile (another backup): no older one
      }
      renameSync(this.temp, this.path);
    } catch {
      this.discard();
    }
  }

  /**
   * Removes what no backup will use: caches not written for {@link STALE_AFTER_MS} (a VM no
   * longer backed up, a repository gone: a VM backed up monthly keeps its cache) and files
   * left by a backup killed before its end, older than a day; then empty folders. Best
   * effort, as everything about the cache.
   */
  static sweep(directory: string, now = Date.now()): void {
    const root = join(directory, 'block-fingerprints');
    for (const repository of listQuietly(root)) {
      const folder = join(root, repository);
      let left = 0;
      for (const name of listQuietly(folder)) {
        const path = join(folder, name);
        try {
          const age = now - statSync(path).mtimeMs;
          if (age > STALE_AFTER_MS || (name.includes('.tmp-') && age > ABANDONED_AFTER_MS)) unlinkSync(path);
          else left++;
        } catch {
          left++;
        }
      }
      if (left === 0) {
        try {
          rmdirSync(folder);
        } catch {
          // in use again, or not ours to remove
        }
      }
    }
  }

  /** The backup failed: the parent's cache stays, this one is dropped. */
  discard(): void {
    this.closeFiles();
    unlinkQuietly(this.temp);
  }

  private closed = false;

  private closeFiles(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of [this.previous, this.older, this.next]) {
      if (fd === undefined) continue;
      try {
        closeSync(fd);
      } catch {
        // nothing to do
      }
    }
  }
}

/** A cache not written for this long is removed by {@link BlockFingerprints.sweep}: 45 days. */
export const STALE_AFTER_MS = 45 * 24 * 3600 * 1000;
/** A temporary cache (its backup was killed) older than this is removed: a day. */
const ABANDONED_AFTER_MS = 24 * 3600 * 1000;

/** The suffix of the cache of the parent's parent. */
const OLDER = '.older';

const MAGIC = 'CBFP';
const VERSION = 1;
const HEADER_BYTES = 128;
/** Fingerprints copied per read when carrying unread blocks over (64 KiB). */
const CARRY_BLOCKS = 4096;

function tagOffset(block: number): number {
  return HEADER_BYTES + block * FINGERPRINT_BYTES;
}

/** The cache at `path` when it describes `snapshot` on a disk of this geometry; else (absent, unreadable, another) none. */
function openCache(path: string, geometry: { size: number; blockSize: number }, blockCount: number, snapshot: string): { fd: number; key: Buffer } | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const header = Buffer.alloc(HEADER_BYTES);
    readFully(fd, header, 0, HEADER_BYTES, 0);
    const valid =
      header.toString('latin1', 0, 4) === MAGIC &&
      header.readUInt32LE(4) === VERSION &&
      header.readUInt32LE(8) === geometry.blockSize &&
      header.readBigUInt64LE(16) === BigInt(geometry.size) &&
      header.readBigUInt64LE(24) === BigInt(blockCount) &&
      header.subarray(32, 64).equals(Buffer.from(snapshot, 'hex')) &&
      fstatSync(fd).size === HEADER_BYTES + blockCount * FINGERPRINT_BYTES;
    if (valid) return { fd, key: Buffer.from(header.subarray(64, 96)) };
  } catch {
    // unreadable: as if absent
  }
  closeSync(fd);
  return undefined;
}

/** Calls `each(first block, count, position in indexes)` for each run of consecutive indexes. */
function forEachRun(indexes: readonly number[], each: (first: number, count: number, at: number) => void): void {
  let start = 0;
  for (let i = 1; i <= indexes.length; i++) {
    if (i < indexes.length && indexes[i] === (indexes[i - 1] as number) + 1) continue;
    if (i > start) each(indexes[start] as number, i - start, start);
    start = i;
  }
}

function readFully(fd: number, into: Uint8Array, offset: number, length: number, position: number): void {
  for (let done = 0; done < length; ) {
    const n = readSync(fd, into, offset + done, length - done, position + done);
    if (n === 0) throw new Error('block fingerprint cache is shorter than its header says');
    done += n;
  }
}

function listQuietly(folder: string): string[] {
  try {
    return readdirSync(folder);
  } catch {
    return [];
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // gone already
  }
}
