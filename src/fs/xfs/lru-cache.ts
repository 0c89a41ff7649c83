/**
 * A small least-recently-used cache whose capacity is a total weight (entries, extents…):
 * inserting past it drops the oldest entries. Not safe for promises that reject: store
 * only settled values, or delete on failure.
 */
export class LruCache<K, V> {
  private readonly map = new Map<K, { value: V; weight: number }>();
  private total = 0;

  constructor(private readonly capacity: number) {}

  get(key: K): V | undefined {
    const hit = this.map.get(key);
    if (hit === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, hit);
    return hit.value;
  }

  set(key: K, value: V, weight = 1): void {
    this.delete(key);
    if (weight > this.capacity) return;
    this.map.set(key, { value, weight });
    this.total += weight;
    for (const [oldest, entry] of this.map) {
      if (this.total <= this.capacity) break;
      this.map.delete(oldest);
      this.total -= entry.weight;
    }
  }

  delete(key: K): void {
    const hit = this.map.get(key);
    if (hit === undefined) return;
    this.map.delete(key);
    this.total -= hit.weight;
  }
}
