import type { Socket } from 'node:net';
import { CofferError } from '../errors/index.js';

/** Buffered bytes above which the socket is paused (backpressure), and below which it resumes. */
const HIGH_WATER = 4 * 1024 * 1024;
const LOW_WATER = 1024 * 1024;

/**
 * Exact-length reads from a socket, for a parser that reads one message after another: `read(n)`
 * resolves with exactly `n` bytes or rejects once the socket ends, errs, or `fail()` is called.
 * One read at a time (the parser's loop); the socket is paused while too much is buffered.
 * Never hangs on its own: a peer that stalls is the caller's to time out (with `fail`).
 */
export class SocketReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private failure: CofferError | undefined;
  private wake: (() => void) | undefined;
  private pausedByUs = false;

  /** `peer` names the other end in errors, e.g. `the NBD server on /run/x.sock`. */
  constructor(
    private readonly socket: Socket,
    peer: string,
  ) {
    const ended = (): CofferError => new CofferError('E_CONNECTION_FAILED', `${peer} closed the connection`);
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      if (this.buffered > HIGH_WATER && !this.pausedByUs) {
        this.pausedByUs = true;
        socket.pause();
      }
      this.notify();
    });
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
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      done += this.take(target, done);
    }
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
