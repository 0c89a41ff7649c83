import { constants, open as openDescriptor } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Socket } from 'node:net';
import { CofferError } from '../errors/index.js';

/** The most a passphrase file may hold: a passphrase is a line, not a disk (`/dev/zero` would never end). */
export const MAX_PASSPHRASE_FILE_BYTES = 64 * 1024;

interface Reading {
  text: Promise<string>;
  /** Stops a read that waits on a pipe (its promise then rejects with `reason`). */
  stop(reason: CofferError): void;
}

/** Each file is read once per process: a pipe (`<(pass show coffer)`, a FIFO) can be read only once. */
const readings = new Map<string, Reading>();

/**
 * The passphrase in `path`, without its trailing newline. Read once per process, whoever asks
 * first (cli/derive-keys-early.ts starts it while the command loads; the command's own read
 * gets the same answer), so a pipe works as well as a file. A pipe or FIFO is read without
 * blocking a thread: a FIFO nobody writes to yet waits for its writer, and `signal` (Ctrl-C)
 * ends the wait. Refuses (`E_USAGE`, one line naming the file) what cannot be read, an empty
 * passphrase, and a file larger than {@link MAX_PASSPHRASE_FILE_BYTES}.
 */
export async function readPassphraseFile(path: string, signal?: AbortSignal): Promise<string> {
  let reading = readings.get(path);
  if (reading === undefined) {
    reading = startReading(path);
    readings.set(path, reading);
  }
  if (signal === undefined) return reading.text;
  const current = reading;
  const onAbort = () => current.stop(new CofferError('E_INTERRUPTED', `interrupted while waiting for the passphrase file ${path}`));
  if (signal.aborted) onAbort();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    return await current.text;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

function startReading(path: string): Reading {
  let stopper: (reason: CofferError) => void = () => {};
  let stopped: CofferError | undefined;
  const text = (async () => {
    let bytes: Buffer;
    try {
      const info = await stat(path);
      if (info.isDirectory()) throw Object.assign(new Error('it is a folder'), { code: 'EISDIR' });
      bytes = info.isFIFO()
        ? await readPipe(path, (stop) => {
          stopper = stop;
          if (stopped !== undefined) stop(stopped);
        })
        : await readRegular(path);
    } catch (error) {
      if (error instanceof CofferError) throw error;
      throw new CofferError('E_USAGE', `cannot read the passphrase file ${path}: ${(error as Error).message}`, { subject: { path }, cause: error });
    }
    if (bytes.length > MAX_PASSPHRASE_FILE_BYTES) {
      throw new CofferError('E_USAGE', `the passphrase file ${path} holds more than ${MAX_PASSPHRASE_FILE_BYTES / 1024} KiB: give the file that holds the passphrase`, { subject: { path } });
    }
    const passphrase = bytes.toString('utf8').replace(/\r?\n$/, '');
    if (passphrase === '') throw new CofferError('E_USAGE', `the passphrase file ${path} is empty: an empty passphrase is not allowed`, { subject: { path } });
    return passphrase;
  })();
  text.catch(() => {});
  return {
    text,
    stop: (reason) => {
      stopped ??= reason;
      stopper(reason);
    },
  };
}

/** At most one byte more than the limit (enough to tell it is too large). */
async function readRegular(path: string): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(MAX_PASSPHRASE_FILE_BYTES + 1);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, null);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return buffer.subarray(0, filled);
  } finally {
    await handle.close();
  }
}

/**
 * A FIFO or pipe, opened non-blocking (a plain open would block a thread until a writer
 * comes, and no signal could end it) and read through the event loop until its writer closes
 * it. Linux reports no end on a FIFO whose writer never came, so the read waits for one.
 */
async function readPipe(path: string, onStop: (stop: (reason: CofferError) => void) => void): Promise<Buffer> {
  const fd = await new Promise<number>((resolve, reject) => openDescriptor(path, constants.O_RDONLY | constants.O_NONBLOCK, (error, opened) => (error ? reject(error) : resolve(opened))));
  const socket = new Socket({ fd, readable: true, writable: false }); // owns the descriptor: destroy closes it
  return new Promise<Buffer>((resolve, reject) => {
    const pieces: Buffer[] = [];
    let size = 0;
    const finish = (error?: unknown) => {
      socket.destroy();
      if (error !== undefined) reject(error);
      else resolve(Buffer.concat(pieces));
    };
    onStop((reason) => finish(reason));
    socket.on('data', (piece: Buffer) => {
      pieces.push(piece);
      size += piece.length;
      if (size > MAX_PASSPHRASE_FILE_BYTES) finish();
    });
    socket.on('end', () => finish());
    socket.on('error', (error) => finish(error));
  });
}
