/**
 * Disjoint half-open ranges `[start, end)`, kept sorted and merged, to check that the chunks
 * of one read reply never overlap and, at the end, cover the whole request.
 */
export class IntervalSet {
  private readonly ranges: [number, number][] = [];
  private total = 0;

  /** Bytes covered. */
  get covered(): number {
    return this.total;
  }

  /** Adds `[start, end)`; returns false (and adds nothing) when it overlaps a range already there. */
  add(start: number, end: number): boolean {
    // First range whose end is after start: the only one that could overlap from the left.
    let lo = 0;
    let hi = this.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.ranges[mid] as [number, number])[1] <= start) lo = mid + 1;
      else hi = mid;
    }
    const next = this.ranges[lo];
    if (next !== undefined && next[0] < end) return false;
    this.total += end - start;
    const previous = this.ranges[lo - 1];
    if (previous !== undefined && previous[1] === start) {
      previous[1] = end;
      if (next !== undefined && next[0] === end) {
        previous[1] = next[1];
        this.ranges.splice(lo, 1);
      }
    } else if (next !== undefined && next[0] === end) {
      next[0] = start;
    } else {
      this.ranges.splice(lo, 0, [start, end]);
    }
    return true;
  }
}
