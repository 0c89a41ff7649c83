/**
 * The server's transmission phase for one client: read requests, run up to `maxInFlight` of
 * them at once, reply to each (see ../protocol/transmission.ts for the bytes).
 *
 * - READ: with structured replies, zero extents go out as OFFSET_HOLE and data as OFFSET_DATA
 *   chunks of at most `readChunk` bytes, then NONE|DONE; without, one simple reply.
 * - BLOCK_STATUS (`base:allocation`): zero → HOLE|ZERO, data → 0, from the device's extents.
 * - FLUSH, and for writable exports WRITE, TRIM, WRITE_ZEROES (FUA: a flush after).
 * - DISC: the requests in flight finish, then the connection closes.
 * Bad requests get NBD errors, never a crash: out of range → EINVAL (ENOSPC for writes),
 * writes to a read-only export → EPERM, unknown commands or flags → EINVAL, a device error →
 * EIO (ENOSPC for E_NO_SPACE). Only what cannot be answered ends the connection: a bad
 * request magic (the stream cannot be resynchronised) and a write payload over `maxPayload`.
 */
import type { Extent } from '../../blockdev/index.js';
import { isCofferError } from '../../errors/index.js';
import { AllocationFlag, ChunkType, Command, CommandFlag, NbdErrno, ReplyFlag, MAX_STRING_BYTES } from '../protocol/constants.js';
import { protocolError } from '../protocol/cursor.js';
import { decodeRequest, encodeBlockStatus, encodeErrorChunk, encodeHole, encodeOffset, REQUEST_BYTES, type BlockDescriptor, type RequestHeader } from '../protocol/transmission.js';
import { Slots } from '../slots.js';
import type { SocketReader } from '../socket-reader.js';
import type { WritableBlockDevice } from '../../blockdev/index.js';
import { BASE_ALLOCATION_ID, type Session } from './option-haggling.js';
import { offersPinnedReads, type PinnedRead } from './pinned-read.js';
import type { ReplyChunk, ReplyWriter } from './reply-writer.js';

export interface TransmissionLimits {
  maxInFlight: number;
  maxPayload: number;
  readChunk: number;
  maxDescriptors: number;
}

/** Flags each command accepts (FUA is valid on every command once offered). */
const ALLOWED_FLAGS: Record<number, number> = {
  [Command.READ]: CommandFlag.FUA,
  [Command.WRITE]: CommandFlag.FUA,
  [Command.FLUSH]: CommandFlag.FUA,
  [Command.TRIM]: CommandFlag.FUA,
  [Command.CACHE]: CommandFlag.FUA,
  [Command.WRITE_ZEROES]: CommandFlag.FUA | CommandFlag.NO_HOLE,
  [Command.BLOCK_STATUS]: CommandFlag.FUA | CommandFlag.REQ_ONE,
};

/** An NBD error for one request, with a message for the client's user. */
class RequestError {
  constructor(
    readonly errno: number,
    readonly message: string,
  ) {}
}

/**
 * Serves requests until the client disconnects (resolves) or breaks the protocol (throws).
 * `onError` hears of device failures answered with EIO.
 */
export async function serveRequests(session: Session, reader: SocketReader, writer: ReplyWriter, limits: TransmissionLimits, onError: (error: unknown) => void): Promise<void> {
  const slots = new Slots(limits.maxInFlight);
  const running = new Set<Promise<void>>();
  try {
    for (;;) {
      await slots.acquire();
      let request: RequestHeader;
      let payload: Buffer | undefined;
      try {
        request = decodeRequest(await reader.read(REQUEST_BYTES));
        if (request.type === Command.DISC) return;
        if (request.type === Command.WRITE) {
          if (request.length > limits.maxPayload) throw protocolError(`a write of ${request.length} bytes (at most ${limits.maxPayload})`);
          payload = await reader.read(request.length);
        }
      } catch (error) {
        slots.release();
        throw error;
      }
      const task = answer(session, request, payload, writer, limits, onError).finally(() => {
        slots.release();
        running.delete(task);
      });
      running.add(task);
    }
  } finally {
    await Promise.allSettled([...running]);
  }
}

async function answer(
  session: Session,
  request: RequestHeader,
  payload: Buffer | undefined,
  writer: ReplyWriter,
  limits: TransmissionLimits,
  onError: (error: unknown) => void,
): Promise<void> {
  try {
    check(session, request, limits);
    await run(session, request, payload, writer, limits);
  } catch (error) {
    const failure = error instanceof RequestError ? error : deviceError(error, request, onError);
    if (session.structured) {
      const chunk = encodeErrorChunk({ error: failure.errno, message: failure.message });
      await writer.chunk(request.cookie, ChunkType.ERROR, ReplyFlag.DONE, [chunk]);
    } else {
      await writer.simple(request.cookie, failure.errno);
    }
  }
}

function check(session: Session, request: RequestHeader, limits: TransmissionLimits): void {
  const { type, flags, offset, length } = request;
  const size = session.exp.device.size;
  const allowed = ALLOWED_FLAGS[type];
  if (allowed === undefined) throw new RequestError(NbdErrno.EINVAL, `unknown command ${type}`);
  if ((flags & ~allowed) !== 0) throw new RequestError(NbdErrno.EINVAL, `flags 0x${flags.toString(16)} are not valid for this command`);
  if (type === Command.FLUSH) {
    if (offset !== 0 || length !== 0) throw new RequestError(NbdErrno.EINVAL, 'a flush has offset and length 0');
    return;
  }
  const writing = type === Command.WRITE || type === Command.TRIM || type === Command.WRITE_ZEROES;
  if (writing && session.exp.writable !== true) throw new RequestError(NbdErrno.EPERM, 'the export is read-only');
  if (offset + length > size) {
    const errno = type === Command.WRITE || type === Command.WRITE_ZEROES ? NbdErrno.ENOSPC : NbdErrno.EINVAL;
    throw new RequestError(errno, `${length} bytes at ${offset} are beyond the end of the export (${size} bytes)`);
  }
  if (type === Command.READ && length > limits.maxPayload) throw new RequestError(NbdErrno.EINVAL, `a read of ${length} bytes (at most ${limits.maxPayload})`);
  if (type === Command.BLOCK_STATUS) {
    if (!session.contexts.some((c) => c.id === BASE_ALLOCATION_ID)) throw new RequestError(NbdErrno.EINVAL, 'no metadata context was selected');
    if (length === 0) throw new RequestError(NbdErrno.EINVAL, 'block status of 0 bytes');
  }
}

async function run(session: Session, request: RequestHeader, payload: Buffer | undefined, writer: ReplyWriter, limits: TransmissionLimits): Promise<void> {
  const { type, flags, cookie, offset, length } = request;
  const device = session.exp.device;
  const writable = session.exp.writable === true ? (session.exp.device as WritableBlockDevice) : undefined;
  const fua = (flags & CommandFlag.FUA) !== 0;
  switch (type) {
    case Command.READ:
      return session.structured ? readStructured(session, request, writer, limits) : writer.simple(cookie, 0, await device.read(offset, length));
    case Command.BLOCK_STATUS:
      return blockStatus(session, request, writer, limits);
    case Command.FLUSH:
      await writable?.flush();
      return writer.simple(cookie, 0);
    case Command.CACHE:
      return writer.simple(cookie, 0);
    case Command.WRITE:
      await writable?.write(offset, payload as Buffer);
      break;
    case Command.TRIM:
      await writable?.trim(offset, length);
      break;
    case Command.WRITE_ZEROES:
      await writable?.writeZeroes(offset, length, { keepAllocated: (flags & CommandFlag.NO_HOLE) !== 0 });
      break;
  }
  if (fua) await writable?.flush();
  return writer.simple(cookie, 0);
}

/**
 * OFFSET_HOLE for zero extents, OFFSET_DATA in pieces of `readChunk`, then NONE|DONE; from a
 * device that offers pinned reads (pinned-read.ts), one OFFSET_HOLE per run of zeros and one
 * OFFSET_DATA per run of data straight from the device's memory, the last flagged DONE.
 */
async function readStructured(session: Session, request: RequestHeader, writer: ReplyWriter, limits: TransmissionLimits): Promise<void> {
  const { cookie, offset, length } = request;
  const device = session.exp.device;
  if (length > 0 && offersPinnedReads(device)) {
    const pinned = await device.readPinned(offset, length);
    if (pinned !== undefined) return sendPinned(cookie, pinned, writer);
  }
  if (length > 0) {
    for await (const extent of device.extents(offset, length)) {
      if (writer.gone) return;
      if (extent.kind === 'zero') {
        await writer.chunk(cookie, ChunkType.OFFSET_HOLE, 0, [encodeHole({ offset: extent.offset, length: extent.length })]);
        continue;
      }
      for (let at = extent.offset; at < extent.offset + extent.length; at += limits.readChunk) {
        const n = Math.min(limits.readChunk, extent.offset + extent.length - at);
        const data = await device.read(at, n);
        await writer.chunk(cookie, ChunkType.OFFSET_DATA, 0, [encodeOffset(at), data]);
      }
    }
  }
  await writer.chunk(cookie, ChunkType.NONE, ReplyFlag.DONE, []);
}

/** The runs of a pinned read as one reply, released once the socket wrote it. */
function sendPinned(cookie: bigint, pinned: PinnedRead, writer: ReplyWriter): Promise<void> {
  const chunks: ReplyChunk[] = pinned.runs.map((run, i) => {
    const flags = i === pinned.runs.length - 1 ? ReplyFlag.DONE : 0;
    if (run.data === undefined) return { type: ChunkType.OFFSET_HOLE, flags, payload: [encodeHole({ offset: run.offset, length: run.length })] };
    return { type: ChunkType.OFFSET_DATA, flags, payload: [encodeOffset(run.offset), ...run.data] };
  });
  return writer.chunks(cookie, chunks, pinned.release);
}

/** One BLOCK_STATUS chunk for `base:allocation`, adjacent equal states merged, at most `maxDescriptors`. */
async function blockStatus(session: Session, request: RequestHeader, writer: ReplyWriter, limits: TransmissionLimits): Promise<void> {
  const { cookie, offset, length, flags } = request;
  const onlyOne = (flags & CommandFlag.REQ_ONE) !== 0;
  const descriptors: BlockDescriptor[] = [];
  for await (const extent of session.exp.device.extents(offset, length)) {
    const state = stateOf(extent);
    const last = descriptors[descriptors.length - 1];
    if (last !== undefined && last.flags === state) last.length += extent.length;
    else if (descriptors.length >= (onlyOne ? 1 : limits.maxDescriptors)) break;
    else descriptors.push({ length: extent.length, flags: state });
  }
  await writer.chunk(cookie, ChunkType.BLOCK_STATUS, ReplyFlag.DONE, [encodeBlockStatus({ contextId: BASE_ALLOCATION_ID, descriptors })]);
}

function stateOf(extent: Extent): number {
  return extent.kind === 'zero' ? AllocationFlag.HOLE | AllocationFlag.ZERO : 0;
}

function deviceError(error: unknown, request: RequestHeader, onError: (error: unknown) => void): RequestError {
  if (isCofferError(error, 'E_NO_SPACE')) return new RequestError(NbdErrno.ENOSPC, safeMessage(error.message));
  onError(error);
  const message = error instanceof Error ? error.message : String(error);
  return new RequestError(NbdErrno.EIO, safeMessage(`request at ${request.offset} failed: ${message}`));
}

/** An error message the protocol can carry: no NUL, at most 4096 bytes of UTF-8. */
function safeMessage(message: string): string {
  let text = message.replace(/\0/g, ' ');
  while (Buffer.byteLength(text, 'utf8') > MAX_STRING_BYTES) text = text.slice(0, Math.floor(text.length * 0.9));
  return text;
}
