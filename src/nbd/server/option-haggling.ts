/**
 * The server's side of the fixed newstyle handshake (see ../protocol/handshake.ts for the
 * bytes). The server greets with FIXED_NEWSTYLE | NO_ZEROES (never oldstyle), then answers
 * options until the client picks an export (GO or EXPORT_NAME) or leaves (ABORT).
 *
 * Hostile clients: an unknown client flag, a bad option magic, an option longer than
 * `maxOptionLength`, or more than `maxOptions` options end the connection (E_PROTOCOL); a
 * malformed option body is answered with NBD_REP_ERR_INVALID and the haggling goes on, as
 * the spec asks. TLS is not offered (NBD_OPT_STARTTLS → ERR_UNSUP).
 */
import type { Socket } from 'node:net';
import {
  BASE_ALLOCATION,
  ClientFlag,
  HandshakeFlag,
  Info,
  Option,
  OptionReply,
} from '../protocol/constants.js';
import { protocolError } from '../protocol/cursor.js';
import {
  CLIENT_FLAGS_BYTES,
  decodeClientFlags,
  decodeInfoRequest,
  decodeMetaContextRequest,
  decodeOptionHeader,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoReply,
  encodeMetaContextReply,
  encodeOptionReply,
  encodeServerReply,
  OPTION_HEADER_BYTES,
  type MetaContext,
} from '../protocol/handshake.js';
import type { SocketReader } from '../socket-reader.js';
import { transmissionFlags, type NbdExport } from './nbd-export.js';

/** The id the server gives `base:allocation` (its only context). */
export const BASE_ALLOCATION_ID = 1;
/** Block sizes the server advertises: any alignment, 4 KiB preferred, the max payload given. */
const MINIMUM_BLOCK = 1;
const PREFERRED_BLOCK = 4096;

export interface HagglingLimits {
  maxOptionLength: number;
  maxOptions: number;
  maxQueries: number;
  maxPayload: number;
}

/** The outcome of a successful handshake. */
export interface Session {
  name: string;
  exp: NbdExport;
  structured: boolean;
  /** Selected contexts for this export (only `base:allocation` exists here). */
  contexts: MetaContext[];
}

/** Runs the handshake; resolves with the session, or undefined when the client left politely. */
export async function haggle(socket: Socket, reader: SocketReader, exports: ReadonlyMap<string, NbdExport>, limits: HagglingLimits): Promise<Session | undefined> {
  socket.write(encodeGreeting(HandshakeFlag.FIXED_NEWSTYLE | HandshakeFlag.NO_ZEROES));
  const clientFlags = decodeClientFlags(await reader.read(CLIENT_FLAGS_BYTES));
  if ((clientFlags & ~(ClientFlag.FIXED_NEWSTYLE | ClientFlag.NO_ZEROES)) !== 0) throw protocolError(`unknown client flags 0x${clientFlags.toString(16)}`);
  const noZeroes = (clientFlags & ClientFlag.NO_ZEROES) !== 0;
  let structured = false;
  let selected: { exportName: string; contexts: MetaContext[] } | undefined;
  const reply = (option: number, type: number, data?: Uint8Array): void => void socket.write(encodeOptionReply(option, type, data));
  const fail = (option: number, type: number, message: string): void => reply(option, type, Buffer.from(message, 'utf8'));

  for (let count = 0; count < limits.maxOptions; count++) {
    const { option, length } = decodeOptionHeader(await reader.read(OPTION_HEADER_BYTES));
    if (length > limits.maxOptionLength) throw protocolError(`an option of ${length} bytes (at most ${limits.maxOptionLength})`);
    const data = await reader.read(length);
    switch (option) {
      case Option.EXPORT_NAME: {
        // Cannot report errors: an unknown export ends the connection, as the spec says.
        const name = data.toString('utf8');
        const exp = exports.get(name);
        if (exp === undefined) throw protocolError(`NBD_OPT_EXPORT_NAME for unknown export ${JSON.stringify(name)}`);
        socket.write(encodeExportNameReply(exp.device.size, transmissionFlags(exp), noZeroes));
        return { name, exp, structured, contexts: selected?.exportName === name ? selected.contexts : [] };
      }
      case Option.ABORT:
        reply(option, OptionReply.ACK);
        return undefined;
      case Option.LIST:
        if (length !== 0) {
          fail(option, OptionReply.ERR_INVALID, 'NBD_OPT_LIST takes no data');
          break;
        }
        for (const [name, exp] of exports) reply(option, OptionReply.SERVER, encodeServerReply({ name, description: exp.description ?? '' }));
        reply(option, OptionReply.ACK);
        break;
      case Option.STRUCTURED_REPLY:
        if (length !== 0 || structured) {
          fail(option, OptionReply.ERR_INVALID, length !== 0 ? 'NBD_OPT_STRUCTURED_REPLY takes no data' : 'structured replies are already negotiated');
          break;
        }
        structured = true;
        reply(option, OptionReply.ACK);
        break;
      case Option.INFO:
      case Option.GO: {
        let request;
        try {
          request = decodeInfoRequest(data);
        } catch (error) {
          fail(option, OptionReply.ERR_INVALID, (error as Error).message);
          break;
        }
        const exp = exports.get(request.name);
        if (exp === undefined) {
          fail(option, OptionReply.ERR_UNKNOWN, `no export named ${JSON.stringify(request.name)}`);
          break;
        }
        reply(option, OptionReply.INFO, encodeInfoReply({ type: Info.EXPORT, size: exp.device.size, flags: transmissionFlags(exp) }));
        if (request.infos.includes(Info.NAME)) reply(option, OptionReply.INFO, encodeInfoReply({ type: Info.NAME, name: request.name }));
        if (request.infos.includes(Info.DESCRIPTION) && exp.description !== undefined) {
          reply(option, OptionReply.INFO, encodeInfoReply({ type: Info.DESCRIPTION, description: exp.description }));
        }
        const sizes = { minimum: MINIMUM_BLOCK, preferred: PREFERRED_BLOCK, maximumPayload: limits.maxPayload };
        reply(option, OptionReply.INFO, encodeInfoReply({ type: Info.BLOCK_SIZE, sizes }));
        reply(option, OptionReply.ACK);
        if (option === Option.GO) return { name: request.name, exp, structured, contexts: selected?.exportName === request.name ? selected.contexts : [] };
        break;
      }
      case Option.LIST_META_CONTEXT:
      case Option.SET_META_CONTEXT: {
        const setting = option === Option.SET_META_CONTEXT;
        if (setting) selected = undefined; // replaced even when this one fails
        if (!structured) {
          fail(option, OptionReply.ERR_INVALID, 'negotiate structured replies first');
          break;
        }
        let request;
        try {
          request = decodeMetaContextRequest(data, limits.maxQueries);
        } catch (error) {
          fail(option, OptionReply.ERR_INVALID, (error as Error).message);
          break;
        }
        if (!exports.has(request.exportName)) {
          fail(option, OptionReply.ERR_UNKNOWN, `no export named ${JSON.stringify(request.exportName)}`);
          break;
        }
        // Only base:allocation exists. Listing: no query, `base:` or `base:allocation` finds it;
        // setting: only `base:allocation` selects it. Other namespaces are ignored, as required.
        const matches = setting
          ? request.queries.includes(BASE_ALLOCATION)
          : request.queries.length === 0 || request.queries.some((q) => q === 'base:' || q === BASE_ALLOCATION);
        const contexts = matches ? [{ id: setting ? BASE_ALLOCATION_ID : 0, name: BASE_ALLOCATION }] : [];
        for (const context of contexts) reply(option, OptionReply.META_CONTEXT, encodeMetaContextReply(context));
        reply(option, OptionReply.ACK);
        if (setting) selected = { exportName: request.exportName, contexts };
        break;
      }
      default:
        // STARTTLS included: this server has no TLS.
        fail(option, OptionReply.ERR_UNSUP, `option ${option} is not supported`);
    }
  }
  throw protocolError(`more than ${limits.maxOptions} options without choosing an export`);
}
