import { constants, type promises as fsp } from 'node:fs';
import { open } from 'node:fs/promises';
import { syscalls } from '../../native/index.js';
import type { ContentPiece } from '../../repo/index.js';
import type { ChunkStore } from './chunk-store.js';

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
  expected: { size: number; allocated: number; mtimeNs: bigint; ctimeNs: bigint; inode: bigint },
  store: ChunkStore,
): Promise<FileRead> {
  let handle: fsp.FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NOATIME);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW); // O_NOATIME: only the owner or root
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
      const { pieces: read, bytes } = await store.storeStream(fill, range.length);
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
    const changed = short || Number(after.size) !== size || after.mtimeNs !== expected.mtimeNs || after.ctimeNs !== expected.ctimeNs || after.ino !== expected.inode;
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
