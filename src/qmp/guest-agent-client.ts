/**
 * A client of the QEMU guest agent (qemu-ga), reached through the host end of the VM's
 * virtio-serial channel `org.qemu.guest_agent.0` (a unix socket chardev).
 *
 * Protocol (qemu qga/qapi-schema.json, docs/interop/qemu-ga.rst), facts checked against
 * qemu-ga 7.2: QMP-style JSON, one object per line, but
 * - no greeting and no capabilities negotiation: the host may speak at once;
 * - the channel outlives connections, so it may hold a previous client's half-sent request
 *   (in the agent's parser) or unread replies (towards the host). On connect the client
 *   sends one 0xFF byte (the agent then drops its partial input; it answers the stray byte
 *   with a parse error carrying no id) followed by `guest-sync-delimited` with a random id;
 *   the agent puts a 0xFF byte (never part of UTF-8 JSON) before that reply. Everything up
 *   to the 0xFF is discarded, and the reply must return the id sent;
 * - requests carry an `id`, which the agent echoes (`{"return": 1, "id": 8}`); replies whose
 *   id is not the one awaited (a command that timed out answering late) are dropped. The
 *   agent runs one command at a time, in order, so this client sends one at a time too;
 * - an agent that is absent (a channel nobody reads in the guest) or hung never answers and
 *   never closes: QEMU accepts the connection and keeps the bytes. Every call has a deadline
 *   (E_TIMEOUT); the connection stays usable after one, and the late reply is dropped.
 * - while the guest's filesystems are frozen the agent refuses most commands
 *   (`CommandNotFound`: "has been disabled: the agent is in frozen state"); guest-sync,
 *   guest-ping, guest-info and the guest-fsfreeze-* commands stay allowed.
 *
 * Failure model: the connection ends for good on `close()`, the peer closing it, or a
 * protocol violation (not JSON, a line over `maxMessageBytes`); a pending call then rejects
 * with that reason (E_CONNECTION_FAILED or E_PROTOCOL), later calls at once.
 */
import { randomInt } from 'node:crypto';
import net from 'node:net';
import { CofferError } from '../errors/index.js';
import { LineFramer } from './line-framer.js';
import { parseQmpMessage } from './qmp-message.js';

/** Defaults, one place. */
export const GUEST_AGENT_DEFAULTS = {
  /** Connecting to the host end is local and immediate; 5 s covers a loaded host. */
  connectTimeoutMs: 5_000,
  /**
   * The first guest-sync. A running agent answers in milliseconds even in an emulated guest;
   * a channel with no agent behind it never does, and the backup waits this long before it
   * settles for crash consistency, so it stays short.
   */
  syncTimeoutMs: 5_000,
  /** Any other command, unless the caller says otherwise (freeze has its own, longer one). */
  commandTimeoutMs: 10_000,
  /** guest-info of qemu-ga 7.2 is ~6 KiB; 1 MiB bounds what a hostile guest can make us buffer. */
  maxMessageBytes: 1024 * 1024,
} as const;

const SENTINEL = 0xff;

/** Options of {@link GuestAgentClient.connect}. */
export interface GuestAgentConnectOptions {
  /** Deadline of the connection, and again of the first guest-sync-delimited. Default 5 s. */
  timeoutMs?: number;
  /** Default deadline of each later command. Default 10 s. */
  commandTimeoutMs?: number;
  maxMessageBytes?: number;
  signal?: AbortSignal;
}

/** Options of one {@link GuestAgentClient.execute}. */
export interface GuestAgentCallOptions {
  timeoutMs?: number;
  /** Aborting rejects the call with E_INTERRUPTED (the agent may still run the command). */
  signal?: AbortSignal;
}

/**
 * Thrown when the agent answers a command with an error reply; code E_QMP_ERROR, with the
 * agent's error class (`GenericError`, `CommandNotFound` for a disabled command...).
 */
export class GuestAgentCommandError extends CofferError {
  constructor(readonly command: string, readonly errorClass: string, readonly desc: string, peer: string) {
    super('E_QMP_ERROR', `the guest agent refused ${command}: ${desc} (${errorClass})`, { subject: { path: peer } });
  }
}

interface Awaited {
  id: number;
  what: string;
  settle(error: CofferError | undefined, value?: unknown): void;
}

/**
 * One synchronised connection to a guest agent.
 * @example
 * const agent = await GuestAgentClient.connect('/run/vm/web01.qga');   // syncs, or E_TIMEOUT
 * try {
 *   const frozen = await guestFsfreezeFreeze(agent, { timeoutMs: 60_000 });
 * } finally {
 *   await agent.close();
 * }
 */
export class GuestAgentClient {
  /** `guest agent at /path`, for messages. */
  readonly peer: string;
  private readonly framer: LineFramer;
  private awaiting: Awaited | undefined;
  /** Bytes are dropped until the sync reply's 0xFF sentinel. */
  private seekingSentinel = false;
  private ended: CofferError | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private readonly closed: Promise<void>;

  private constructor(private readonly socket: net.Socket, readonly path: string, maxMessageBytes: number, private readonly commandTimeoutMs: number) {
    this.peer = `guest agent at ${path}`;
    this.framer = new LineFramer(maxMessageBytes, this.peer);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => this.end(new CofferError('E_CONNECTION_FAILED', `${this.peer} failed: ${error.code ?? error.message}`, { subject: { path }, cause: error })));
    socket.on('close', () => this.end(new CofferError('E_CONNECTION_FAILED', `${this.peer} closed the connection`, { subject: { path } })));
  }

  /**
   * Connects to the host end of the agent channel and synchronises (see the protocol above).
   * Throws E_CONNECTION_FAILED (nothing listens there), E_TIMEOUT (no agent answered: none
   * runs in the guest, it is hung, or another client holds the channel), E_PROTOCOL or
   * E_INTERRUPTED.
   */
  static async connect(path: string, options: GuestAgentConnectOptions = {}): Promise<GuestAgentClient> {
    const timeoutMs = options.timeoutMs ?? GUEST_AGENT_DEFAULTS.syncTimeoutMs;
    const socket = net.createConnection({ path });
    const client = new GuestAgentClient(socket, path, options.maxMessageBytes ?? GUEST_AGENT_DEFAULTS.maxMessageBytes, options.commandTimeoutMs ?? GUEST_AGENT_DEFAULTS.commandTimeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new CofferError('E_TIMEOUT', `${client.peer} did not accept a connection within ${timeoutMs} ms`, { subject: { path } })), timeoutMs);
        socket.once('connect', () => {
          clearTimeout(timer);
          resolve();
        });
        socket.once('error', (error: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          reject(new CofferError('E_CONNECTION_FAILED', `${client.peer} cannot be reached: ${error.code ?? error.message}`, { subject: { path }, cause: error }));
        });
      });
      await client.sync({ timeoutMs, ...(options.signal ? { signal: options.signal } : {}) });
      return client;
    } catch (error) {
      await client.close();
      throw error;
    }
  }

  /**
   * `guest-sync-delimited` preceded by a 0xFF byte: afterwards nothing a previous client or a
   * timed-out command left in the channel can be mistaken for a reply.
   */
  sync(options: GuestAgentCallOptions = {}): Promise<void> {
    return this.serialised(async () => {
      const token = randomInt(1, 2 ** 47);
      this.seekingSentinel = true;
      const value = await this.send('guest-sync-delimited', { id: token }, options, Buffer.from([SENTINEL]), { timeoutHint: ' (is qemu-ga running in the guest, and is no other client connected to its channel?)' });
      if (value !== token) throw new CofferError('E_PROTOCOL', `${this.peer} answered guest-sync-delimited with ${JSON.stringify(value)}, not the id ${token} sent`, { subject: { path: this.path } });
    });
  }

  /**
   * Runs `command` and returns the agent's `return` value (unchecked JSON: the typed helpers
   * check it). Throws {@link GuestAgentCommandError}, E_TIMEOUT, E_INTERRUPTED or the reason
   * the connection ended. Calls are queued: one command at a time reaches the agent.
   */
  execute(command: string, args?: Record<string, unknown>, options: GuestAgentCallOptions = {}): Promise<unknown> {
    return this.serialised(() => this.send(command, args, options));
  }

  /** Ends the connection; a pending call rejects with E_CONNECTION_FAILED. Idempotent. */
  async close(): Promise<void> {
    this.end(new CofferError('E_CONNECTION_FAILED', `the connection to the ${this.peer} was closed by Coffer`, { subject: { path: this.path } }));
    this.socket.destroy();
    await this.closed;
  }

  private serialised<T>(run: () => Promise<T>): Promise<T> {
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => {});
    return result;
  }

  private send(command: string, args: Record<string, unknown> | undefined, options: GuestAgentCallOptions, prefix?: Buffer, extra: { timeoutHint?: string } = {}): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.ended !== undefined) return reject(this.ended);
      const what = command;
      if (options.signal?.aborted) return reject(new CofferError('E_INTERRUPTED', `${what} to the ${this.peer} was interrupted`));
      const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
      const id = this.nextId++;
      const timer = setTimeout(() => awaited.settle(new CofferError('E_TIMEOUT', `${this.peer} did not answer ${what} within ${timeoutMs} ms${extra.timeoutHint ?? ''}`, { subject: { path: this.path } })), timeoutMs);
      const onAbort = (): void => awaited.settle(new CofferError('E_INTERRUPTED', `${what} to the ${this.peer} was interrupted`));
      const awaited: Awaited = {
        id,
        what,
        settle: (error, value) => {
          if (this.awaiting !== awaited) return;
          this.awaiting = undefined;
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          if (error === undefined) resolve(value);
          else reject(error);
        },
      };
      this.awaiting = awaited;
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const request = Buffer.from(`${JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id })}\n`);
      this.socket.write(prefix === undefined ? request : Buffer.concat([prefix, request]));
    });
  }

  private receive(chunk: Buffer): void {
    if (this.ended !== undefined) return;
    let data = chunk;
    if (this.seekingSentinel) {
      const at = data.indexOf(SENTINEL);
      if (at === -1) return; // stale bytes before the sync reply
      this.seekingSentinel = false;
      this.framer.reset();
      data = data.subarray(at + 1);
    }
    try {
      for (const line of this.framer.push(data)) {
        const message = parseQmpMessage(line, this.peer);
        if (message.kind !== 'return' && message.kind !== 'error') continue; // the agent sends no events; ignore any
        const awaited = this.awaiting;
        if (awaited === undefined || message.id !== awaited.id) continue; // a late reply to a command given up on
        if (message.kind === 'return') awaited.settle(undefined, message.value);
        else awaited.settle(new GuestAgentCommandError(awaited.what, message.errorClass, message.desc, this.path));
      }
    } catch (error) {
      if (!(error instanceof CofferError)) throw error;
      this.end(error);
      this.socket.destroy();
    }
  }

  private end(reason: CofferError): void {
    if (this.ended !== undefined) return;
    this.ended = reason;
    this.awaiting?.settle(reason);
  }
}
