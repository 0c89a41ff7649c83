/**
 * Splits a byte stream into lines, the framing QMP uses.
 *
 * Wire format (docs/interop/qmp-spec.rst, "General Definitions"): every message the server
 * sends is one JSON object terminated by CRLF. QEMU writes each object on one line (unless a
 * monitor is configured with `pretty=on`, which Coffer does not support: such a monitor
 * yields lines that are not whole JSON objects, reported by the parser as E_PROTOCOL).
 *
 * A line ends at LF; one CR before the LF is dropped; empty lines are skipped. Chunks may
 * split a line anywhere (even inside a multi-byte character) and hold several lines. A line
 * longer than `maxLineBytes` (a hostile or broken peer) makes {@link LineFramer.push} throw
 * E_PROTOCOL as soon as the excess is seen, without buffering more than the limit + one chunk.
 */
import { CofferError } from '../errors/index.js';

const LF = 0x0a;
const CR = 0x0d;

export class LineFramer {
  /** Bytes of the unfinished line, kept as the chunks that brought them (no quadratic concat). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxLineBytes: number, private readonly peer: string) {
    if (!Number.isSafeInteger(maxLineBytes) || maxLineBytes < 1) throw new RangeError(`bad maxLineBytes ${maxLineBytes}`);
  }

  /** Bytes received that do not yet form a whole line. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  /** Drops an unfinished line (a resynchronising peer, see guest-agent-client.ts). */
  reset(): void {
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Takes one chunk; returns the lines it completes (UTF-8 decoded, without the line end). */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (;;) {
      const lf = chunk.indexOf(LF, start);
      if (lf === -1) break;
      this.checkLength(this.pendingBytes + (lf - start));
      const line = this.take(chunk.subarray(start, lf));
      if (line !== '') lines.push(line);
      start = lf + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.checkLength(this.pendingBytes + rest.length);
      this.pending.push(rest);
      this.pendingBytes += rest.length;
    }
    return lines;
  }

  private take(tail: Buffer): string {
    let bytes = this.pending.length === 0 ? tail : Buffer.concat([...this.pending, tail]);
    this.pending = [];
    this.pendingBytes = 0;
    if (bytes.length > 0 && bytes[bytes.length - 1] === CR) bytes = bytes.subarray(0, bytes.length - 1);
    return bytes.toString('utf8');
  }

  private checkLength(length: number): void {
    if (length <= this.maxLineBytes) return;
    throw new CofferError('E_PROTOCOL', `${this.peer} sent a message longer than ${this.maxLineBytes} bytes`, {
      subject: { path: this.peer },
    });
  }
}
