/**
 * The client's side of the fixed newstyle handshake: greeting, client flags, then options one
 * at a time, each answered by one or more replies (see ../protocol/handshake.ts for the bytes).
 * Every reply is checked: its magic, that it answers the option sent, a length cap, the
 * payload's own layout, and the values (size, flags, block sizes) the spec constrains.
 */
import type { Socket } from 'node:net';
import { CofferError } from '../../errors/index.js';
import {
  ClientFlag,
  DEFAULT_MAX_PAYLOAD,
  HandshakeFlag,
  Info,
  isOptionReplyError,
  Option,
  OptionReply,
  optionName,
  optionReplyName,
  TransmissionFlag,
} from '../protocol/constants.js';
import { protocolError } from '../protocol/cursor.js';
import {
  decodeExportNameReply,
  decodeGreeting,
  decodeInfoReply,
  decodeMetaContextReply,
  decodeOptionReplyHeader,
  decodeServerReply,
  encodeClientFlags,
  encodeInfoRequest,
  encodeMetaContextRequest,
  encodeOption,
  EXPORT_NAME_REPLY_BYTES,
  EXPORT_NAME_REPLY_ZEROES,
  GREETING_BYTES,
  OPTION_REPLY_HEADER_BYTES,
  type BlockSizes,
  type ExportListing,
} from '../protocol/handshake.js';
import type { SocketReader } from '../socket-reader.js';

/** No option reply Coffer understands is longer (strings are ≤ 4 KiB). */
const MAX_OPTION_REPLY = 16 * 1024;
/** Replies to one option before the client gives up on a server that never ends them. */
const MAX_REPLIES_PER_OPTION = 100_000;

/** What the client wants from the handshake. */
export interface HandshakeRequest {
  exportName: string;
  /** Ask for structured replies (needed for holes in reads and for block status). */
  structuredReplies: boolean;
  /** Metadata contexts to select, e.g. `base:allocation`, `qemu:dirty-bitmap:NAME`. */
  metaContexts: string[];
}

/** The export as negotiated. */
export interface NegotiatedExport {
  name: string;
  size: number;
  /** Transmission flags (see {@link TransmissionFlag}). */
  flags: number;
  blockSizes: BlockSizes;
  /** Whether the server sent block size constraints (if not, the defaults apply). */
  blockSizesAdvertised: boolean;
  structuredReplies: boolean;
  /** Selected metadata contexts: name → the id block status replies carry. */
  metaContexts: Map<string, number>;
  description: string | undefined;
}

/** The defaults that apply when a server advertises no constraints (proto.md, "Size constraints"). */
const DEFAULT_BLOCK_SIZES: BlockSizes = { minimum: 1, preferred: 4096, maximumPayload: DEFAULT_MAX_PAYLOAD };

/** Greets, negotiates and enters transmission on the export asked for. */
export async function negotiateExport(socket: Socket, reader: SocketReader, request: HandshakeRequest): Promise<NegotiatedExport> {
  const { noZeroes } = await greet(socket, reader);
  const options = new OptionExchange(socket, reader);
  let structuredReplies = false;
  if (request.structuredReplies) {
    const reply = await options.ask(Option.STRUCTURED_REPLY);
    if (reply.type === OptionReply.ACK) structuredReplies = true;
    else if (reply.type !== OptionReply.ERR_UNSUP) throw options.refused(Option.STRUCTURED_REPLY, reply);
  }
  const metaContexts = new Map<string, number>();
  if (structuredReplies && request.metaContexts.length > 0) {
    const data = encodeMetaContextRequest({ exportName: request.exportName, queries: request.metaContexts });
    const replies = await options.askMany(Option.SET_META_CONTEXT, data, OptionReply.META_CONTEXT);
    if (replies.error === undefined) {
      for (const reply of replies.items) {
        const context = decodeMetaContextReply(reply);
        if (!request.metaContexts.includes(context.name)) throw protocolError(`the server selected meta context ${JSON.stringify(context.name)}, which was not asked for`);
        metaContexts.set(context.name, context.id);
      }
    } else if (replies.error.type !== OptionReply.ERR_UNSUP) {
      throw options.refused(Option.SET_META_CONTEXT, replies.error);
    }
  }
  const go = await options.go(request.exportName);
  if (go === 'unsupported') {
    // An old server without NBD_OPT_GO: the spec's fallback, which cannot report errors.
    socket.write(encodeOption(Option.EXPORT_NAME, Buffer.from(request.exportName, 'utf8')));
    const reply = decodeExportNameReply(await reader.read(EXPORT_NAME_REPLY_BYTES));
    if (!noZeroes) await reader.skip(EXPORT_NAME_REPLY_ZEROES);
    return validate({
      name: request.exportName, size: reply.size, flags: reply.flags, blockSizes: DEFAULT_BLOCK_SIZES, blockSizesAdvertised: false,
      structuredReplies, metaContexts, description: undefined,
    });
  }
  return validate({ ...go, structuredReplies, metaContexts });
}

/** Greets and lists the server's exports (`NBD_OPT_LIST`), then ends with `NBD_OPT_ABORT`. */
export async function listExports(socket: Socket, reader: SocketReader): Promise<ExportListing[]> {
  await greet(socket, reader);
  const options = new OptionExchange(socket, reader);
  const replies = await options.askMany(Option.LIST, undefined, OptionReply.SERVER);
  if (replies.error !== undefined) throw options.refused(Option.LIST, replies.error);
  const listings = replies.items.map((data) => decodeServerReply(data));
  socket.write(encodeOption(Option.ABORT));
  return listings;
}

async function greet(socket: Socket, reader: SocketReader): Promise<{ noZeroes: boolean }> {
  const flags = decodeGreeting(await reader.read(GREETING_BYTES));
  if ((flags & HandshakeFlag.FIXED_NEWSTYLE) === 0) throw protocolError('the server does not speak the fixed newstyle handshake');
  const noZeroes = (flags & HandshakeFlag.NO_ZEROES) !== 0;
  socket.write(encodeClientFlags(ClientFlag.FIXED_NEWSTYLE | (noZeroes ? ClientFlag.NO_ZEROES : 0)));
  return { noZeroes };
}

interface RawReply {
  type: number;
  data: Buffer;
}

/** Sends options and reads their replies, one option at a time as the spec requires. */
class OptionExchange {
  constructor(
    private readonly socket: Socket,
    private readonly reader: SocketReader,
  ) {}

  /** An option answered by exactly one reply. */
  async ask(option: number, data?: Uint8Array): Promise<RawReply> {
    this.socket.write(encodeOption(option, data));
    return this.readReply(option);
  }

  /** An option answered by replies of `itemType`, ended by ACK or an error. */
  async askMany(option: number, data: Uint8Array | undefined, itemType: number): Promise<{ items: Buffer[]; error?: RawReply }> {
    this.socket.write(encodeOption(option, data));
    const items: Buffer[] = [];
    for (;;) {
      const reply = await this.readReply(option);
      if (reply.type === OptionReply.ACK) return { items };
      if (isOptionReplyError(reply.type)) return { items, error: reply };
      if (reply.type !== itemType) throw protocolError(`${optionReplyName(reply.type)} in reply to ${optionName(option)}`);
      if (items.length >= MAX_REPLIES_PER_OPTION) throw protocolError(`more than ${MAX_REPLIES_PER_OPTION} replies to ${optionName(option)}`);
      items.push(reply.data);
    }
  }

  /** `NBD_OPT_GO` asking for the name, description and block sizes. */
  async go(exportName: string): Promise<Omit<NegotiatedExport, 'structuredReplies' | 'metaContexts'> | 'unsupported'> {
    const data = encodeInfoRequest({ name: exportName, infos: [Info.NAME, Info.DESCRIPTION, Info.BLOCK_SIZE] });
    const replies = await this.askMany(Option.GO, data, OptionReply.INFO);
    if (replies.error !== undefined) {
      if (replies.error.type === OptionReply.ERR_UNSUP) return 'unsupported';
      if (replies.error.type === OptionReply.ERR_UNKNOWN) {
        throw new CofferError('E_NBD_ERROR', `the NBD server has no export ${JSON.stringify(exportName)}${messageOf(replies.error)}`);
      }
      throw this.refused(Option.GO, replies.error);
    }
    let size: number | undefined;
    let flags = 0;
    let blockSizes: BlockSizes | undefined;
    let description: string | undefined;
    for (const item of replies.items) {
      const info = decodeInfoReply(item);
      if (info.type === Info.EXPORT) ({ size, flags } = info);
      else if (info.type === Info.BLOCK_SIZE) blockSizes = info.sizes;
      else if (info.type === Info.DESCRIPTION) description = info.description;
    }
    if (size === undefined) throw protocolError('NBD_OPT_GO succeeded without NBD_INFO_EXPORT');
    return {
      name: exportName, size, flags, blockSizes: blockSizes ?? DEFAULT_BLOCK_SIZES, blockSizesAdvertised: blockSizes !== undefined, description,
    };
  }

  refused(option: number, reply: RawReply): CofferError {
    if (!isOptionReplyError(reply.type)) return protocolError(`${optionReplyName(reply.type)} in reply to ${optionName(option)}`);
    return new CofferError('E_NBD_ERROR', `the NBD server refused ${optionName(option)}: ${optionReplyName(reply.type)}${messageOf(reply)}`);
  }

  private async readReply(option: number): Promise<RawReply> {
    const header = decodeOptionReplyHeader(await this.reader.read(OPTION_REPLY_HEADER_BYTES));
    if (header.option !== option) throw protocolError(`a reply to ${optionName(header.option)} while ${optionName(option)} was asked`);
    if (header.length > MAX_OPTION_REPLY) throw protocolError(`an option reply of ${header.length} bytes (at most ${MAX_OPTION_REPLY})`);
    return { type: header.type, data: await this.reader.read(header.length) };
  }
}

function messageOf(reply: RawReply): string {
  const text = reply.data.toString('utf8').replace(/[\0-\x1f]/g, ' ').trim();
  return text === '' ? '' : ` (${text})`;
}

function validate(negotiated: NegotiatedExport): NegotiatedExport {
  const { size, flags, blockSizes: b } = negotiated;
  if ((flags & TransmissionFlag.HAS_FLAGS) === 0) throw protocolError('transmission flags without NBD_FLAG_HAS_FLAGS');
  if (size >= Number.MAX_SAFE_INTEGER) throw protocolError(`an export of ${size} bytes or more`);
  const powerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;
  if (!powerOfTwo(b.minimum) || b.minimum > 65536) throw protocolError(`minimum block size ${b.minimum} (a power of 2 up to 65536)`);
  if (!powerOfTwo(b.preferred) || b.preferred < Math.max(b.minimum, 512)) throw protocolError(`preferred block size ${b.preferred}`);
  if (b.maximumPayload < b.preferred) throw protocolError(`maximum payload ${b.maximumPayload} below the preferred block size ${b.preferred}`);
  const wanted = negotiated.metaContexts;
  if (wanted.size > 0 && !negotiated.structuredReplies) throw protocolError('meta contexts without structured replies');
  return negotiated;
}

