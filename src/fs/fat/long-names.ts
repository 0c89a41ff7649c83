import { type DirSlot, type ShortEntry, shortNameChecksum } from './dir-entry.js';

/** A name of a directory: its short entry, the name to show, and where the short entry lies. */
export interface NamedEntry {
  /** The long name when a valid one precedes the short entry, else the 8.3 name. */
  readonly name: string;
  /** The 8.3 name (lookup matches it too, as Windows does). */
  readonly shortName: string;
  readonly entry: ShortEntry;
  /** Device byte offset of the short entry (identifies a file's entry). */
  readonly position: number;
}

const MAX_LONG_NAME_ENTRIES = 20; // 20 × 13 = 260 ≥ 255 characters

/**
 * Joins long-name slots to the short entry that follows them (fatgen103 §7). A long name is
 * used only when its slots come in order (the first on disk flagged 0x40 with the highest
 * sequence number, then each one lower down to 1, all carrying the same checksum) and the
 * checksum matches the short entry's name; otherwise the slots are orphans and the short
 * entry shows its 8.3 name (with the NT lower-case flags). Deleted slots and volume labels
 * break a sequence.
 */
export class LongNameAssembler {
  private parts: (readonly number[])[] = [];
  private checksum = -1;
  private expected = -1;

  /** Feeds one slot; returns the named entry a short slot completes. */
  push(slot: DirSlot, position: number): NamedEntry | undefined {
    switch (slot.kind) {
      case 'long': {
        const { order, last, checksum, units } = slot.entry;
        if (last && order >= 1 && order <= MAX_LONG_NAME_ENTRIES) {
          this.parts = [];
          this.parts[order] = units;
          this.checksum = checksum;
          this.expected = order - 1;
        } else if (!last && this.expected >= 1 && order === this.expected && checksum === this.checksum) {
          this.parts[order] = units;
          this.expected -= 1;
        } else {
          this.reset();
        }
        return undefined;
      }
      case 'short': {
        const longName = this.expected === 0 && shortNameChecksum(slot.entry.rawName) === this.checksum ? this.longName() : '';
        this.reset();
        return { name: longName || slot.entry.name, shortName: slot.entry.name, entry: slot.entry, position };
      }
      default:
        this.reset();
        return undefined;
    }
  }

  private longName(): string {
    const units: number[] = [];
    for (let order = 1; order < this.parts.length; order++) units.push(...(this.parts[order] ?? []));
    const end = units.indexOf(0);
    return String.fromCharCode(...(end < 0 ? units : units.slice(0, end)));
  }

  private reset(): void {
    this.parts = [];
    this.checksum = -1;
    this.expected = -1;
  }
}
