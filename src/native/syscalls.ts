/**
 * The system calls Node.js lacks, from the addon built from `native/syscalls.c` by
 * `npm install` (node-gyp): lseek(2) with SEEK_DATA/SEEK_HOLE/SEEK_END, so raw images and
 * block devices have an allocation map without being read, and syncfs(2), so a repository
 * makes thousands of objects durable with one call.
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
}

// Compiled code lives in dist/src/native/, the addon in build/Release/ at the project root.
const require = createRequire(import.meta.url);
export const syscalls: Syscalls = require('../../../build/Release/coffer_native.node') as Syscalls;
