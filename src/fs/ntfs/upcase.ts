import { fsCorrupt } from '../fs-errors.js';

/**
 * $UpCase (MFT record 10): the volume's table mapping each UTF-16 code unit to its upper
 * case, 65536 little-endian u16 (128 KiB). Directory indexes are sorted by comparing names
 * unit by unit through it (then by length), so lookups must collate the same way.
 */
export class UpcaseTable {
  private constructor(private readonly table: Uint16Array) {}

  static readonly BYTES = 65536 * 2;

  static parse(bytes: Uint8Array): UpcaseTable {
    if (bytes.length !== UpcaseTable.BYTES) throw fsCorrupt('ntfs', `$UpCase holds ${bytes.length} bytes instead of ${UpcaseTable.BYTES}`);
    const table = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) table[i] = bytes[i * 2]! | (bytes[i * 2 + 1]! << 8);
    return new UpcaseTable(table);
  }

  /** Upper-cases UTF-16 code units. */
  upcase(units: Uint16Array): Uint16Array {
    const out = new Uint16Array(units.length);
    for (let i = 0; i < units.length; i++) out[i] = this.table[units[i]!]!;
    return out;
  }

  /** The index's order on names: <0, 0, >0, ignoring case as the volume defines it. */
  compare(a: Uint16Array, b: Uint16Array): number {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const d = this.table[a[i]!]! - this.table[b[i]!]!;
      if (d !== 0) return d;
    }
    return a.length - b.length;
  }
}

/** A string's UTF-16 code units. */
export function utf16Units(name: string): Uint16Array {
  const out = new Uint16Array(name.length);
  for (let i = 0; i < name.length; i++) out[i] = name.charCodeAt(i);
  return out;
}
