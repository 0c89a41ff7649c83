import { syscalls } from './syscalls.js';

/** `length` bytes of the open file `fd` from `at`, for the output at `offset`. */
export interface FileRange {
  fd: number;
  at: number;
  offset: number;
  length: number;
}

/** What {@link copyFileRanges} did. */
export interface CopiedRanges {
  /** Bytes written (without the zero pieces left out). */
  written: number;
  /** Of those, bytes written past the page cache (`directFd`). */
  direct: number;
  /** A direct write was refused (EINVAL): that one and the rest went through `outFd`. */
  refused: boolean;
}

/**
 * A failed {@link copyFileRanges}: `code` is the errno name (`EOF` when an input ended before
 * a range did), `side` says whether reading or writing failed (`memory`: the copy's buffer
 * could not be had, nothing was copied), `position` is the byte of the input (reading) or
 * output (writing) where, `range` the index in the ranges given.
 */
export interface CopyRangesError extends Error {
  code: string;
  side: 'read' | 'write' | 'memory';
  position: number;
  range: number;
}

/**
 * Copies `ranges` of open files into the file `outFd` on a libuv pool thread, the bytes never
 * entering JavaScript (native/copy-file-ranges.c): a convert moves an image's data clusters so.
 * `directFd` (the same file opened O_DIRECT, or -1) takes the runs aligned to 4 KiB; with
 * `skipZeros` (the output reads as zeros where unwritten), 4 KiB pieces of zeros aligned in the
 * output are left unwritten. Rejects with a {@link CopyRangesError}; ranges before the failing
 * one were copied. The descriptors must stay open until it settles.
 */
export function copyFileRanges(ranges: readonly FileRange[], outFd: number, options: { directFd?: number; skipZeros: boolean }): Promise<CopiedRanges> {
  const quads = new Float64Array(ranges.length * 4);
  ranges.forEach((range, i) => {
    quads[i * 4] = range.fd;
    quads[i * 4 + 1] = range.at;
    quads[i * 4 + 2] = range.offset;
    quads[i * 4 + 3] = range.length;
  });
  return syscalls.copyFileRanges(quads, outFd, options.directFd ?? -1, options.skipZeros);
}
