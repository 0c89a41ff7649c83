/**
 * One request in flight and the checks on its reply (proto.md, "Structured reply types" and
 * "Request types"):
 * - a simple reply: only without structured replies for READ, never for BLOCK_STATUS; a
 *   successful READ carries exactly `length` bytes;
 * - OFFSET_DATA / OFFSET_HOLE: only for READ, inside the request, never overlapping an earlier
 *   chunk; at DONE without error they cover the whole request;
 * - BLOCK_STATUS: only for BLOCK_STATUS, a context that was selected, once per context; with
 *   REQ_ONE one descriptor no longer than the request; otherwise all but the last descriptor
 *   inside the request; at DONE without error every selected context answered;
 * - NONE: empty, and only with DONE;
 * - error chunks (bit 15, known or not): the request fails with `E_NBD_ERROR` at DONE;
 * - anything else, or a length that breaks these rules: `E_PROTOCOL` (the connection ends).
 * Payload lengths are checked before a byte of payload is read, so a hostile length never
 * makes the client allocate or wait for it.
 */
import { CofferError } from '../../errors/index.js';
import { ChunkType, Command, CommandFlag, commandName, errnoName, isErrorChunk, MAX_STRING_BYTES } from '../protocol/constants.js';
import { protocolError } from '../protocol/cursor.js';
import {
  BLOCK_DESCRIPTOR_BYTES,
  decodeBlockStatus,
  decodeErrorChunk,
  decodeHole,
  decodeOffset,
  OFFSET_HOLE_BYTES,
  type BlockDescriptor,
  type ChunkHeader,
  type ErrorChunk,
} from '../protocol/transmission.js';
import type { SocketReader } from '../socket-reader.js';
import { IntervalSet } from './interval-set.js';

/** The most descriptors one BLOCK_STATUS chunk may carry (the spec's SHOULD, enforced). */
const MAX_DESCRIPTORS = 1 << 20;
/** The longest error chunk: error, message length, a message of at most 4096 bytes, an offset. */
const MAX_ERROR_CHUNK = 4 + 2 + MAX_STRING_BYTES + 8;

export interface RequestShape {
  type: number;
  flags: number;
  offset: number;
  length: number;
  /** READ: where the data goes. */
  target: Uint8Array | undefined;
  structured: boolean;
  /** BLOCK_STATUS: the ids of the selected contexts. */
  contexts: Set<number>;
}

export class PendingRequest {
  /** Resolves with the block status per context id (empty for other commands). */
  readonly result: Promise<Map<number, BlockDescriptor[]>>;
  /** Settles when the request does, never rejects. */
  readonly settled: Promise<void>;
  finished = false;
  private resolve!: (value: Map<number, BlockDescriptor[]>) => void;
  private reject!: (error: unknown) => void;
  private readonly covered = new IntervalSet();
  private readonly statuses = new Map<number, BlockDescriptor[]>();
  private error: ErrorChunk | undefined;

  constructor(private readonly shape: RequestShape) {
    this.result = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    this.settled = this.result.then(() => undefined, () => undefined);
  }

  async onSimpleReply(error: number, reader: SocketReader): Promise<void> {
    const { type, structured, target } = this.shape;
    if (type === Command.BLOCK_STATUS) throw protocolError('a simple reply to NBD_CMD_BLOCK_STATUS');
    if (type === Command.READ && structured) throw protocolError('a simple reply to NBD_CMD_READ although structured replies were negotiated');
    if (error !== 0) {
      this.error = { error, message: '' };
    } else if (type === Command.READ && target !== undefined) {
      await reader.readInto(target);
    }
    this.onDone();
  }

  async onChunk(chunk: ChunkHeader, reader: SocketReader): Promise<void> {
    const { type } = this.shape;
    const what = `${chunkName(chunk.type)} chunk in reply to ${commandName(type)}`;
    switch (chunk.type) {
      case ChunkType.NONE:
        if (chunk.length !== 0) throw protocolError(`an ${what} with ${chunk.length} bytes of payload`);
        if ((chunk.flags & 1) === 0) throw protocolError(`an ${what} without the DONE flag`);
        return;
      case ChunkType.OFFSET_DATA:
        if (type !== Command.READ) throw protocolError(`an unexpected ${what}`);
        return this.onData(chunk.length, reader);
      case ChunkType.OFFSET_HOLE:
        if (type !== Command.READ) throw protocolError(`an unexpected ${what}`);
        if (chunk.length !== OFFSET_HOLE_BYTES) throw protocolError(`an ${what} of ${chunk.length} bytes (must be 12)`);
        return this.onHole(decodeHole(await reader.read(chunk.length)));
      case ChunkType.BLOCK_STATUS:
        if (type !== Command.BLOCK_STATUS) throw protocolError(`an unexpected ${what}`);
        if (chunk.length > 4 + BLOCK_DESCRIPTOR_BYTES * MAX_DESCRIPTORS) throw protocolError(`a ${what} of ${chunk.length} bytes`);
        return this.onStatus(decodeBlockStatus(await reader.read(chunk.length)));
      default:
        if (!isErrorChunk(chunk.type)) throw protocolError(`a chunk of unknown type ${chunk.type} in reply to ${commandName(type)}`);
        if (chunk.length > MAX_ERROR_CHUNK) throw protocolError(`an ${what} of ${chunk.length} bytes`);
        return this.onError(decodeErrorChunk(chunk.type, await reader.read(chunk.length)));
    }
  }

  /** The last chunk arrived (or the simple reply): settle. Throws on an incomplete reply. */
  onDone(): void {
    this.finished = true;
    const { type, offset, length } = this.shape;
    if (this.error !== undefined) {
      const { error, message } = this.error;
      const at = this.error.offset ?? offset;
      this.reject(new CofferError('E_NBD_ERROR', `the NBD server failed ${commandName(type)} of ${length} bytes at ${offset}: ${errnoName(error)}${message === '' ? '' : ` (${message})`}`, { subject: { offset: at } }));
      return;
    }
    if (type === Command.READ && this.shape.structured && this.covered.covered !== length) {
      throw protocolError(`a read of ${length} bytes at ${offset} answered with only ${this.covered.covered} bytes`);
    }
    if (type === Command.BLOCK_STATUS) {
      for (const id of this.shape.contexts) if (!this.statuses.has(id)) throw protocolError(`block status at ${offset} without an answer for meta context ${id}`);
    }
    this.resolve(this.statuses);
  }

  fail(error: unknown): void {
    this.finished = true;
    this.reject(error);
  }

  private async onData(chunkLength: number, reader: SocketReader): Promise<void> {
    if (chunkLength < 9) throw protocolError(`an OFFSET_DATA chunk of ${chunkLength} bytes (at least 9)`);
    const dataLength = chunkLength - 8;
    if (dataLength > this.shape.length) throw protocolError(`an OFFSET_DATA chunk of ${dataLength} bytes for a read of ${this.shape.length}`);
    const start = decodeOffset(await reader.read(8));
    const at = this.claim(start, dataLength, 'OFFSET_DATA');
    await reader.readInto((this.shape.target as Uint8Array).subarray(at, at + dataLength));
  }

  private onHole(hole: { offset: number; length: number }): void {
    const at = this.claim(hole.offset, hole.length, 'OFFSET_HOLE');
    (this.shape.target as Uint8Array).fill(0, at, at + hole.length);
  }

  /** Checks `[start, start + length)` lies in the request and overlaps no earlier chunk; returns its index in the target. */
  private claim(start: number, length: number, what: string): number {
    const { offset, length: requested } = this.shape;
    if (start < offset || start + length > offset + requested) {
      throw protocolError(`an ${what} chunk for ${length} bytes at ${start}, outside the read of ${requested} bytes at ${offset}`);
    }
    if (!this.covered.add(start - offset, start - offset + length)) throw protocolError(`an ${what} chunk at ${start} overlaps an earlier chunk`);
    return start - offset;
  }

  private onStatus(status: { contextId: number; descriptors: BlockDescriptor[] }): void {
    const { contextId, descriptors } = status;
    if (!this.shape.contexts.has(contextId)) throw protocolError(`block status for meta context ${contextId}, which was not selected`);
    if (this.statuses.has(contextId)) throw protocolError(`two block status chunks for meta context ${contextId}`);
    if ((this.shape.flags & CommandFlag.REQ_ONE) !== 0) {
      const only = descriptors[0] as BlockDescriptor;
      if (descriptors.length !== 1 || only.length > this.shape.length) throw protocolError('a block status reply that breaks NBD_CMD_FLAG_REQ_ONE');
    } else {
      let sum = 0;
      for (let i = 0; i < descriptors.length - 1; i++) sum += (descriptors[i] as BlockDescriptor).length;
      if (descriptors.length > 1 && sum >= this.shape.length) throw protocolError(`block status descriptors past the ${this.shape.length} bytes asked for`);
    }
    this.statuses.set(contextId, descriptors);
  }

  private onError(error: ErrorChunk): void {
    const { offset, length } = this.shape;
    if (error.offset !== undefined && (error.offset < offset || error.offset >= offset + Math.max(length, 1))) {
      throw protocolError(`an error at offset ${error.offset}, outside the request of ${length} bytes at ${offset}`);
    }
    this.error ??= error;
  }
}

function chunkName(type: number): string {
  for (const [name, value] of Object.entries(ChunkType)) if (value === type) return name;
  return `type-${type}`;
}
