import { CofferError } from '../../errors/index.js';
import { MAX_STRING_BYTES } from './constants.js';

/**
 * A bounds-checked big-endian reader over one message payload. Every read past the end, and
 * every string that is not valid NBD text (UTF-8, no NUL, at most 4096 bytes), throws
 * `E_PROTOCOL` naming `what` the payload is: the peer sent it, so it is untrusted.
 */
export class Cursor {
  private position = 0;

  constructor(
    private readonly payload: Uint8Array,
    private readonly what: string,
  ) {}

  get remaining(): number {
    return this.payload.length - this.position;
  }

  u16(): number {
    return this.view(2).readUInt16BE(0);
  }

  u32(): number {
    return this.view(4).readUInt32BE(0);
  }

  /** A 64-bit unsigned number; values past 2^53 − 1 are clamped to `Number.MAX_SAFE_INTEGER`. */
  u64(): number {
    return clampU64(this.view(8).readBigUInt64BE(0));
  }

  /** The next `length` bytes, as a view. */
  bytes(length: number): Uint8Array {
    return this.view(length);
  }

  /** `length` bytes of NBD text. */
  string(length: number): string {
    if (length > MAX_STRING_BYTES) throw protocolError(`${this.what}: a string of ${length} bytes (at most ${MAX_STRING_BYTES})`);
    return decodeText(this.view(length), this.what);
  }

  /** The rest of the payload as NBD text. */
  rest(): string {
    return this.string(this.remaining);
  }

  /** Throws unless every byte was consumed. */
  end(): void {
    if (this.remaining !== 0) throw protocolError(`${this.what}: ${this.remaining} unexpected trailing bytes`);
  }

  private view(length: number): Buffer {
    if (length > this.remaining) throw protocolError(`${this.what}: needs ${length} more bytes, has ${this.remaining}`);
    const start = this.payload.byteOffset + this.position;
    this.position += length;
    return Buffer.from(this.payload.buffer, start, length);
  }
}

/** A u64 read from the wire as a number, clamped to `Number.MAX_SAFE_INTEGER` (no export is that big). */
export function clampU64(value: bigint): number {
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

/** Decodes NBD text: valid UTF-8 without NUL. */
export function decodeText(bytes: Uint8Array, what: string): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw protocolError(`${what}: a string that is not valid UTF-8`);
  }
  if (text.includes('\0')) throw protocolError(`${what}: a string with a NUL character`);
  return text;
}

/** Encodes NBD text, refusing what the protocol forbids (a caller bug, so a RangeError). */
export function encodeText(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > MAX_STRING_BYTES) throw new RangeError(`NBD strings are at most ${MAX_STRING_BYTES} bytes, this one has ${bytes.length}`);
  if (text.includes('\0')) throw new RangeError('NBD strings cannot hold NUL');
  return bytes;
}

/** The error for anything a peer sent that breaks the protocol. */
export function protocolError(message: string, cause?: unknown): CofferError {
  return new CofferError('E_PROTOCOL', `NBD protocol violation: ${message}`, cause === undefined ? {} : { cause });
}
