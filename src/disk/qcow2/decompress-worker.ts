/**
 * The body of a cluster decompression thread (loaded by {@link ClusterDecompressor} through
 * piscina): inflates or zstd-decodes every compressed cluster of one read, taken from one
 * shared buffer of stored bytes, and copies the part of each cluster the read wants straight
 * into the shared output, so only offsets cross the thread boundary.
 */
import { Decompressor } from 'zstd-napi';
import { decompressClusterSync } from './compressed-cluster.js';
import type { DecompressTask } from './cluster-decompressor.js';

const zstd = new Decompressor();

/** Returns the index of the first cluster that does not decode to exactly one cluster, or -1. */
export default function decompress(task: DecompressTask): number {
  const input = Buffer.from(task.input.buffer, task.input.byteOffset, task.input.byteLength);
  for (const [i, piece] of task.pieces.entries()) {
    const cluster = decompressClusterSync(input.subarray(piece.at, piece.at + piece.stored), task.algorithm, task.clusterSize, zstd);
    if (cluster === null) return i;
    task.output.set(cluster.subarray(piece.within, piece.within + piece.length), piece.to);
  }
  return -1;
}
