/**
 * An NBD client connection: the handshake (./handshake.ts), then the transmission phase with
 * several requests in flight, matched to their replies by cookie.
 *
 * Concurrency: any number of callers may issue requests at once; at most `maxInFlight` are
 * on the wire, the others wait in order. One loop reads replies and hands each to its request,
 * which checks it (./reply-checks.ts). Anything the server sends that breaks the protocol,
 * a reply that takes longer than `requestTimeoutMs`, or the connection dropping, ends the
 * connection: every request in flight and every later one rejects with that error
 * (`E_PROTOCOL`, `E_TIMEOUT`, `E_CONNECTION_FAILED`). An error the server reports for one request
 * (`NBD_EIO`…) fails only that request, with `E_NBD_ERROR`.
 */
import type { Socket } from 'node:net';
import { CofferError } from '../../errors/index.js';
import { NBD_DEFAULTS } from '../defaults.js';
import { Command, CommandFlag, commandName, NBD_SIMPLE_REPLY_MAGIC, NBD_STRUCTURED_REPLY_MAGIC, ReplyFlag, TransmissionFlag } from '../protocol/constants.js';
import { protocolError } from '../protocol/cursor.js';
import type { ExportListing } from '../protocol/handshake.js';
import {
  CHUNK_HEADER_BYTES,
  decodeChunkHeaderRest,
  decodeSimpleReplyRest,
  encodeRequest,
  REPLY_MAGIC_BYTES,
  SIMPLE_REPLY_BYTES,
  type BlockDescriptor,
} from '../protocol/transmission.js';
import { Slots } from '../slots.js';
import { reusedReadBuffer, SocketReader } from '../socket-reader.js';
import { describeAddress, parseNbdUri, type NbdAddress } from './address.js';
import { listExports, negotiateExport, type NegotiatedExport } from './handshake.js';
import { openSocket } from './open-socket.js';
import { PendingRequest } from './pending-request.js';

/** Options of {@link NbdClient.connect}. */
export interface NbdClientOptions {
  /** The export to open; overrides the address's. Default: the address's, else `''` (the default export). */
  exportName?: string;
  /** Negotiate structured replies (holes in reads, block status). Default true. */
  structuredReplies?: boolean;
  /** Metadata contexts to select, e.g. `['base:allocation', 'qemu:dirty-bitmap:b0']`. Default none. */
  metaContexts?: string[];
  connectTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  requestTimeoutMs?: number;
  maxInFlight?: number;
}

/**
 * One connection to one export of an NBD server.
 * @example
 * const client = await NbdClient.connect('nbd+unix:///sda?socket=/tmp/s', { metaContexts: ['base:allocation'] });
 * const bytes = await client.read(0, 4096);
 * await client.close();
 */
export class NbdClient {
  private readonly pending = new Map<bigint, PendingRequest>();
  private readonly slots: Slots;
  private nextCookie = 1n;
  private failure: CofferError | undefined;
  private closing: Promise<void> | undefined;
  private readonly receiving: Promise<void>;

  private constructor(
    private readonly socket: Socket,
    private readonly reader: SocketReader,
    /** The export as negotiated: name, size, flags, block sizes, meta contexts. */
    readonly info: NegotiatedExport,
    private readonly where: string,
    private readonly requestTimeoutMs: number,
    maxInFlight: number,
  ) {
    this.slots = new Slots(maxInFlight);
    this.receiving = this.receive().catch((error: unknown) => this.fail(asCofferError(error)));
  }

  /** Connects, negotiates and enters transmission. Throws `E_CONNECTION_FAILED`, `E_TIMEOUT`, `E_PROTOCOL`, `E_NBD_ERROR`, `E_USAGE` (bad URI). */
  static async connect(target: NbdAddress | string, options: NbdClientOptions = {}): Promise<NbdClient> {
    const address = typeof target === 'string' ? parseNbdUri(target) : target;
    const exportName = options.exportName ?? address.exportName ?? '';
    const where = describeAddress({ ...address, exportName });
    const { socket, reader } = await openConnection(address, options);
    const info = await withDeadline(socket, reader, options.handshakeTimeoutMs ?? NBD_DEFAULTS.handshakeTimeoutMs, where, () =>
      negotiateExport(socket, reader, { exportName, structuredReplies: options.structuredReplies ?? true, metaContexts: options.metaContexts ?? [] }),
    );
    return new NbdClient(socket, reader, info, where, options.requestTimeoutMs ?? NBD_DEFAULTS.requestTimeoutMs, options.maxInFlight ?? NBD_DEFAULTS.maxInFlight);
  }

  /** The exports a server lists (`NBD_OPT_LIST`); the connection ends after. */
  static async listExports(target: NbdAddress | string, options: Pick<NbdClientOptions, 'connectTimeoutMs' | 'handshakeTimeoutMs'> = {}): Promise<ExportListing[]> {
    const address = typeof target === 'string' ? parseNbdUri(target) : target;
    const { socket, reader } = await openConnection(address, options);
    try {
      return await withDeadline(socket, reader, options.handshakeTimeoutMs ?? NBD_DEFAULTS.handshakeTimeoutMs, describeAddress(address), () => listExports(socket, reader));
    } finally {
      socket.end(() => socket.destroy());
    }
  }

  get size(): number {
    return this.info.size;
  }

  get readOnly(): boolean {
    return (this.info.flags & TransmissionFlag.READ_ONLY) !== 0;
  }

  /** Why the connection ended, once it has. */
  get error(): CofferError | undefined {
    return this.failure;
  }

  /** Reads `length` bytes (at most the server's maximum payload) at `offset`, into `into` when given. */
  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    this.checkRange(offset, length);
    if (length > this.info.blockSizes.maximumPayload) throw new RangeError(`a read of ${length} bytes exceeds the server's maximum payload ${this.info.blockSizes.maximumPayload}`);
    const target = into === undefined ? new Uint8Array(length) : into.subarray(0, length);
    if (target.length !== length) throw new RangeError(`a buffer of ${target.length} bytes for a read of ${length}`);
    await this.request(Command.READ, 0, offset, length, { target });
    return target;
  }

  /**
   * Block status of `[offset, offset + length)` for every selected context: context name →
   * descriptors from `offset` on (they may end before or after `offset + length`).
   */
  async blockStatus(offset: number, length: number, options: { onlyOne?: boolean } = {}): Promise<Map<string, BlockDescriptor[]>> {
    this.checkRange(offset, length);
    if (this.info.metaContexts.size === 0) throw new CofferError('E_NBD_ERROR', `the ${this.where} selected no metadata context: no block status`);
    const flags = options.onlyOne === true ? CommandFlag.REQ_ONE : 0;
    const byId = await this.request(Command.BLOCK_STATUS, flags, offset, length, {});
    const out = new Map<string, BlockDescriptor[]>();
    for (const [name, id] of this.info.metaContexts) out.set(name, byId.get(id) ?? []);
    return out;
  }

  /** Writes `data` at `offset` (`fua`: durable before the reply). */
  async write(offset: number, data: Uint8Array, options: { fua?: boolean } = {}): Promise<void> {
    this.checkRange(offset, data.length);
    this.needFlag(TransmissionFlag.READ_ONLY, false, 'writes');
    await this.request(Command.WRITE, this.fua(options.fua), offset, data.length, { payload: data });
  }

  /** Makes every completed write durable. */
  async flush(): Promise<void> {
    this.needFlag(TransmissionFlag.SEND_FLUSH, true, 'flush');
    await this.request(Command.FLUSH, 0, 0, 0, {});
  }

  /** Tells the server a range is no longer needed (its contents become undefined). */
  async trim(offset: number, length: number): Promise<void> {
    this.checkRange(offset, length);
    this.needFlag(TransmissionFlag.SEND_TRIM, true, 'trim');
    await this.request(Command.TRIM, 0, offset, length, {});
  }

  /** Makes a range read as zeros (`noHole`: keep it allocated). */
  async writeZeroes(offset: number, length: number, options: { noHole?: boolean; fua?: boolean } = {}): Promise<void> {
    this.checkRange(offset, length);
    this.needFlag(TransmissionFlag.SEND_WRITE_ZEROES, true, 'write zeroes');
    await this.request(Command.WRITE_ZEROES, (options.noHole === true ? CommandFlag.NO_HOLE : 0) | this.fua(options.fua), offset, length, {});
  }

  /**
   * Waits for the requests in flight, sends `NBD_CMD_DISC` and closes the connection.
   * Idempotent; never throws (a connection that already failed just closes).
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    await Promise.allSettled([...this.pending.values()].map((p) => p.settled));
    if (this.failure === undefined) {
      // NBD_CMD_DISC, flushed before the socket goes (the server closes its side on it).
      this.socket.write(encodeRequest({ flags: 0, type: Command.DISC, cookie: 0n, offset: 0, length: 0 }));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.socket.end(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.fail(new CofferError('E_CONNECTION_FAILED', `the connection to the ${this.where} is closed`));
    await this.receiving;
  }

  private async request(type: number, flags: number, offset: number, length: number, extra: { target?: Uint8Array; payload?: Uint8Array }): Promise<Map<number, BlockDescriptor[]>> {
    if (this.closing !== undefined && this.failure === undefined) throw new CofferError('E_CONNECTION_FAILED', `the connection to the ${this.where} is closing`);
    if (this.failure !== undefined) throw this.failure;
    await this.slots.acquire();
    try {
      if (this.failure !== undefined) throw this.failure;
      const cookie = this.nextCookie++;
      const request = new PendingRequest({
        type, flags, offset, length, target: extra.target, structured: this.info.structuredReplies, contexts: new Set(this.info.metaContexts.values()),
      });
      this.pending.set(cookie, request);
      const timer = setTimeout(() => {
        this.fail(new CofferError('E_TIMEOUT', `the ${this.where} did not answer ${commandName(type)} of ${length} bytes at ${offset} within ${this.requestTimeoutMs} ms`, { subject: { offset } }));
      }, this.requestTimeoutMs);
      try {
        this.socket.write(encodeRequest({ flags, type, cookie, offset, length }));
        if (extra.payload !== undefined) this.socket.write(extra.payload);
        return await request.result;
      } finally {
        clearTimeout(timer);
        this.pending.delete(cookie);
      }
    } finally {
      this.slots.release();
    }
  }

  /** Reads replies until the connection ends; throws on the first protocol violation. */
  private async receive(): Promise<void> {
    for (;;) {
      const magic = (await this.reader.read(REPLY_MAGIC_BYTES)).readUInt32BE(0);
      if (magic === NBD_SIMPLE_REPLY_MAGIC) {
        const reply = decodeSimpleReplyRest(await this.reader.read(SIMPLE_REPLY_BYTES - REPLY_MAGIC_BYTES));
        await this.requestFor(reply.cookie).onSimpleReply(reply.error, this.reader);
      } else if (magic === NBD_STRUCTURED_REPLY_MAGIC) {
        if (!this.info.structuredReplies) throw protocolError('a structured reply although none were negotiated');
        const chunk = decodeChunkHeaderRest(await this.reader.read(CHUNK_HEADER_BYTES - REPLY_MAGIC_BYTES));
        const request = this.requestFor(chunk.cookie);
        await request.onChunk(chunk, this.reader);
        if ((chunk.flags & ReplyFlag.DONE) !== 0) request.onDone();
      } else {
        throw protocolError(`a reply with magic 0x${magic.toString(16)}`);
      }
    }
  }

  private requestFor(cookie: bigint): PendingRequest {
    const request = this.pending.get(cookie);
    if (request === undefined || request.finished) throw protocolError(`a reply for cookie ${cookie}, which no request in flight has`);
    return request;
  }

  private fail(error: CofferError): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.reader.fail(this.failure);
    for (const request of this.pending.values()) request.fail(this.failure);
    this.slots.rejectWaiters(this.failure);
  }

  private checkRange(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.info.size || length > 0xffffffff) {
      throw new RangeError(`a request of ${length} bytes at ${offset} is outside an export of ${this.info.size} bytes`);
    }
  }

  private needFlag(flag: number, set: boolean, what: string): void {
    if (((this.info.flags & flag) !== 0) !== set) throw new CofferError('E_NBD_ERROR', `the ${this.where} does not allow ${what}`);
  }

  private fua(wanted: boolean | undefined): number {
    return wanted === true && (this.info.flags & TransmissionFlag.SEND_FUA) !== 0 ? CommandFlag.FUA : 0;
  }
}

async function openConnection(address: NbdAddress, options: Pick<NbdClientOptions, 'connectTimeoutMs'>): Promise<{ socket: Socket; reader: SocketReader }> {
  const reading = reusedReadBuffer();
  const socket = await openSocket(address, options.connectTimeoutMs ?? NBD_DEFAULTS.connectTimeoutMs, reading.onread);
  const reader = new SocketReader(socket, `the ${describeAddress(address)}`);
  reading.bind(reader);
  return { socket, reader };
}

/** Runs the handshake step `work`, failing the connection with `E_TIMEOUT` after `ms`. */
async function withDeadline<T>(socket: Socket, reader: SocketReader, ms: number, where: string, work: () => Promise<T>): Promise<T> {
  const timer = setTimeout(() => reader.fail(new CofferError('E_TIMEOUT', `the ${where} did not complete the handshake within ${ms} ms`)), ms);
  try {
    return await work();
  } catch (error) {
    reader.fail(asCofferError(error));
    // A timeout or a lost connection shows as the failed read: report the reason, not the symptom.
    throw error instanceof CofferError ? reader.error ?? error : error;
  } finally {
    clearTimeout(timer);
    if (reader.error !== undefined) socket.destroy();
  }
}

function asCofferError(error: unknown): CofferError {
  return error instanceof CofferError ? error : new CofferError('E_CONNECTION_FAILED', `NBD connection failed: ${String(error)}`, { cause: error });
}
