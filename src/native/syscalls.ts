/**
 * The system calls Node.js lacks, from the addon built from `native/syscalls.c` by
 * `npm install` (node-gyp): lseek(2) with SEEK_DATA/SEEK_HOLE/SEEK_END, so raw images and
 * block devices have an allocation map without being read, and syncfs(2), so a repository
 * makes thousands of objects durable with one call; and for file-level backup and restore,
 * the extended attribute calls (POSIX ACLs are the xattrs `system.posix_acl_access` and
 * `system.posix_acl_default`), mknod(2), utimensat(2) with nanoseconds on symlinks, and a
 * directory's listing with every entry's lstat in one call off the main thread.
 * A path is a string, or a Buffer of its bytes when they are not UTF-8 (a host name is any
 * bytes: names/byte-names.ts). Errors are thrown with the errno name in `code`.
 */
import { createRequire } from 'node:module';

interface Syscalls {
  /** Next offset >= `offset` holding data, or -1 when only holes follow. */
  seekData(fd: number, offset: number): number;
  /** Next offset >= `offset` starting a hole (end of file counts as one). */
  seekHole(fd: number, offset: number): number;
  /** Size of a file or block device. */
  seekEnd(fd: number): number;
  /** Flushes every dirty page and inode of the filesystem holding `fd`; throws on I/O errors. */
  syncfs(fd: number): void;
  /** Names of a path's extended attributes, as their bytes (a name need not be UTF-8; a final symlink is not followed); [] where unsupported. */
  listXattrs(path: string | Buffer): Buffer[];
  /** The value of one extended attribute (its name as UTF-8 or as bytes), or null when it is absent (symlinks not followed). */
  getXattr(path: string | Buffer, name: string | Buffer): Buffer | null;
  /** Sets one extended attribute (its name as UTF-8 or as bytes; at most 64 KiB; symlinks not followed). */
  setXattr(path: string | Buffer, name: string | Buffer, value: Buffer): void;
  /** Creates a FIFO, character or block device: `mode` carries the type bits (S_IFIFO…). */
  mknod(path: string | Buffer, mode: number, major: number, minor: number): void;
  /** Access and modification times in nanoseconds since 1970, on the path itself (a symlink too). */
  setTimes(path: string | Buffer, atimeNs: bigint, mtimeNs: bigint): void;
  /** memmove of `source` into `target` at `targetOffset` (native/copy-bytes.c; use copyBytes in copy-bytes.ts). */
  copyBytes(target: Uint8Array, targetOffset: number, source: Uint8Array): void;
  /** madvise(MADV_HUGEPAGE) over the whole 2 MiB pages of `view` (native/huge-pages.c; use sharedMemory in huge-pages.ts): the bytes advised. */
  adviseHugePages(view: Uint8Array): number;
  /** Bytes from `view`'s first byte to the next address that is a multiple of `alignment` (a power of two): where an O_DIRECT buffer may start inside it. */
  alignmentGap(view: ArrayBufferView, alignment: number): number;
  /**
   * One directory listed and each entry lstat'ed, on a libuv pool thread (native/scan-directory.c
   * documents the record layout): `names` NUL-terminated bytes in readdir order, `stats` 19
   * numbers per name. Rejects with the errno name in `code` when the directory cannot be read.
   */
  scanDirectory(path: string | Buffer): Promise<{ names: Buffer; stats: Float64Array }>;
  /**
   * Byte ranges of files ([inFd, inAt, outAt, length] quadruples) copied into `outFd` on a
   * libuv pool thread (native/copy-file-ranges.c; use copyFileRanges in copy-file-ranges.ts).
   */
  copyFileRanges(ranges: Float64Array, outFd: number, directFd: number, skipZeros: boolean): Promise<{ written: number; direct: number; refused: boolean }>;
}

// Compiled code lives in dist/src/native/, the addon in build/Release/ at the project root.
const require = createRequire(import.meta.url);
export const syscalls: Syscalls = require('../../../build/Release/coffer_native.node') as Syscalls;
