import type { VolumeSink } from './volume-sink.js';

/**
 * Cuts a byte stream into records of one fixed size for a {@link VolumeSink}; `finish` pads
 * the last record with zeros (tar readers ignore what follows the end-of-archive blocks).
 */
export class RecordWriter {
  private readonly record: Buffer;
  private filled = 0;
  /** Bytes handed to the sink so far (whole records). */
  written = 0;

  constructor(private readonly sink: VolumeSink, readonly recordSize: number) {
    this.record = Buffer.alloc(recordSize);
  }

  async write(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) {
      const take = Math.min(this.recordSize - this.filled, bytes.length - at);
      this.record.set(bytes.subarray(at, at + take), this.filled);
      this.filled += take;
      at += take;
      if (this.filled === this.recordSize) await this.flush();
    }
  }

  /** Pads and writes the last record; returns the volume's length in bytes. */
  async finish(): Promise<number> {
    if (this.filled > 0) {
      this.record.fill(0, this.filled);
      await this.flush();
    }
    return this.written;
  }

  private async flush(): Promise<void> {
    // The sink may keep the buffer until its write resolves; we reuse it only after.
    await this.sink.writeRecord(this.record);
    this.written += this.recordSize;
    this.filled = 0;
  }
}
