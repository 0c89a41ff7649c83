/**
 * An NBD server: serves block devices under export names on a unix socket or TCP, to any
 * number of clients at once (each with its own handshake and requests in flight).
 *
 * Each connection runs: handshake (./option-haggling.ts, within `handshakeTimeoutMs`), then
 * transmission (./transmission.ts). A connection's failure (a hostile or vanished client)
 * ends that connection only; it is reported through `onClientError` and never escapes as an
 * exception. `close()` stops listening, ends every connection and waits for their handlers.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { CofferError, isCofferError } from '../../errors/index.js';
import { NBD_DEFAULTS } from '../defaults.js';
import { MAX_STRING_BYTES } from '../protocol/constants.js';
import { SocketReader } from '../socket-reader.js';
import type { NbdExport } from './nbd-export.js';
import { haggle } from './option-haggling.js';
import { ReplyWriter } from './reply-writer.js';
import { serveRequests } from './transmission.js';

/** Where to listen: a unix socket path, or a TCP host and port (0: any free port). */
export type NbdListenAddress = { socket: string } | { host: string; port: number };

/** Options of {@link NbdServer.listen}. */
export interface NbdServerOptions {
  /** Export name → what it serves. */
  exports: ReadonlyMap<string, NbdExport> | Record<string, NbdExport>;
  handshakeTimeoutMs?: number;
  /** Requests in flight per client. */
  maxInFlight?: number;
  /** The largest READ or WRITE payload accepted (advertised in NBD_INFO_BLOCK_SIZE). */
  maxPayload?: number;
  /** Drop a client that reads none of its replies for this long. */
  writeStallMs?: number;
  /** Hears every connection that ended in error, and device errors answered with EIO. */
  onClientError?: (error: unknown) => void;
}

/**
 * @example
 * const server = await NbdServer.listen({ socket: '/tmp/coffer.sock' }, { exports: { sda: { device } } });
 * // nbdinfo 'nbd+unix:///sda?socket=/tmp/coffer.sock'
 * await server.close();
 */
export class NbdServer {
  private readonly connections = new Map<Socket, { reader?: SocketReader; done: Promise<void> }>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    /** The address listened on (for TCP, with the port actually bound). */
    readonly address: NbdListenAddress,
    private readonly exports: ReadonlyMap<string, NbdExport>,
    private readonly options: NbdServerOptions,
  ) {
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Starts listening. Throws `E_CONNECTION_FAILED` when the address cannot be listened on (in use, no permission). */
  static async listen(address: NbdListenAddress, options: NbdServerOptions): Promise<NbdServer> {
    const exports = options.exports instanceof Map ? options.exports : new Map(Object.entries(options.exports));
    for (const [name, exp] of exports) {
      for (const text of [name, exp.description ?? '']) {
        if (Buffer.byteLength(text, 'utf8') > MAX_STRING_BYTES || text.includes('\0')) throw new RangeError(`${JSON.stringify(text.slice(0, 40))} is not a valid NBD string (export name or description)`);
      }
    }
    const server = createServer({ pauseOnConnect: false });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        const where = 'socket' in address ? address.socket : `${address.host}:${address.port}`;
        // libuv reports a socket path in a missing folder as EACCES: say what is wrong.
        const why = 'socket' in address && error.code === 'EACCES' && !existsSync(dirname(address.socket)) ? `the folder ${dirname(address.socket)} does not exist` : (error.code ?? error.message);
        reject(new CofferError('E_CONNECTION_FAILED', `cannot listen on ${where}: ${why}`, { cause: error }));
      });
      if ('socket' in address) server.listen(address.socket, resolve);
      else server.listen(address.port, address.host, resolve);
    });
    server.on('error', (error) => options.onClientError?.(error));
    const bound = server.address();
    const actual: NbdListenAddress = 'socket' in address || bound === null || typeof bound === 'string' ? address : { host: address.host, port: bound.port };
    return new NbdServer(server, actual, exports, options);
  }

  /** Clients connected now. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Stops listening, ends every connection, waits for their handlers. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const [socket, connection] of this.connections) {
        if (connection.reader !== undefined) connection.reader.fail(new CofferError('E_CONNECTION_FAILED', 'the NBD server is shutting down'));
        else socket.destroy();
      }
      await Promise.allSettled([...this.connections.values()].map((c) => c.done));
      await stopped;
    })();
    return this.closing;
  }

  private accept(socket: Socket): void {
    if (this.closing !== undefined) {
      socket.destroy();
      return;
    }
    if (socket.remoteFamily !== undefined) socket.setNoDelay(true);
    const entry: { reader?: SocketReader; done: Promise<void> } = { done: Promise.resolve() };
    this.connections.set(socket, entry);
    entry.done = this.serve(socket, entry)
      .catch((error: unknown) => {
        if (!(isCofferError(error, 'E_CONNECTION_FAILED') && this.closing !== undefined)) this.options.onClientError?.(error);
      })
      .finally(() => {
        socket.destroy();
        this.connections.delete(socket);
      });
  }

  private async serve(socket: Socket, entry: { reader?: SocketReader }): Promise<void> {
    const reader = new SocketReader(socket, 'an NBD client');
    entry.reader = reader;
    const handshakeMs = this.options.handshakeTimeoutMs ?? NBD_DEFAULTS.handshakeTimeoutMs;
    const timer = setTimeout(() => reader.fail(new CofferError('E_TIMEOUT', `an NBD client did not finish the handshake within ${handshakeMs} ms`)), handshakeMs);
    const maxPayload = this.options.maxPayload ?? NBD_DEFAULTS.serverMaxPayload;
    let session;
    try {
      session = await haggle(socket, reader, this.exports, {
        maxOptionLength: NBD_DEFAULTS.serverMaxOptionLength, maxOptions: NBD_DEFAULTS.serverMaxOptions, maxQueries: NBD_DEFAULTS.serverMaxQueries, maxPayload,
      });
    } finally {
      clearTimeout(timer);
    }
    if (session === undefined) {
      socket.end();
      return;
    }
    const writer = new ReplyWriter(socket, reader, this.options.writeStallMs ?? NBD_DEFAULTS.serverWriteStallMs);
    const limits = { maxInFlight: this.options.maxInFlight ?? NBD_DEFAULTS.maxInFlight, maxPayload, readChunk: NBD_DEFAULTS.serverReadChunk, maxDescriptors: NBD_DEFAULTS.serverMaxDescriptors };
    await serveRequests(session, reader, writer, limits, (error) => this.options.onClientError?.(error));
    socket.end();
  }
}
