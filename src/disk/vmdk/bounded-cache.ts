/**
 * A least-recently-used map with a fixed number of entries, for the grain tables, grain
 * directory pages and inflated grains a sparse extent keeps. Values are usually promises, so
 * concurrent readers of one table share one file read; a caller that sees its promise fail
 * removes it ({@link BoundedCache.delete}) so the next reader tries again.
 */
export class BoundedCache<K, V> {
  private readonly entries = new Map<K, V>();

  constructor(private readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`cache capacity ${capacity}`);
  }

  /** The value for `key`, which becomes the most recently used, or undefined. */
  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  /** Stores `value`, dropping the least recently used entry when full. */
  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    while (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as K);
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  /**
   * The cached value for `key`, or the one `load` makes (cached at once, so concurrent
   * callers share it; dropped again if the promise rejects).
   */
  obtain<T>(this: BoundedCache<K, Promise<T>>, key: K, load: () => Promise<T>): Promise<T> {
    let value = this.get(key);
    if (value === undefined) {
      value = load();
      this.set(key, value);
      value.catch(() => {
        if (this.entries.get(key) === value) this.entries.delete(key);
      });
    }
    return value;
  }
}
