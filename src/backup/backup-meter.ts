/**
 * Where a backup's time went, measured without touching the pipeline: wrappers around the
 * source devices and the repository's backend record when at least one read (or put, or
 * throttle wait) is in flight, and the process's CPU time is sampled at both ends. The stage
 * busy for the largest share of the wall-clock time is the bottleneck, as Veeam reports it
 * ("Source 95%, Proxy 40%, Network 10%, Target 5%: bottleneck Source").
 *
 * Busy time is the union of in-flight intervals (two reads in flight for the same second count
 * one second), so each share is between 0 and 1. The throttle wrappers sit outside the
 * metered ones: a read waiting for bandwidth tokens counts as throttle, not as source time.
 * CPU share: process CPU time (main thread and codec workers) over wall time × threads.
 */
import type { BlockDevice, Extent } from '../blockdev/index.js';
import { ForwardingBackend, readRange, type Backend, type ObjectLockStore } from '../repo/index.js';

/** What bounds a byte stream's rate: a token bucket (RateLimiter) or anything with `take`. */
export interface ByteThrottle {
  /** Resolves when `bytes` may pass; rejects with the signal's reason when it aborts. */
  take(bytes: number, signal?: AbortSignal): Promise<void>;
}

/** Accumulates the time during which at least one operation of a kind is in flight. */
export class BusyClock {
  private inFlight = 0;
  private since = 0;
  private total = 0;
  private operations = 0;
  private operationMs = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Times `work` as busy. */
  async time<T>(work: () => Promise<T>): Promise<T> {
    const start = this.now();
    if (this.inFlight++ === 0) this.since = start;
    try {
      return await work();
    } finally {
      const end = this.now();
      if (--this.inFlight === 0) this.total += end - this.since;
      this.operations++;
      this.operationMs += end - start;
    }
  }

  /** The mean duration of the operations that ended since the last call (undefined if none): the latency. */
  takeMeanLatencyMs(): number | undefined {
    if (this.operations === 0) return undefined;
    const mean = this.operationMs / this.operations;
    this.operations = 0;
    this.operationMs = 0;
    return mean;
  }

  /** Milliseconds busy so far (including an interval still open). */
  get busyMs(): number {
    return this.total + (this.inFlight > 0 ? this.now() - this.since : 0);
  }
}

/** The shares of wall time each stage was busy, and the one that bounded the run. */
export interface TimeBreakdown {
  /** Reading the VM's disks (not counting throttle waits). */
  sourceMs: number;
  /** Writing (and reading) the repository's storage. */
  repositoryMs: number;
  /** Waiting for bandwidth tokens (source read or repository write limits). */
  throttleMs: number;
  /** Process CPU time (main thread and codec workers). */
  cpuMs: number;
  wallMs: number;
  bottleneck: Bottleneck;
}

/** Which stage bounded a backup's speed. */
export type Bottleneck = 'source' | 'cpu' | 'repository' | 'throttle';

/** The clocks of one backup. */
export class BackupMeter {
  readonly source: BusyClock;
  readonly repository: BusyClock;
  readonly throttle: BusyClock;
  /**
   * Bytes read from the source devices so far, counted as each read ends: exactly what a
   * source read limit is paid for. Ranges the backup skips (zero, unallocated, unchanged by
   * change tracking) are never read, so they are not counted.
   */
  sourceBytesRead = 0;
  private readonly startedAt: number;
  private readonly cpuAtStart: NodeJS.CpuUsage;

  constructor(private readonly threads: number, private readonly now: () => number = () => performance.now()) {
    this.source = new BusyClock(now);
    this.repository = new BusyClock(now);
    this.throttle = new BusyClock(now);
    this.startedAt = now();
    this.cpuAtStart = process.cpuUsage();
  }

  /** The breakdown so far. */
  breakdown(): TimeBreakdown {
    const wallMs = Math.max(1e-3, this.now() - this.startedAt);
    const cpu = process.cpuUsage(this.cpuAtStart);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const shares: [Bottleneck, number][] = [
      ['source', this.source.busyMs / wallMs],
      ['cpu', cpuMs / (wallMs * Math.max(1, this.threads))],
      ['repository', this.repository.busyMs / wallMs],
      ['throttle', this.throttle.busyMs / wallMs],
    ];
    let bottleneck = shares[0] as [Bottleneck, number];
    for (const share of shares) if (share[1] > bottleneck[1]) bottleneck = share;
    const round = (ms: number) => Math.round(ms);
    return { sourceMs: round(this.source.busyMs), repositoryMs: round(this.repository.busyMs), throttleMs: round(this.throttle.busyMs), cpuMs: round(cpuMs), wallMs: round(wallMs), bottleneck: bottleneck[0] };
  }
}

/** A block device whose reads are timed and counted by `meter`, each first paying `throttle` (if any) for its length. */
export class MeteredDevice implements BlockDevice {
  constructor(
    private readonly inner: BlockDevice,
    private readonly meter: BackupMeter,
    private readonly throttle: ByteThrottle | undefined,
    private readonly signal: AbortSignal | undefined,
  ) {}

  get size(): number {
    return this.inner.size;
  }

  async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
    if (this.throttle !== undefined) {
      const throttle = this.throttle;
      await this.meter.throttle.time(() => throttle.take(length, this.signal));
    }
    const data = await this.meter.source.time(() => this.inner.read(offset, length, into));
    this.meter.sourceBytesRead += length;
    return data;
  }

  extents(offset?: number, length?: number): AsyncIterable<Extent> {
    return this.inner.extents(offset, length);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * A backend whose transfers are timed, and whose puts first pay `throttle` (if any). The
 * inner backend's Object Lock passes through, its locked puts timed and throttled too (a
 * repository with Object Lock writes everything a restore needs through it).
 */
export class MeteredBackend extends ForwardingBackend {
  readonly objectLock?: ObjectLockStore;

  constructor(
    inner: Backend,
    private readonly meter: BackupMeter,
    private readonly throttle: ByteThrottle | undefined,
    private readonly signal: AbortSignal | undefined,
  ) {
    super(inner);
    const lock = inner.objectLock;
    if (lock !== undefined) {
      this.objectLock = {
        enabled: () => lock.enabled(),
        put: async (key, data, retention) => {
          await this.pay(data.length);
          return this.meter.repository.time(() => lock.put(key, data, retention));
        },
        create: async (key, data, retention) => {
          await this.pay(data.length);
          return this.meter.repository.time(() => lock.create(key, data, retention));
        },
        retention: (key) => this.meter.repository.time(() => lock.retention(key)),
        extend: (key, retention) => this.meter.repository.time(() => lock.extend(key, retention)),
        deleteAll: (key) => lock.deleteAll(key),
      };
    }
  }

  private async pay(bytes: number): Promise<void> {
    if (this.throttle === undefined) return;
    const throttle = this.throttle;
    await this.meter.throttle.time(() => throttle.take(bytes, this.signal));
  }

  override async put(key: string, data: Uint8Array): Promise<void> {
    await this.pay(data.length);
    return this.meter.repository.time(() => this.inner.put(key, data));
  }

  override async create(key: string, data: Uint8Array): Promise<boolean> {
    await this.pay(data.length);
    return this.meter.repository.time(() => this.inner.create(key, data));
  }

  override sync(): Promise<void> {
    return this.meter.repository.time(() => this.inner.sync());
  }

  override get(key: string): Promise<Buffer> {
    return this.meter.repository.time(() => this.inner.get(key));
  }

  override getRange(key: string, offset: number, length: number, into?: Uint8Array): Promise<Buffer> {
    return this.meter.repository.time(() => readRange(this.inner, key, offset, length, into));
  }

  override has(key: string): Promise<boolean> {
    return this.meter.repository.time(() => this.inner.has(key));
  }
}
