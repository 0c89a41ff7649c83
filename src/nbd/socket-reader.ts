import type { Socket } from 'node:net';
import { CofferError } from '../errors/index.js';

/** Buffered bytes above which the socket is paused (backpressure), and below which it resumes. */
const HIGH_WATER = 4 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;

/** Bytes a connection made with {@link reusedReadBuffer} reads from the kernel at once. */
const READ_BUFFER_BYTES = 256 * 1024;

/**
 * Socket options that make Node read into one buffer, reused for every read, instead of a new
 * 64 KiB buffer per read; `bind` then hands the bytes to the connection's reader, which copies
 * them straight into the buffer a `readInto` waits on. A backup reading gigabytes over NBD
 * spent more CPU collecting the garbage of the per-read buffers than reading (live benchmark,
 * --cpu-prof). Bytes that arrive before `bind` are kept for it.
 */
export function reusedReadBuffer(): { onread: { buffer: Uint8Array; callback: (bytes: number, buffer: Uint8Array) => boolean }; bind(reader: SocketReader): void } {
  let target: SocketReader | undefined;
  const early: Buffer[] = [];
  return {
    onread: {
      buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
      callback: (bytes, buffer) => {
        const view = Buffer.from(buffer.buffer, buffer.byteOffset, bytes);
        if (target === undefined) early.push(Buffer.from(view));
        else target.receive(view, { reused: true });
        return true; // SocketReader pauses the socket itself when too much is buffered
      },
    },
    bind(reader) {
      target = reader;
      for (const chunk of early.splice(0)) reader.receive(chunk, { reused: false });
    },
  };
}

/**
 * Exact-length reads from a socket, for a parser that reads one message after another: `read(n)`
 * resolves with exactly `n` bytes or rejects once the socket ends, errs, or `fail()` is called.
 * One read at a time (the parser's loop); the socket is paused while too much is buffered.
 * Never hangs on its own: a peer that stalls is the caller's to time out (with `fail`).
 * Bytes come from the socket's `data` events, or, for a socket made with
 * {@link reusedReadBuffer}, straight into the buffer of the `readInto` that waits for them.
 */
export class SocketReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private failure: CofferError | undefined;
  private wake: (() => void) | undefined;
  private pausedByUs = false;
  /** The buffer the one waiting `readInto` fills, and how far it is filled. */
  private sink: { target: Uint8Array; filled: number } | undefined;

  /** `peer` names the other end in errors, e.g. `the NBD server on /run/x.sock`. */
  constructor(
    private readonly socket: Socket,
    peer: string,
  ) {
    const ended = (): CofferError => new CofferError('E_CONNECTION_FAILED', `${peer} closed the connection`);
    socket.on('data', (chunk: Buffer) => this.receive(chunk, { reused: false }));
    // The peer's end keeps what it sent before: reads drain it, then reject.
    socket.on('end', () => this.finish(ended()));
    socket.on('close', () => this.finish(ended()));
    socket.on('error', (error: NodeJS.ErrnoException) => this.finish(new CofferError('E_CONNECTION_FAILED', `the connection to ${peer} failed: ${error.code ?? error.message}`, { cause: error })));
  }

  /** The error that ended the stream, if it ended. */
  get error(): CofferError | undefined {
    return this.failure;
  }

  /** Exactly `length` bytes, in a new buffer. */
  async read(length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    await this.readInto(out);
    return out;
  }

  /** Fills `target` exactly. */
  async readInto(target: Uint8Array): Promise<void> {
    let done = 0;
    while (done < target.length) {
      if (this.buffered === 0) {
        if (this.failure !== undefined) throw this.failure;
        const sink = { target, filled: done };
        this.sink = sink;
        try {
          await new Promise<void>((resolve) => (this.wake = resolve));
        } finally {
          this.sink = undefined;
        }
        done = sink.filled;
        continue;
      }
      done += this.take(target, done);
    }
  }

  /**
   * Bytes from the socket: first into the waiting `readInto`'s buffer (when nothing older is
   * queued), the rest queued. `reused`: `bytes` is overwritten after this call, so what is
   * queued is copied.
   */
  receive(bytes: Buffer, options: { reused: boolean }): void {
    let rest = bytes;
    const sink = this.sink;
    if (sink !== undefined && this.buffered === 0) {
      const n = Math.min(rest.length, sink.target.length - sink.filled);
      sink.target.set(rest.subarray(0, n), sink.filled);
      sink.filled += n;
      rest = rest.subarray(n);
    }
    if (rest.length > 0) {
      this.chunks.push(options.reused ? Buffer.from(rest) : rest);
      this.buffered += rest.length;
      if (this.buffered > HIGH_WATER && !this.pausedByUs) {
        this.pausedByUs = true;
        this.socket.pause();
      }
    }
    this.notify();
  }

  /** Reads and drops `length` bytes. */
  async skip(length: number): Promise<void> {
    let left = length;
    const scratch = Buffer.allocUnsafe(Math.min(length, 64 * 1024));
    while (left > 0) {
      const piece = scratch.subarray(0, Math.min(left, scratch.length));
      await this.readInto(piece);
      left -= piece.length;
    }
  }

  /**
   * Ends the stream with `error` (kept if the stream already ended otherwise) and destroys the
   * socket, so pending and later reads reject with it.
   */
  fail(error: CofferError): void {
    if (this.failure === undefined) this.failure = error;
    this.chunks.length = 0;
    this.buffered = 0;
    if (!this.socket.destroyed) this.socket.destroy();
    this.notify();
  }

  private finish(error: CofferError): void {
    if (this.failure === undefined) this.failure = error;
    this.notify();
  }

  private take(target: Uint8Array, at: number): number {
    const chunk = this.chunks[0] as Buffer;
    const n = Math.min(chunk.length, target.length - at);
    target.set(chunk.subarray(0, n), at);
    if (n === chunk.length) this.chunks.shift();
    else this.chunks[0] = chunk.subarray(n);
    this.buffered -= n;
    if (this.pausedByUs && this.buffered < LOW_WATER) {
      this.pausedByUs = false;
      this.socket.resume();
    }
    return n;
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
