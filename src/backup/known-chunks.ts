/**
 * Ids this backup knows are stored (found by a lookup or written by it), so a block seen
 * twice costs one lookup. Bounded: past `limit` ids the oldest are forgotten, which costs a
 * repeated lookup, never a wrong answer. 200,000 ids are about 30 MiB.
 */
export class KnownChunks {
  private readonly ids = new Set<string>();

  constructor(private readonly limit = 200_000) {}

  has(hex: string): boolean {
    return this.ids.has(hex);
  }

  add(hex: string): void {
    if (this.ids.has(hex)) return;
    this.ids.add(hex);
    if (this.ids.size > this.limit) this.ids.delete(this.ids.values().next().value as string);
  }
}
