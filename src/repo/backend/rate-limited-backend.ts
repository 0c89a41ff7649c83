import type { RateLimiter } from '../../concurrency/index.js';
import type { Backend, ObjectLockStore } from './backend.js';
import { ForwardingBackend } from './forwarding-backend.js';
import { readRange } from './read-range.js';

/** The limits a {@link RateLimitedBackend} applies; either may be absent (no limit). */
export interface BandwidthLimits {
  /** Bytes the backend returns (get). */
  download?: RateLimiter;
  /** Bytes given to the backend (put). */
  upload?: RateLimiter;
}

/**
 * A backend wrapper that holds object bodies to a bandwidth (`--limit-download`,
 * `--limit-upload`): a put waits for its bytes' tokens before it starts; a get pays for the
 * bytes it received once they arrived (their size is not known before), so the next transfer
 * waits for the debt. Metadata calls (has, list, delete, sync) are not counted: they carry
 * no object body. Wrapping, not a flag in each backend (kopia's and restic's habit), so the
 * local and S3 backends need no change.
 */
export class RateLimitedBackend extends ForwardingBackend {
  /** The inner backend's Object Lock, its locked puts held to the upload limit too. */
  readonly objectLock?: ObjectLockStore;

  constructor(
    inner: Backend,
    private readonly limits: BandwidthLimits,
    private readonly signal?: AbortSignal,
  ) {
    super(inner);
    const lock = inner.objectLock;
    if (lock !== undefined) {
      this.objectLock = {
        enabled: () => lock.enabled(),
        put: async (key, data, retention) => {
          await this.limits.upload?.take(data.length, this.signal);
          return lock.put(key, data, retention);
        },
        create: async (key, data, retention) => {
          await this.limits.upload?.take(data.length, this.signal);
          return lock.create(key, data, retention);
        },
        retention: (key) => lock.retention(key),
        extend: (key, retention) => lock.extend(key, retention),
        deleteAll: (key) => lock.deleteAll(key),
      };
    }
  }

  override async put(key: string, data: Uint8Array): Promise<void> {
    await this.limits.upload?.take(data.length, this.signal);
    return this.inner.put(key, data);
  }

  override async create(key: string, data: Uint8Array): Promise<boolean> {
    await this.limits.upload?.take(data.length, this.signal);
    return this.inner.create(key, data);
  }

  override async get(key: string): Promise<Buffer> {
    const data = await this.inner.get(key);
    await this.limits.download?.take(data.length, this.signal);
    return data;
  }

  override async getRange(key: string, offset: number, length: number, into?: Uint8Array): Promise<Buffer> {
    const data = await readRange(this.inner, key, offset, length, into);
    await this.limits.download?.take(data.length, this.signal);
    return data;
  }
}
