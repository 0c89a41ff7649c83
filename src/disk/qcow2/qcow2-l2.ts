/**
 * qcow2 L1 and L2 table entries (big-endian u64), decoded into what a guest cluster holds.
 *
 * L1 entry: bits 9..55 the offset of an L2 table (0: no table, the whole range it covers is
 * unallocated); bit 63 "copied" (ignored when reading).
 *
 * Standard L2 entry (bit 62 clear): bits 9..55 the host offset of the cluster (0: not
 * allocated here); bit 0 "reads as zeros" (version 3); bit 63 "copied".
 * Compressed L2 entry (bit 62 set), with x = 62 − (cluster_bits − 8): bits 0..x−1 the host
 * offset of the compressed data (byte-aligned), bits x..61 the number of 512-byte sectors
 * it takes beyond the one holding its start.
 * Extended L2 (incompatible feature bit 4): each entry is followed by a u64 bitmap of 32
 * subclusters: bit i set means subcluster i is allocated at host + i × subcluster size,
 * bit 32 + i set means it reads as zeros; neither means it comes from the backing file.
 */

/** What one guest cluster (or subcluster) is. */
export type ClusterMapping =
  | { kind: 'unallocated' }
  | { kind: 'zero' }
  | { kind: 'data'; host: number }
  | { kind: 'compressed'; host: number; length: number }
  | { kind: 'subclusters'; host: number; allocated: number; zero: number };

const OFFSET_MASK = 0x00ff_ffff_ffff_fe00n;
const COMPRESSED = 1n << 62n;
const ZERO_FLAG = 1n;

/** The L2 table offset an L1 entry points to, 0 for none. */
export function l2TableOffset(l1Entry: bigint): number {
  return Number(l1Entry & OFFSET_MASK);
}

/** Decodes one L2 entry (and its subcluster bitmap, with extended L2). */
export function decodeL2Entry(entry: bigint, bitmap: bigint | undefined, clusterBits: number): ClusterMapping {
  if (entry & COMPRESSED) {
    const x = BigInt(62 - (clusterBits - 8));
    const host = Number(entry & ((1n << x) - 1n));
    const sectors = Number((entry >> x) & ((1n << (62n - x)) - 1n));
    return { kind: 'compressed', host, length: (sectors + 1) * 512 - (host % 512) };
  }
  const host = Number(entry & OFFSET_MASK);
  if (bitmap !== undefined) {
    const allocated = Number(bitmap & 0xffff_ffffn);
    const zero = Number((bitmap >> 32n) & 0xffff_ffffn);
    if (allocated === 0 && zero === 0) return { kind: 'unallocated' };
    if (allocated === 0 && zero === 0xffff_ffff) return { kind: 'zero' };
    return { kind: 'subclusters', host, allocated, zero };
  }
  if (entry & ZERO_FLAG) return { kind: 'zero' };
  return host === 0 ? { kind: 'unallocated' } : { kind: 'data', host };
}

/**
 * {@link decodeL2Entry} of a standard entry (no extended L2) from its two big-endian 32-bit
 * halves, without BigInt (a copy decodes every cluster's entry); null for a compressed entry,
 * which the BigInt decoder takes.
 */
export function decodeStandardL2Entry(high: number, low: number): ClusterMapping | null {
  if (high & 0x4000_0000) return null;
  const host = (high & 0x00ff_ffff) * 0x1_0000_0000 + ((low & 0xffff_fe00) >>> 0);
  if (low & 1) return { kind: 'zero' };
  return host === 0 ? { kind: 'unallocated' } : { kind: 'data', host };
}
