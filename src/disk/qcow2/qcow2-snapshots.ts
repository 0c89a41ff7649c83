/**
 * qcow2 internal snapshots: the snapshot table at `snapshots_offset`, `nb_snapshots`
 * entries, each 8-byte aligned. Big-endian.
 *
 * ```
 * offset size field
 *      0    8 l1_table_offset: the snapshot's own L1 table
 *      8    4 l1_size
 *     12    2 id_str_size
 *     14    2 name_size
 *     16    4 date_sec
 *     20    4 date_nsec
 *     24    8 vm_clock_nsec
 *     32    4 vm_state_size
 *     36    4 extra_data_size
 *     40    n extra data: [0..8) vm_state_size_large, [8..16) disk_size (the virtual size
 *              when the snapshot was taken), [16..24) icount
 *  40+n     . id string, then name (no terminator), then padding to a multiple of 8
 * ```
 */
import type { ImageFile } from '../image-file.js';

const FIXED = 40;
const MAX_SNAPSHOTS = 65536;
const MAX_EXTRA = 1024;

/** One internal snapshot. */
export interface Qcow2Snapshot {
  id: string;
  name: string;
  /** When it was taken (ISO 8601 UTC). */
  date: string;
  l1TableOffset: number;
  l1Size: number;
  /** The virtual size at the time, when the image records it. */
  diskSize: number | null;
}

/** Reads the snapshot table, bounding every count and offset. */
export async function readQcow2Snapshots(file: ImageFile, offset: number, count: number): Promise<Qcow2Snapshot[]> {
  if (count === 0) return [];
  if (count > MAX_SNAPSHOTS) throw file.invalid(`qcow2 declares ${count} snapshots`);
  const snapshots: Qcow2Snapshot[] = [];
  let at = offset;
  for (let i = 0; i < count; i++) {
    const fixed = await file.readAt(at, FIXED);
    const idSize = fixed.readUInt16BE(12);
    const nameSize = fixed.readUInt16BE(14);
    const extraSize = fixed.readUInt32BE(36);
    if (extraSize > MAX_EXTRA) throw file.invalid(`qcow2 snapshot ${i} has ${extraSize} bytes of extra data`);
    const rest = await file.readAt(at + FIXED, extraSize + idSize + nameSize);
    const l1Offset = fixed.readBigUInt64BE(0);
    if (l1Offset > BigInt(Number.MAX_SAFE_INTEGER)) throw file.invalid(`qcow2 snapshot ${i} L1 offset is out of range`);
    const diskSize = extraSize >= 16 ? rest.readBigUInt64BE(8) : null;
    if (diskSize !== null && diskSize > 2n ** 56n) throw file.invalid(`qcow2 snapshot ${i} disk size is absurd`);
    snapshots.push({
      id: rest.subarray(extraSize, extraSize + idSize).toString('utf8'),
      name: rest.subarray(extraSize + idSize, extraSize + idSize + nameSize).toString('utf8'),
      date: new Date(fixed.readUInt32BE(16) * 1000 + Math.floor(fixed.readUInt32BE(20) / 1e6)).toISOString(),
      l1TableOffset: Number(l1Offset),
      l1Size: fixed.readUInt32BE(8),
      diskSize: diskSize === null ? null : Number(diskSize),
    });
    at += Math.ceil((FIXED + extraSize + idSize + nameSize) / 8) * 8;
  }
  return snapshots;
}
