import { promisify } from 'node:util';
import { inflateRaw, inflateRawSync } from 'node:zlib';
import type { Decompressor } from 'zstd-napi';

const inflateRawAsync = promisify(inflateRaw);

/**
 * Decompresses one qcow2 compressed cluster (deflate on libuv's thread pool, off the main
 * thread; zstd, whose binding is synchronous, in place: only for small reads, see
 * qcow2-image.ts, larger ones go to worker threads in batches). The stored bytes run to a sector boundary, so
 * they may end with the start of the next cluster's data: deflate ignores what follows its
 * stream's end, and a zstd frame's own length is found by walking its block headers
 * ({@link zstdFrameLength}) so that only the frame is decoded. Output is bounded by the
 * cluster size. Returns null when the data does not decode to exactly one cluster.
 */
export async function decompressCluster(data: Buffer, algorithm: 'zlib' | 'zstd', clusterSize: number, zstd: Decompressor): Promise<Buffer | null> {
  if (algorithm === 'zstd') return decompressClusterSync(data, algorithm, clusterSize, zstd);
  try {
    const out = await inflateRawAsync(data, { maxOutputLength: clusterSize });
    return out.length === clusterSize ? out : null;
  } catch {
    return null;
  }
}

/** {@link decompressCluster} on the calling thread, for a worker thread (decompress-worker.ts). */
export function decompressClusterSync(data: Buffer, algorithm: 'zlib' | 'zstd', clusterSize: number, zstd: Decompressor): Buffer | null {
  try {
    if (algorithm === 'zlib') {
      const out = inflateRawSync(data, { maxOutputLength: clusterSize });
      return out.length === clusterSize ? out : null;
    }
    const frame = zstdFrameLength(data);
    if (frame === null) return null;
    const out = zstd.decompress(data.subarray(0, frame));
    return out.length === clusterSize ? out : null;
  } catch {
    return null;
  }
}

/**
 * The length of the zstd frame at the start of `data` (RFC 8878 §3.1.1), or null if it is
 * not one or runs past the end: magic 0xFD2FB528, a frame header whose size follows from
 * its descriptor byte, blocks with 3-byte headers (bit 0 last block, bits 1-2 type, bits
 * 3-23 size; an RLE block stores one byte), and a 4-byte checksum when the descriptor says so.
 */
export function zstdFrameLength(data: Buffer): number | null {
  if (data.length < 6 || data.readUInt32LE(0) !== 0xfd2fb528) return null;
  const descriptor = data[4] as number;
  const fcsFlag = descriptor >> 6;
  const singleSegment = (descriptor >> 5) & 1;
  const checksum = (descriptor >> 2) & 1;
  const dictIdFlag = descriptor & 3;
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag] as number;
  const dictBytes = [0, 1, 2, 4][dictIdFlag] as number;
  let offset = 5 + (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
  for (;;) {
    if (offset + 3 > data.length) return null;
    const header = (data[offset] as number) | ((data[offset + 1] as number) << 8) | ((data[offset + 2] as number) << 16);
    const last = header & 1;
    const type = (header >> 1) & 3;
    const size = header >> 3;
    if (type === 3) return null;
    offset += 3 + (type === 1 ? 1 : size);
    if (last) break;
  }
  offset += checksum ? 4 : 0;
  return offset <= data.length ? offset : null;
}
