import { availableParallelism } from 'node:os';
import type { Piscina } from 'piscina';

/** One compressed cluster of a batch: its stored bytes in the input, and the part of it the read wants. */
export interface DecompressPiece {
  /** Where its stored bytes start in the input, and how many there may be. */
  at: number;
  stored: number;
  /** The bytes of the decompressed cluster wanted, and where they go in the output. */
  within: number;
  length: number;
  to: number;
}

/** One worker task: the compressed clusters of one read. Buffers are shared, not copied. */
export interface DecompressTask {
  algorithm: 'zlib' | 'zstd';
  clusterSize: number;
  input: Uint8Array;
  pieces: readonly DecompressPiece[];
  output: Uint8Array;
}

/**
 * Decompresses the compressed clusters of a qcow2 read on worker threads, one task per read
 * (dozens of clusters) so the round trip is paid once, not per 64 KiB cluster: the main
 * thread never inflates or zstd-decodes. The threads start with the first batch and end
 * with `close`. Buffers must live in SharedArrayBuffers.
 */
export class ClusterDecompressor {
  private pool: Promise<Piscina<DecompressTask, number>> | undefined;

  /**
   * Decodes every piece of `task`; returns the index of the first piece that does not
   * decode to exactly one cluster, or -1 when all did.
   */
  async run(task: DecompressTask): Promise<number> {
    // Piscina is loaded with the first batch: most images have no compressed clusters, and
    // loading it cost ~27 ms at every open (2026-11-28).
    this.pool ??= import('piscina').then(
      ({ Piscina }) =>
        new Piscina<DecompressTask, number>({
          filename: new URL('./decompress-worker-entry.cjs', import.meta.url).href,
          minThreads: 0,
          maxThreads: availableParallelism(),
          idleTimeout: 1000,
        }),
    );
    return (await this.pool).run(task);
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await (await pool)?.destroy();
  }
}
