/**
 * A set of object ids kept as their first 8 bytes, sorted: 8 bytes per id, so the ids of
 * tens of millions of chunks fit in a few hundred MB at most (10 million: 80 MB). Two ids
 * that share a prefix are confused, which only ever makes `has` say yes for an id that was
 * not added — for prune, an unreferenced chunk kept, never a referenced one deleted.
 * Add everything, then `seal()`, then ask.
 */
export class IdPrefixSet {
  private parts: BigUint64Array[] = [];
  private current = new BigUint64Array(1 << 16);
  private used = 0;
  private sorted: BigUint64Array | undefined;

  /** Adds an id (raw bytes, at least 8) or its hex form. */
  add(id: Uint8Array | string): void {
    if (this.sorted !== undefined) throw new Error('IdPrefixSet: add after seal');
    if (this.used === this.current.length) {
      this.parts.push(this.current);
      this.current = new BigUint64Array(Math.min(this.current.length * 2, 1 << 22));
      this.used = 0;
    }
    this.current[this.used++] = prefixOf(id);
  }

  /** Sorts and removes duplicates; the set is read-only afterwards. */
  seal(): void {
    if (this.sorted !== undefined) return;
    const total = this.parts.reduce((sum, p) => sum + p.length, 0) + this.used;
    const all = new BigUint64Array(total);
    let at = 0;
    for (const part of this.parts) {
      all.set(part, at);
      at += part.length;
    }
    all.set(this.current.subarray(0, this.used), at);
    this.parts = [];
    this.current = new BigUint64Array(0);
    all.sort();
    let unique = 0;
    for (let i = 0; i < all.length; i++) if (i === 0 || all[i] !== all[unique - 1]) all[unique++] = all[i] as bigint;
    this.sorted = all.slice(0, unique);
  }

  get size(): number {
    if (this.sorted === undefined) throw new Error('IdPrefixSet: size before seal');
    return this.sorted.length;
  }

  has(id: Uint8Array | string): boolean {
    const set = this.sorted;
    if (set === undefined) throw new Error('IdPrefixSet: has before seal');
    const key = prefixOf(id);
    let lo = 0;
    let hi = set.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const value = set[mid] as bigint;
      if (value === key) return true;
      if (value < key) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }
}

function prefixOf(id: Uint8Array | string): bigint {
  if (typeof id === 'string') return BigInt(`0x${id.slice(0, 16)}`);
  return new DataView(id.buffer, id.byteOffset, 8).getBigUint64(0);
}
