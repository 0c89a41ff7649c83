/**
 * A scripted NBD peer over a raw socket, for tests that send what no real client or server
 * would (hostile input): exact reads with a deadline, and the handshake steps spelled out.
 * Used by tests only; it speaks through the same encoders the product uses, which have their
 * own byte-level tests.
 */
import { createConnection, type Socket } from 'node:net';
import { CofferError } from '../../errors/index.js';
import { Option, OptionReply, NBD_SIMPLE_REPLY_MAGIC } from '../protocol/constants.js';
import { decodeGreeting, decodeOptionReplyHeader, encodeClientFlags, encodeInfoRequest, encodeMetaContextRequest, encodeOption, GREETING_BYTES, OPTION_REPLY_HEADER_BYTES } from '../protocol/handshake.js';
import { decodeChunkHeaderRest, decodeSimpleReplyRest } from '../protocol/transmission.js';
import { SocketReader } from '../socket-reader.js';

export type RawReply =
  | { kind: 'simple'; error: number; cookie: bigint }
  | { kind: 'chunk'; flags: number; type: number; cookie: bigint; payload: Buffer };

export class RawPeer {
  readonly closed: Promise<void>;

  constructor(
    readonly socket: Socket,
    readonly reader: SocketReader,
  ) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async connect(path: string): Promise<RawPeer> {
    const socket = createConnection({ path });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawPeer(socket, new SocketReader(socket, 'the peer'));
  }

  /** Exactly `n` bytes within `ms`. */
  async read(n: number, ms = 2000): Promise<Buffer> {
    const timer = setTimeout(() => this.reader.fail(new CofferError('E_TIMEOUT', `no ${n} bytes within ${ms} ms`)), ms);
    try {
      return await this.reader.read(n);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves true when the peer closes the connection within `ms`. */
  async closesWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const result = await Promise.race([this.closed.then(() => true), timeout]);
    clearTimeout(timer);
    return result;
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Client side: reads the greeting and answers with `flags` (default FIXED_NEWSTYLE | NO_ZEROES). */
  async greet(flags = 3): Promise<number> {
    const serverFlags = decodeGreeting(await this.read(GREETING_BYTES));
    this.write(encodeClientFlags(flags));
    return serverFlags;
  }

  async optionReply(): Promise<{ option: number; type: number; data: Buffer }> {
    const header = decodeOptionReplyHeader(await this.read(OPTION_REPLY_HEADER_BYTES));
    return { option: header.option, type: header.type, data: await this.read(header.length) };
  }

  /** Sends an option and collects replies up to the final one (ACK or an error). */
  async option(option: number, data?: Uint8Array): Promise<{ type: number; data: Buffer }[]> {
    this.write(encodeOption(option, data));
    const replies: { type: number; data: Buffer }[] = [];
    for (;;) {
      const reply = await this.optionReply();
      replies.push(reply);
      if (reply.type === OptionReply.ACK || reply.type >= 0x80000000) return replies;
    }
  }

  /** Client side: greeting to transmission on `name`. */
  async open(name: string, options: { structured?: boolean; allocation?: boolean } = {}): Promise<void> {
    await this.greet();
    if (options.structured === true) await this.option(Option.STRUCTURED_REPLY);
    if (options.allocation === true) await this.option(Option.SET_META_CONTEXT, encodeMetaContextRequest({ exportName: name, queries: ['base:allocation'] }));
    const replies = await this.option(Option.GO, encodeInfoRequest({ name, infos: [] }));
    if (replies[replies.length - 1]?.type !== OptionReply.ACK) throw new Error(`GO ${name} failed`);
  }

  /** Reads one reply (simple, or one structured chunk with its payload). */
  async reply(): Promise<RawReply> {
    const magic = (await this.read(4)).readUInt32BE(0);
    if (magic === NBD_SIMPLE_REPLY_MAGIC) return { kind: 'simple', ...decodeSimpleReplyRest(await this.read(12)) };
    const header = decodeChunkHeaderRest(await this.read(16));
    return { kind: 'chunk', flags: header.flags, type: header.type, cookie: header.cookie, payload: await this.read(header.length) };
  }
}
