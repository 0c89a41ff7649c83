import type { Socket } from 'node:net';
import { CofferError } from '../../errors/index.js';
import { encodeChunkHeader, encodeSimpleReply } from '../protocol/transmission.js';
import type { SocketReader } from '../socket-reader.js';

/** One chunk of a structured reply: its type, flags and payload parts. */
export interface ReplyChunk {
  type: number;
  flags: number;
  payload: readonly Uint8Array[];
}

/**
 * Writes replies to one client. Each message is written whole in one synchronous burst, so
 * messages of concurrent requests never interleave inside each other. When the socket's buffer
 * is full, senders wait for it to drain (backpressure); a client that reads nothing for
 * `stallMs` is dropped. Writing to a connection that is gone does nothing (its requests' work
 * is lost with it, as for any vanished client).
 */
export class ReplyWriter {
  private drained: Promise<void> | undefined;

  constructor(
    private readonly socket: Socket,
    private readonly reader: SocketReader,
    private readonly stallMs: number,
  ) {}

  get gone(): boolean {
    return this.socket.destroyed || this.reader.error !== undefined;
  }

  simple(cookie: bigint, error: number, data?: Uint8Array): Promise<void> {
    const header = encodeSimpleReply({ error, cookie });
    return this.send(data === undefined ? [header] : [header, data]);
  }

  chunk(cookie: bigint, type: number, flags: number, payload: Uint8Array[]): Promise<void> {
    const length = payload.reduce((sum, part) => sum + part.length, 0);
    return this.send([encodeChunkHeader({ flags, type, cookie, length }), ...payload]);
  }

  /**
   * Several chunks of one reply in one burst (the last one's flags should hold DONE).
   * `written` runs once the socket has written all of them, successfully or not (a write's
   * callback: Node no longer holds the parts, the kernel has copied them), or at once when
   * the connection is gone: until then the parts' memory must not change (zero-copy replies).
   */
  chunks(cookie: bigint, chunks: readonly ReplyChunk[], written: () => void): Promise<void> {
    const parts: Uint8Array[] = [];
    for (const { type, flags, payload } of chunks) {
      const length = payload.reduce((sum, part) => sum + part.length, 0);
      parts.push(encodeChunkHeader({ flags, type, cookie, length }), ...payload);
    }
    return this.send(parts, written);
  }

  private async send(parts: Uint8Array[], written?: () => void): Promise<void> {
    if (this.gone) {
      written?.();
      return;
    }
    let full = false;
    // Corked, the parts leave in one writev instead of a syscall each (header, offset, data).
    this.socket.cork();
    const last = parts.length - 1;
    parts.forEach((part, i) => {
      if (i === last && written !== undefined) full = !this.socket.write(part, () => written()) || full;
      else if (part.length > 0) full = !this.socket.write(part) || full;
    });
    this.socket.uncork();
    if (full) await this.waitForDrain();
  }

  private waitForDrain(): Promise<void> {
    this.drained ??= new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.socket.off('drain', done);
        this.socket.off('close', done);
        this.drained = undefined;
        resolve();
      };
      const timer = setTimeout(() => {
        this.reader.fail(new CofferError('E_TIMEOUT', `an NBD client read none of its replies for ${this.stallMs} ms`));
        done();
      }, this.stallMs);
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
    return this.drained;
  }
}
