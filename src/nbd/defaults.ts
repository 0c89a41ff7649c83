/**
 * Coffer's NBD defaults, in one place, each with why it was chosen. Every one can be
 * overridden through the options of the client or the server.
 */
import { DEFAULT_MAX_PAYLOAD } from './protocol/constants.js';

export const NBD_DEFAULTS = {
  /** Connecting over a local socket or a LAN takes milliseconds; 10 s covers a loaded host. */
  connectTimeoutMs: 10_000,
  /** The whole handshake is a few round trips; a peer silent for 10 s is stuck or hostile. */
  handshakeTimeoutMs: 10_000,
  /**
   * One request's reply. A 32 MiB read from a slow disk behind a busy QEMU can take seconds;
   * 60 s only catches a server that stopped answering.
   */
  requestTimeoutMs: 60_000,
  /**
   * Requests in flight per connection. qemu-nbd serves 16 at once (its MAX_NBD_REQUESTS);
   * more only queues on its side. The server applies the same bound per client, which also
   * bounds its memory per client: at most maxInFlight × serverMaxPayload for writes and for
   * reads with simple replies (structured reads go out in serverReadChunk pieces).
   */
  maxInFlight: 16,
  /** The client never reads more than this per request, whatever the server allows (2^25, the spec's interoperable limit). */
  maxReadRequest: DEFAULT_MAX_PAYLOAD,
  /** The server's advertised and enforced maximum payload (the spec's default). */
  serverMaxPayload: DEFAULT_MAX_PAYLOAD,
  /**
   * The server answers a large read in chunks of at most this size, so a client with many
   * reads in flight holds the server to maxInFlight × 1 MiB of buffers.
   */
  serverReadChunk: 1024 * 1024,
  /** The longest option a client may send: names are ≤ 4 KiB, a few meta context queries fit. */
  serverMaxOptionLength: 64 * 1024,
  /** Options per handshake before the server hangs up on a client that never chooses an export. */
  serverMaxOptions: 1024,
  /** Meta context queries per option. */
  serverMaxQueries: 64,
  /** Block status descriptors per reply (the spec asks for at most 2^20; fewer is allowed). */
  serverMaxDescriptors: 65_536,
  /** A client that does not read its replies for this long (socket buffer full) is dropped. */
  serverWriteStallMs: 60_000,
} as const;
