import { CofferError } from '../../errors/index.js';
import {
  findGuestAgentChannel,
  GuestAgentClient,
  GuestAgentCommandError,
  guestFsfreezeFreeze,
  guestFsfreezeStatus,
  guestFsfreezeThaw,
  type QmpClient,
} from '../../qmp/index.js';
import type { SourceConsistency } from '../vm-source.js';

/** Defaults of {@link GuestFreeze}, one place. */
export const GUEST_FREEZE_DEFAULTS = {
  /** Connect + guest-sync: an agent answers in milliseconds; none behind the channel costs this. */
  syncTimeoutMs: 5_000,
  /**
   * guest-fsfreeze-freeze syncs every filesystem first: a guest with much dirty data in its
   * page cache on slow storage needs tens of seconds. The guest's writers block meanwhile.
   */
  freezeTimeoutMs: 60_000,
  /** Thaw (and the status check after it) each: thawing is immediate once the agent gets to it. */
  thawTimeoutMs: 30_000,
} as const;

/** What happened around the instant, for the caller to show (the core never prints). */
export type FreezeEvent =
  | { type: 'frozen'; filesystems: number }
  | { type: 'thawed'; filesystems: number; frozenMs: number }
  | { type: 'crash-consistent'; reason: string }
  /** The agent did not confirm the thaw: the guest's filesystems may still be frozen. */
  | { type: 'thaw-failed'; reason: string };

/** Options of {@link GuestFreeze.prepare}. */
export interface GuestFreezeOptions {
  /** The host end of the agent channel; default: found through QMP (see guest-agent-channel.ts). */
  agentSocket?: string;
  /** `false`: do not freeze (`--no-freeze`); the snapshot says crash-consistent. */
  freeze?: boolean;
  syncTimeoutMs?: number;
  freezeTimeoutMs?: number;
  thawTimeoutMs?: number;
  /** Aborts a freeze in progress (after which the guest is thawed); never aborts a thaw. */
  signal?: AbortSignal;
  onEvent?: (event: FreezeEvent) => void;
  /** Monotonic milliseconds, injected by tests; default `performance.now`. */
  now?: () => number;
}

/**
 * Freezes the guest's filesystems through its QEMU guest agent just around the instant of
 * capture, and always thaws. {@link prepare} finds and synchronises with the agent ahead of
 * time, so the frozen window holds only the capture itself: `freeze()` right before the QMP
 * `transaction`, `thaw()` right after it, in a `finally`.
 *
 * Nothing here fails a backup: without an agent, or when the freeze fails or times out, the
 * capture goes on crash-consistent and {@link consistency} says why. The one exception is an
 * abort during the freeze (Ctrl-C), which thaws first and then throws E_INTERRUPTED.
 * `thaw()` is sent after ANY freeze attempt, including one that timed out (the agent may
 * have frozen the guest anyway: it runs commands in order, so the thaw follows the freeze),
 * then `guest-fsfreeze-status` must say `thawed`; otherwise a second thaw, then the
 * `thaw-failed` event. Not concurrent: one freeze, one thaw.
 */
export class GuestFreeze {
  private frozenAt: number | undefined;
  private attempted = false;
  private thawed = false;
  private result: SourceConsistency;

  private constructor(
    private readonly agent: GuestAgentClient | undefined,
    crashReason: string,
    private readonly options: GuestFreezeOptions,
  ) {
    this.result = { level: 'crash', reason: crashReason };
  }

  /**
   * Finds the agent and synchronises with it. Never throws but E_INTERRUPTED; a missing,
   * unusable or silent agent gives a freeze that does nothing, with the reason.
   */
  static async prepare(qmp: QmpClient, options: GuestFreezeOptions = {}): Promise<GuestFreeze> {
    const crash = (reason: string): GuestFreeze => {
      options.onEvent?.({ type: 'crash-consistent', reason });
      return new GuestFreeze(undefined, reason, options);
    };
    if (options.freeze === false) return crash('--no-freeze');
    let socket = options.agentSocket;
    let busyHint = '';
    if (socket === undefined) {
      const channel = await findGuestAgentChannel(qmp, options.signal ? { signal: options.signal } : {}).catch((error: unknown) => {
        if (error instanceof CofferError && error.code === 'E_INTERRUPTED') throw error;
        return { kind: 'unusable' as const, reason: `the guest agent channel could not be looked up: ${(error as Error).message}` };
      });
      if (channel.kind === 'none') return crash('no guest agent channel');
      if (channel.kind === 'unusable') return crash(channel.reason);
      socket = channel.path;
      if (channel.inUse) busyHint = '; another client was connected to the channel';
    }
    const syncTimeoutMs = options.syncTimeoutMs ?? GUEST_FREEZE_DEFAULTS.syncTimeoutMs;
    try {
      const agent = await GuestAgentClient.connect(socket, { timeoutMs: syncTimeoutMs, ...(options.signal ? { signal: options.signal } : {}) });
      return new GuestFreeze(agent, 'the guest agent was never asked to freeze', options);
    } catch (error) {
      if (error instanceof CofferError && error.code === 'E_INTERRUPTED') throw error;
      if (error instanceof CofferError && error.code === 'E_TIMEOUT') return crash(`the guest agent at ${socket} did not answer within ${seconds(syncTimeoutMs)}${busyHint}`);
      return crash(`the guest agent at ${socket} cannot be used: ${(error as Error).message}`);
    }
  }

  /** How consistent the capture is, as far as the freeze goes (final once thawed). */
  get consistency(): SourceConsistency {
    return { ...this.result };
  }

  /** Freezes the guest's filesystems (see the class). Does nothing without an agent. */
  async freeze(): Promise<void> {
    const agent = this.agent;
    if (agent === undefined || this.attempted) return;
    this.attempted = true;
    const timeoutMs = this.options.freezeTimeoutMs ?? GUEST_FREEZE_DEFAULTS.freezeTimeoutMs;
    try {
      const filesystems = await guestFsfreezeFreeze(agent, { timeoutMs, ...(this.options.signal ? { signal: this.options.signal } : {}) });
      this.frozenAt = this.now();
      if (filesystems === 0) return this.crash('the guest agent found no filesystem to freeze');
      this.result = { level: 'application', frozenFilesystems: filesystems };
      this.options.onEvent?.({ type: 'frozen', filesystems });
    } catch (error) {
      if (error instanceof CofferError && error.code === 'E_INTERRUPTED') {
        this.crash('interrupted while freezing');
        await this.thaw();
        throw error;
      }
      if (error instanceof GuestAgentCommandError) return this.crash(`freeze failed: ${error.desc}`);
      if (error instanceof CofferError && error.code === 'E_TIMEOUT') return this.crash(`the guest agent did not finish freezing within ${seconds(timeoutMs)}`);
      this.crash(`freeze failed: ${(error as Error).message}`);
    }
  }

  /**
   * Thaws after any freeze attempt and checks the guest says `thawed`. Never throws and is
   * never aborted; idempotent. Reports `thaw-failed` when the thaw is not confirmed.
   */
  async thaw(): Promise<void> {
    const agent = this.agent;
    if (agent === undefined || !this.attempted || this.thawed) return;
    this.thawed = true;
    const timeoutMs = this.options.thawTimeoutMs ?? GUEST_FREEZE_DEFAULTS.thawTimeoutMs;
    try {
      let thawedCount = await guestFsfreezeThaw(agent, { timeoutMs });
      const frozenMs = this.frozenAt === undefined ? undefined : Math.max(0, Math.round(this.now() - this.frozenAt));
      if (this.result.level === 'application' && frozenMs !== undefined) this.result = { ...this.result, frozenMs };
      if ((await guestFsfreezeStatus(agent, { timeoutMs })) === 'frozen') {
        thawedCount += await guestFsfreezeThaw(agent, { timeoutMs });
        if ((await guestFsfreezeStatus(agent, { timeoutMs })) === 'frozen') throw new CofferError('E_SOURCE_UNREADABLE', 'the agent still reports the filesystems frozen after two thaws');
      }
      this.options.onEvent?.({ type: 'thawed', filesystems: thawedCount, frozenMs: frozenMs ?? 0 });
    } catch (error) {
      this.options.onEvent?.({ type: 'thaw-failed', reason: `the guest's filesystems may still be frozen (send guest-fsfreeze-thaw to its agent at ${agent.path}): ${(error as Error).message}` });
    }
  }

  /** Thaws if needed and disconnects from the agent. Idempotent. */
  async close(): Promise<void> {
    await this.thaw();
    await this.agent?.close();
  }

  private crash(reason: string): void {
    this.result = { level: 'crash', reason };
    this.options.onEvent?.({ type: 'crash-consistent', reason });
  }

  private now(): number {
    return (this.options.now ?? (() => performance.now()))();
  }
}

function seconds(ms: number): string {
  return `${ms / 1000} s`;
}
