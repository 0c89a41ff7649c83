import { closeSync, constants, fstatSync, openSync, readSync, type promises as fsp } from 'node:fs';
import { open } from 'node:fs/promises';
import { hostPath } from '../../names/index.js';
import { syscalls } from '../../native/index.js';
import type { ContentPiece } from '../../repo/index.js';
import type { ChunkStore } from './chunk-store.js';

/** What lstat said of a file before it is read: the metadata recorded with its content. */
export interface ExpectedFile {
  size: number;
  allocated: number;
  /** Nanoseconds since 1970, in decimal. */
  mtime: string;
  ctime: string;
  inode: bigint;
}

/**
 * Files up to this size without holes are read whole with synchronous calls (open, read,
 * fstat, close on the main thread) into a buffer of their own. Each asynchronous call is a
 * round trip through libuv's thread pool (a futex wake and an eventfd write each way, a
 * promise): 740,000 futex calls for 12,500 small files, a third of the backup's CPU in
 * system time (`strace -c -f`, 2026-11-26). A synchronous read of a cached small file takes
 * microseconds; what it costs is that the main thread waits on a cold disk.
 */
export const SMALL_FILE_BYTES = 1 << 20;

/** True when the file is read by {@link readSmallFile}. */
export function isSmallFile(expected: ExpectedFile): boolean {
  return expected.size <= SMALL_FILE_BYTES && expected.allocated >= expected.size;
}

const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;

/** Opens without updating the access time where allowed (O_NOATIME: only the owner or root). */
function openNoAtime(path: string): number {
  try {
    return openSync(hostPath(path), READ_FLAGS | constants.O_NOATIME);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
    return openSync(hostPath(path), READ_FLAGS);
  }
}

/**
 * Reads a small file whole with synchronous calls, then chunks it: the same checks as
 * {@link readFileContent} (a file that shrank, or whose size, mtime, ctime or inode moved
 * by the fstat after the read, is reported as changed). Into `buffer` (at least
 * SMALL_FILE_BYTES, best in shared memory: no copy to the workers) when given, held until
 * this ends; else into a buffer of its own.
 */
export async function readSmallFile(path: string, expected: ExpectedFile, store: ChunkStore, fresh = false, buffer?: Uint8Array): Promise<FileRead> {
  const size = expected.size;
  const data = buffer !== undefined && buffer.length >= size ? buffer : Buffer.allocUnsafeSlow(size);
  const fd = openNoAtime(path);
  let got = 0;
  let after;
  try {
    while (got < size) {
      const n = readSync(fd, data, got, size - got, got);
      if (n === 0) break; // shrank under us
      got += n;
    }
    after = fstatSync(fd, { bigint: true });
  } finally {
    closeSync(fd);
  }
  const pieces = got === 0 ? [] : await store.storeBytes(data.subarray(0, got), fresh);
  const changed = got < size || Number(after.size) !== size || after.mtimeNs.toString() !== expected.mtime || after.ctimeNs.toString() !== expected.ctime || after.ino !== expected.inode;
  return { pieces, size: got, ...(changed ? { warning: 'changed while read' } : {}) };
}

/** What reading one file found. */
export interface FileRead {
  pieces: ContentPiece[];
  /** Bytes the content covers (what was read plus holes). */
  size: number;
  /** Set when the file changed (or vanished) while it was read: the content is what was read. */
  warning?: string;
}

/**
 * Reads one regular file's content into chunks: only its data ranges when it has holes
 * (lseek SEEK_DATA/SEEK_HOLE, asked only when fewer bytes are allocated than its size), the
 * holes recorded as `hole` pieces. The file is opened without following a symlink and
 * without updating its access time where allowed. `expected` is what lstat said before (the
 * metadata recorded with the content): the size read is that size, and one fstat after the
 * read tells whether the file changed since (size, mtime, ctime or inode moved: replaced,
 * written or truncated between the lstat and the end of the read), which is reported, never
 * fatal. One fstat, not two: a small file costs open, read, fstat and close.
 */
export async function readFileContent(
  path: string,
  expected: ExpectedFile,
  store: ChunkStore,
  fresh = false,
  buffer?: Uint8Array,
): Promise<FileRead> {
  if (isSmallFile(expected)) return readSmallFile(path, expected, store, fresh, buffer);
  let handle: fsp.FileHandle;
  try {
    handle = await open(hostPath(path), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NOATIME);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
    handle = await open(hostPath(path), constants.O_RDONLY | constants.O_NOFOLLOW); // O_NOATIME: only the owner or root
  }
  try {
    const size = expected.size;
    const pieces: ContentPiece[] = [];
    let position = 0;
    let short = false;
    for (const range of dataRanges(handle.fd, size, expected.allocated < size)) {
      if (range.offset > position) pieces.push(['hole', range.offset - position]);
      let at = range.offset;
      const fill = async (into: Uint8Array, offset: number, length: number): Promise<number> => {
        const { bytesRead } = await handle.read(into, offset, length, at);
        at += bytesRead;
        return bytesRead;
      };
      const { pieces: read, bytes } = await store.storeStream(fill, range.length, fresh);
      pieces.push(...read);
      position = range.offset + bytes;
      if (bytes < range.length) {
        short = true; // the file shrank under us
        break;
      }
    }
    if (!short && position < size) pieces.push(['hole', size - position]);
    const covered = short ? position : size;
    const after = await handle.stat({ bigint: true });
    const changed = short || Number(after.size) !== size || after.mtimeNs.toString() !== expected.mtime || after.ctimeNs.toString() !== expected.ctime || after.ino !== expected.inode;
    return { pieces, size: covered, ...(changed ? { warning: 'changed while read' } : {}) };
  } finally {
    await handle.close();
  }
}

/** The data ranges of a file: the whole file, or what SEEK_DATA/SEEK_HOLE find. */
function* dataRanges(fd: number, size: number, sparse: boolean): Generator<{ offset: number; length: number }> {
  if (!sparse) {
    if (size > 0) yield { offset: 0, length: size };
    return;
  }
  let offset = 0;
  while (offset < size) {
    const data = syscalls.seekData(fd, offset);
    if (data < 0 || data >= size) return;
    const hole = Math.min(syscalls.seekHole(fd, data), size);
    yield { offset: data, length: hole - data };
    offset = hole;
  }
}
