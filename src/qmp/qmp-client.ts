/**
 * A QMP client: one connection to a QEMU monitor (unix socket or TCP).
 *
 * Protocol (docs/interop/qmp-spec.rst): on connect the server sends a greeting and accepts only
 * `qmp_capabilities` until it is run; then `{"execute", "arguments", "id"}` requests are
 * answered by `{"return"|"error", "id"}` replies carrying the same id, and events arrive between
 * replies. Without the `oob` capability (never enabled here) QEMU runs commands one after the
 * other, in the order sent; several may still be in flight (written before the first answer),
 * and replies are matched by id, never by order. Replies with an id no caller waits for (a
 * command that timed out or was aborted) are dropped, as the spec says clients should.
 *
 * Failure model: the connection ends for good on the first of: `close()`, the peer closing or
 * resetting it, or a protocol violation (not JSON, not a QMP message, a line over
 * `maxMessageBytes`, a reply without id). Every command and event waiter still pending then
 * rejects with that reason (E_CONNECTION_FAILED or E_PROTOCOL); later calls reject at once.
 * A command QEMU does not answer in time rejects with E_TIMEOUT (the connection stays up: the
 * command may still complete in QEMU, and its late reply is dropped).
 */
import net from 'node:net';
import { CofferError } from '../errors/index.js';
import { LineFramer } from './line-framer.js';
import { QmpCommandError } from './qmp-command-error.js';
import { parseQmpMessage, type QmpEvent, type QmpGreeting, type QmpServerMessage } from './qmp-message.js';

/** Where a QMP monitor listens: a unix socket path, or a TCP host and port. */
export type QmpAddress = { path: string } | { host: string; port: number };

/** Defaults, one place. */
export const QMP_DEFAULTS = {
  /** Connect + greeting, then negotiation, each. QEMU greets at once; 10 s covers a loaded host. */
  connectTimeoutMs: 10_000,
  /**
   * One command. Block-layer commands run in QEMU's main loop and return in milliseconds, but
   * QEMU may be slowed by a guest's I/O flush (`transaction` drains the disks) or a loaded
   * host: 30 s separates slow from stuck.
   */
  commandTimeoutMs: 30_000,
  /**
   * One message. The largest replies real QEMUs send are `query-qmp-schema` (~200 KiB) and
   * `query-named-block-nodes` on long backing chains (a few MiB); 16 MiB leaves room and still
   * bounds what a hostile peer can make us buffer.
   */
  maxMessageBytes: 16 * 1024 * 1024,
} as const;

/** Options of {@link QmpClient.connect}. */
export interface QmpConnectOptions {
  /** Time allowed to connect and receive the greeting, and again for negotiation. Default 10 s. */
  timeoutMs?: number;
  /** Default timeout of each command and event wait. Default 30 s. */
  commandTimeoutMs?: number;
  /** Largest message accepted from the peer; a longer one ends the connection. Default 16 MiB. */
  maxMessageBytes?: number;
  signal?: AbortSignal;
}

/** Options of {@link QmpClient.execute} and {@link QmpClient.waitForEvent}. */
export interface QmpCallOptions {
  /** Overrides the connection's `commandTimeoutMs`. */
  timeoutMs?: number;
  /** Aborting rejects the call with E_INTERRUPTED (a command already sent may still run). */
  signal?: AbortSignal;
}

/** Receives events; must not throw (an exception is rethrown asynchronously, as a bug). */
export type QmpEventListener = (event: QmpEvent) => void;

interface Waiter {
  what: string;
  settle(error: CofferError | undefined, value?: unknown): void;
}

/**
 * A connected, negotiated QMP session.
 *
 * Concurrency: `execute` may be called many times without awaiting; each call gets its own id.
 * `close()` is idempotent and may be called at any time.
 * @example
 * const qmp = await QmpClient.connect({ path: '/run/vm/qmp.sock' });
 * try {
 *   const stopped = qmp.waitForEvent('STOP');     // subscribe before causing the event
 *   await qmp.execute('stop');
 *   await stopped;
 * } finally {
 *   await qmp.close();
 * }
 */
export class QmpClient {
  /** The greeting the server sent (QEMU version and capabilities). */
  readonly greeting: QmpGreeting;
  /** Names the peer in messages: `QMP at /path` or `QMP at host:port`. */
  readonly peer: string;
  private readonly core: Connection;

  private constructor(core: Connection, greeting: QmpGreeting) {
    this.core = core;
    this.greeting = greeting;
    this.peer = core.peer;
  }

  /**
   * Connects, reads the greeting and runs `qmp_capabilities` (enabling no capability).
   * Throws E_CONNECTION_FAILED (nothing listens, refused, closed early), E_TIMEOUT (no greeting
   * in time: QEMU serves one client per monitor, so another client may be connected),
   * E_PROTOCOL (the peer is not a QMP server) or E_INTERRUPTED.
   */
  static async connect(address: QmpAddress, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const peer = 'path' in address ? `QMP at ${address.path}` : `QMP at ${address.host}:${address.port}`;
    const timeoutMs = options.timeoutMs ?? QMP_DEFAULTS.connectTimeoutMs;
    const socket = 'path' in address ? net.createConnection({ path: address.path }) : net.createConnection({ host: address.host, port: address.port });
    const core = new Connection(socket, peer, options.maxMessageBytes ?? QMP_DEFAULTS.maxMessageBytes, options.commandTimeoutMs ?? QMP_DEFAULTS.commandTimeoutMs);
    try {
      const greeting = await core.call('the greeting', (waiter) => core.awaitGreeting(waiter), {
        timeoutMs,
        ...(options.signal ? { signal: options.signal } : {}),
        timeoutHint: ' (QEMU serves one client per monitor: is another client connected?)',
      }) as QmpGreeting;
      await core.execute('qmp_capabilities', undefined, { timeoutMs, ...(options.signal ? { signal: options.signal } : {}) });
      return new QmpClient(core, greeting);
    } catch (err) {
      await core.close();
      throw err;
    }
  }

  /** True once the connection has ended (closed by either side or failed). */
  get closed(): boolean {
    return this.core.ended !== undefined;
  }

  /** Resolves, never rejects, when the connection ends, with the reason it ended. */
  get whenClosed(): Promise<CofferError> {
    return this.core.whenEnded;
  }

  /**
   * Runs `command` with `args` and returns QEMU's `return` value (unchecked JSON: the typed
   * helpers of this folder check it). Throws {@link QmpCommandError} (E_QMP_ERROR) when QEMU
   * refuses it, E_TIMEOUT, E_INTERRUPTED, or the reason the connection ended.
   */
  execute(command: string, args?: Record<string, unknown>, options: QmpCallOptions = {}): Promise<unknown> {
    return this.core.execute(command, args, options);
  }

  /**
   * Calls `listener` for every event named `event` (`'*'`: every event) until the returned
   * function is called. Listeners run in arrival order, before later replies resolve.
   */
  on(event: string, listener: QmpEventListener): () => void {
    return this.core.subscribe(event, listener);
  }

  /**
   * The next event named `event` for which `predicate` holds, counted from this call: call it
   * BEFORE the command that causes the event, then await it. Rejects with E_TIMEOUT,
   * E_INTERRUPTED or the reason the connection ended. The promise is marked handled, so a wait
   * abandoned after a failed command never becomes an unhandled rejection.
   */
  waitForEvent(event: string, predicate: (event: QmpEvent) => boolean = () => true, options: QmpCallOptions = {}): Promise<QmpEvent> {
    const promise = this.core.call(`event ${event}`, (waiter) => {
      const unsubscribe = this.core.subscribe(event, (e) => {
        let matches: boolean;
        try {
          matches = predicate(e);
        } catch (err) {
          unsubscribe();
          waiter.settle(new CofferError('E_PROTOCOL', `event ${event} could not be checked: ${String(err)}`, { cause: err }));
          return;
        }
        if (matches) waiter.settle(undefined, e);
      });
      return unsubscribe;
    }, options) as Promise<QmpEvent>;
    promise.catch(() => {});
    return promise;
  }

  /** Ends the connection; commands still pending reject with E_CONNECTION_FAILED. Idempotent. */
  close(): Promise<void> {
    return this.core.close();
  }
}

/** The connection's state machine, kept apart from the public surface. */
class Connection {
  ended: CofferError | undefined;
  readonly whenEnded: Promise<CofferError>;
  private resolveEnded!: (reason: CofferError) => void;
  private readonly framer: LineFramer;
  private readonly pending = new Map<number, Waiter>();
  private readonly waiters = new Set<Waiter>();
  private readonly listeners = new Map<string, Set<QmpEventListener>>();
  private greetingWaiter: Waiter | undefined;
  private connected = false;
  private greeted = false;
  private nextId = 1;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly socket: net.Socket,
    readonly peer: string,
    maxMessageBytes: number,
    private readonly commandTimeoutMs: number,
  ) {
    this.framer = new LineFramer(maxMessageBytes, peer);
    this.whenEnded = new Promise((resolve) => (this.resolveEnded = resolve));
    socket.once('connect', () => (this.connected = true));
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? err.message;
      // A peer that dies with our requests unread resets the connection instead of closing it.
      const what = !this.connected ? `cannot be reached: ${code}`
        : code === 'ECONNRESET' || code === 'EPIPE' ? `closed the connection (${code})` : `failed: ${code}`;
      this.end(new CofferError('E_CONNECTION_FAILED', `${peer} ${what}`, { subject: { path: peer }, cause: err }));
    });
    socket.on('close', () => this.end(new CofferError('E_CONNECTION_FAILED', `${peer} closed the connection`, { subject: { path: peer } })));
  }

  awaitGreeting(waiter: Waiter): () => void {
    this.greetingWaiter = waiter;
    return () => (this.greetingWaiter = undefined);
  }

  execute(command: string, args: Record<string, unknown> | undefined, options: QmpCallOptions): Promise<unknown> {
    if (typeof command !== 'string' || command === '') return Promise.reject(new TypeError('a QMP command name is needed'));
    return this.call(command, (waiter) => {
      const id = this.nextId++;
      this.pending.set(id, waiter);
      const message = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
      this.socket.write(`${JSON.stringify(message)}\n`);
      return () => this.pending.delete(id);
    }, options);
  }

  /**
   * Runs one request: `start` registers a waiter (and returns how to unregister it), and the
   * call settles once, by the waiter, a timeout, an abort or the end of the connection.
   */
  call(what: string, start: (waiter: Waiter) => () => void, options: QmpCallOptions & { timeoutHint?: string }): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.ended !== undefined) return reject(this.endedWhile(what));
      if (options.signal?.aborted) return reject(interrupted(what));
      let stop: () => void = () => {};
      const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
      const timer = setTimeout(() => {
        waiter.settle(new CofferError('E_TIMEOUT', `${this.peer} did not answer ${what} within ${timeoutMs} ms${options.timeoutHint ?? ''}`, {
          subject: { path: this.peer },
        }));
      }, timeoutMs);
      const onAbort = (): void => waiter.settle(interrupted(what));
      const waiter: Waiter = {
        what,
        settle: (error, value) => {
          if (!this.waiters.delete(waiter)) return; // settled already
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          stop();
          if (error === undefined) resolve(value);
          else reject(error);
        },
      };
      this.waiters.add(waiter);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      stop = start(waiter);
      if (!this.waiters.has(waiter)) stop(); // settled while starting
    });
  }

  subscribe(event: string, listener: QmpEventListener): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) this.listeners.set(event, (set = new Set()));
    // Each subscription gets its own entry, so one listener subscribed twice is called twice.
    const entry: QmpEventListener = (e) => listener(e);
    set.add(entry);
    return () => {
      set.delete(entry);
      if (set.size === 0 && this.listeners.get(event) === set) this.listeners.delete(event);
    };
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.end(new CofferError('E_CONNECTION_FAILED', `the connection to ${this.peer} was closed by Coffer`, { subject: { path: this.peer } }));
      if (this.socket.closed) resolve();
      else this.socket.once('close', () => resolve());
    });
    return this.closing;
  }

  private receive(chunk: Buffer): void {
    if (this.ended !== undefined) return;
    try {
      for (const line of this.framer.push(chunk)) {
        this.dispatch(parseQmpMessage(line, this.peer));
        if (this.ended !== undefined) return;
      }
    } catch (err) {
      if (!(err instanceof CofferError)) throw err;
      this.end(err);
    }
  }

  private dispatch(message: QmpServerMessage): void {
    if (!this.greeted) {
      if (message.kind !== 'greeting') throw protocol(this.peer, `sent a ${message.kind} before its greeting: it is not a QMP server`);
      this.greeted = true;
      this.greetingWaiter?.settle(undefined, message.greeting);
      return;
    }
    switch (message.kind) {
      case 'greeting':
        throw protocol(this.peer, 'sent a second greeting');
      case 'event':
        return this.emit(message.event);
      case 'return':
      case 'error': {
        if (message.id === undefined) {
          const desc = message.kind === 'error' ? `: ${message.desc}` : '';
          throw protocol(this.peer, `answered without an id (it could not read a command${desc})`);
        }
        const waiter = typeof message.id === 'number' ? this.pending.get(message.id) : undefined;
        if (waiter === undefined) return; // a reply to a command that timed out or was aborted
        if (message.kind === 'return') waiter.settle(undefined, message.value);
        else waiter.settle(new QmpCommandError(waiter.what, message.errorClass, message.desc, this.peer));
      }
    }
  }

  private emit(event: QmpEvent): void {
    const named = this.listeners.get(event.event);
    const all = this.listeners.get('*');
    for (const listener of [...(named ?? []), ...(all ?? [])]) {
      try {
        listener(event);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  /** Ends the connection once, with `reason`; every waiter rejects. */
  private end(reason: CofferError): void {
    if (this.ended !== undefined) return;
    this.ended = reason;
    this.socket.destroy();
    for (const waiter of [...this.waiters]) waiter.settle(this.endedWhile(waiter.what));
    this.listeners.clear();
    this.resolveEnded(reason);
  }

  private endedWhile(what: string): CofferError {
    const reason = this.ended as CofferError;
    return new CofferError(reason.code, `${reason.message} (before answering ${what})`, { subject: reason.subject, cause: reason });
  }
}

function interrupted(what: string): CofferError {
  return new CofferError('E_INTERRUPTED', `${what} was interrupted`);
}

function protocol(peer: string, what: string): CofferError {
  return new CofferError('E_PROTOCOL', `${peer} ${what}`, { subject: { path: peer } });
}
