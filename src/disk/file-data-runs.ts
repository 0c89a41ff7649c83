import { syscalls } from '../native/index.js';

/** A run of an open file: data, or a hole (which reads as zeros). */
export interface DataRun {
  at: number;
  length: number;
  data: boolean;
}

/**
 * Where the open file `fd` holds data in `[at, end)` and where it has holes, from
 * SEEK_DATA/SEEK_HOLE: raw images and flat extents are mostly holes when thin, and holes need
 * no reading. Without SEEK_DATA (EINVAL, ESPIPE: a device, a file system that lacks it) the
 * range is one data run. `trailingHole()` runs before a hole that reaches `end` is yielded (a
 * file that shrank while read shows its lost tail as one: the caller checks its size). Other
 * failures become `failed(error, position)`.
 */
export async function* fileDataRuns(
  fd: number,
  at: number,
  end: number,
  hooks: { trailingHole: () => Promise<void>; failed: (error: unknown, position: number) => Error },
): AsyncIterable<DataRun> {
  let position = at;
  while (position < end) {
    let dataStart: number;
    let dataEnd: number;
    try {
      dataStart = syscalls.seekData(fd, position);
      dataEnd = dataStart < 0 ? end : syscalls.seekHole(fd, dataStart);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EINVAL' && code !== 'ESPIPE') throw hooks.failed(error, position);
      yield { at: position, length: end - position, data: true };
      return;
    }
    if (dataStart < 0 || dataStart >= end) {
      await hooks.trailingHole();
      yield { at: position, length: end - position, data: false };
      return;
    }
    if (dataStart > position) yield { at: position, length: dataStart - position, data: false };
    const stop = Math.min(Math.max(dataEnd, dataStart), end);
    if (stop > dataStart) yield { at: dataStart, length: stop - dataStart, data: true };
    position = Math.max(stop, dataStart + 1);
  }
}
