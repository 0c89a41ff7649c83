import { CofferError, type ErrorCode } from '../../errors/index.js';
import type { Backend, BackendEntry } from './backend.js';
import { ForwardingBackend } from './forwarding-backend.js';
import { readRange } from './read-range.js';

type Method = 'put' | 'get' | 'has' | 'delete' | 'list' | 'sync';

/** One scripted failure: the `nth` call (1-based) of `method` whose key matches fails. */
export interface Fault {
  method: Method;
  keyPrefix?: string;
  nth: number;
  code: ErrorCode;
}

/**
 * A backend wrapper that fails on a script (kopia's FaultyStorage habit), for tests of what
 * happens when storage fails part-way. `unexercised()` lists faults that never fired, so a
 * test can check that its scenario really happened.
 */
export class FaultyBackend extends ForwardingBackend {
  private readonly counts = new Map<Fault, number>();
  private readonly fired = new Set<Fault>();

  constructor(
    inner: Backend,
    private readonly faults: Fault[],
  ) {
    super(inner);
  }

  unexercised(): Fault[] {
    return this.faults.filter((fault) => !this.fired.has(fault));
  }

  override async put(key: string, data: Uint8Array): Promise<void> {
    this.check('put', key);
    return this.inner.put(key, data);
  }

  override async create(key: string, data: Uint8Array): Promise<boolean> {
    this.check('put', key);
    return this.inner.create(key, data);
  }

  override async sync(): Promise<void> {
    this.check('sync', '');
    return this.inner.sync();
  }

  override async get(key: string): Promise<Buffer> {
    this.check('get', key);
    return this.inner.get(key);
  }

  override async getRange(key: string, offset: number, length: number, into?: Uint8Array): Promise<Buffer> {
    this.check('get', key);
    return readRange(this.inner, key, offset, length, into);
  }

  override async has(key: string): Promise<boolean> {
    this.check('has', key);
    return this.inner.has(key);
  }

  override async delete(key: string): Promise<void> {
    this.check('delete', key);
    return this.inner.delete(key);
  }

  override async *list(prefix: string): AsyncIterable<BackendEntry> {
    this.check('list', prefix);
    yield* this.inner.list(prefix);
  }

  private check(method: Method, key: string): void {
    for (const fault of this.faults) {
      if (fault.method !== method || (fault.keyPrefix !== undefined && !key.startsWith(fault.keyPrefix))) continue;
      const count = (this.counts.get(fault) ?? 0) + 1;
      this.counts.set(fault, count);
      if (count === fault.nth) {
        this.fired.add(fault);
        throw new CofferError(fault.code, `injected ${fault.code} on ${method} ${key}`, { subject: { object: key } });
      }
    }
  }
}
