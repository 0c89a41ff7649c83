import type { Backend, BackendEntry } from './backend.js';
import { readRange } from './read-range.js';

/**
 * A backend that passes every call on to `inner` unchanged: the base of the wrappers that
 * change a few calls (a bandwidth limit, Object Lock, digest records, a segment cache, a
 * meter, injected faults) and must pass on the rest, including the optional parts a caller
 * tests for (`getRange`, `close`, `preferredConcurrency`, `fillsUp`), so that wrapping never hides what
 * the storage can do. `objectLock` is not passed on here: each wrapper decides what its
 * locked puts must do (a limit, a cache, a meter), and one that says nothing hides it.
 */
export abstract class ForwardingBackend implements Backend {
  constructor(readonly inner: Backend) {}

  get location(): string {
    return this.inner.location;
  }

  get preferredConcurrency(): number | undefined {
    return this.inner.preferredConcurrency;
  }

  get fillsUp(): boolean | undefined {
    return this.inner.fillsUp;
  }

  removeStaleTemporaries(olderThanMs: number): Promise<{ files: number; bytes: number }> {
    return this.inner.removeStaleTemporaries?.(olderThanMs) ?? Promise.resolve({ files: 0, bytes: 0 });
  }

  put(key: string, data: Uint8Array): Promise<void> {
    return this.inner.put(key, data);
  }

  create(key: string, data: Uint8Array): Promise<boolean> {
    return this.inner.create(key, data);
  }

  sync(): Promise<void> {
    return this.inner.sync();
  }

  get(key: string): Promise<Buffer> {
    return this.inner.get(key);
  }

  getRange(key: string, offset: number, length: number, into?: Uint8Array): Promise<Buffer> {
    return readRange(this.inner, key, offset, length, into);
  }

  has(key: string): Promise<boolean> {
    return this.inner.has(key);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  list(prefix: string): AsyncIterable<BackendEntry> {
    return this.inner.list(prefix);
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
