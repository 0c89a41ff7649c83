import { write, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

/**
 * Positioned writes that write every byte: a file or device may take less than asked (a
 * signal, a full device's last blocks), and the rest is written again from where it stopped;
 * a write that takes nothing at all is an EIO, not an endless loop.
 */

/** Writes `buffers` back to back at `position`: one pwrite for one buffer, one pwritev for several. */
export async function writeFully(handle: FileHandle, buffers: readonly Uint8Array[], position: number): Promise<void> {
  let pending = [...buffers];
  let at = position;
  while (pending.length > 0) {
    const first = pending[0] as Uint8Array;
    let written = pending.length === 1 ? (await handle.write(first, 0, first.length, at)).bytesWritten : (await handle.writev(pending, at)).bytesWritten;
    if (written <= 0) throw tookNothing();
    at += written;
    while (pending.length > 0 && written >= (pending[0] as Uint8Array).length) written -= (pending.shift() as Uint8Array).length;
    if (written > 0 && pending.length > 0) pending = [(pending[0] as Uint8Array).subarray(written), ...pending.slice(1)];
  }
}

/** Writes all of `data` at `offset` of descriptor `fd`, through libuv's pool. */
export function writeFullyAt(fd: number, data: Uint8Array, offset: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const from = (done: number): void => {
      write(fd, data, done, data.length - done, offset + done, (error, n) => {
        if (error !== null) reject(error);
        else if (n <= 0) reject(tookNothing());
        else if (done + n >= data.length) resolve();
        else from(done + n);
      });
    };
    from(0);
  });
}

/** Writes all of `data` at `offset`, synchronously. */
export function writeFullySync(fd: number, data: Uint8Array, offset: number): void {
  for (let done = 0; done < data.length; ) {
    const n = writeSync(fd, data, done, data.length - done, offset + done);
    if (n <= 0) throw tookNothing();
    done += n;
  }
}

function tookNothing(): Error {
  return Object.assign(new Error('the file took no bytes'), { code: 'EIO' });
}
