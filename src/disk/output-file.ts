import { stat, type FileHandle } from 'node:fs/promises';
import { CofferError } from '../errors/index.js';
import { DirectWriter } from './direct-writes.js';
import { TargetFile } from './target-file.js';

/** Pieces one `pwritev` takes on Linux. */
const IOV_MAX = 1024;

/**
 * An image file being written by a restore or a convert: created (never replacing a file
 * unless asked), written at positions, and turned into the errors a user can act on
 * (`E_NO_SPACE`, `E_TARGET_UNWRITABLE`). `finish` runs the last writes, syncs and closes;
 * `abort` closes and removes the file. Every image writer (qcow2, VHD, VHDX, VMDK) writes
 * through one.
 *
 * Writes of whole 4 KiB sectors at sector offsets (a qcow2's clusters, a VHDX's blocks) go
 * past the page cache where the file's filesystem allows it (direct-writes.ts, as a raw
 * target's do); the rest (tables, headers, a VHD's blocks behind their sector bitmaps, a
 * streamOptimized VMDK's grains) through it. A write through the page cache first waits for
 * the direct writes in flight over the same bytes.
 */
export class OutputFile {
  private readonly handle: FileHandle;

  private constructor(
    /** The file written: a new one, or one that replaces an existing image once finished (target-file.ts). */
    private readonly file: TargetFile,
    private readonly direct: DirectWriter | undefined,
  ) {
    this.handle = file.handle;
  }

  /** The image's path, as the user named it. */
  get path(): string {
    return this.file.path;
  }

  /**
   * Creates `path` (mode 0600); an existing file is replaced only with `overwrite`, and only
   * once `finish` succeeds (target-file.ts). `direct: false` keeps every write in the page cache.
   */
  static async create(path: string, options: { overwrite: boolean; direct?: boolean }): Promise<OutputFile> {
    const existing = await stat(path).catch(() => undefined);
    const file = existing?.isBlockDevice() === true ? await TargetFile.device(path, options) : await TargetFile.create(path, existing, options);
    return new OutputFile(file, options.direct === false ? undefined : await DirectWriter.open(file.writePath));
  }

  async writeAt(data: Uint8Array, offset: number): Promise<void> {
    if (await this.wentDirect([data], offset, data.length)) return;
    let done = 0;
    try {
      while (done < data.length) {
        const { bytesWritten } = await this.handle.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
      }
    } catch (error) {
      throw this.translate(error);
    }
  }

  /**
   * Writes `chunks` one after the other from `offset`, in as few system calls as the kernel
   * allows (one `pwritev` of up to {@link IOV_MAX} pieces, continued after a short write).
   */
  async writevAt(chunks: readonly Uint8Array[], offset: number): Promise<void> {
    if (await this.wentDirect(chunks, offset, chunks.reduce((sum, chunk) => sum + chunk.length, 0))) return;
    let position = offset;
    for (let first = 0; first < chunks.length; first += IOV_MAX) {
      let batch = chunks.slice(first, first + IOV_MAX);
      let left = batch.reduce((sum, chunk) => sum + chunk.length, 0);
      while (left > 0) {
        let written: number;
        try {
          ({ bytesWritten: written } = await this.handle.writev(batch, position));
        } catch (error) {
          throw this.translate(error);
        }
        if (written === 0) throw this.translate(new Error(`no byte written at ${position}`));
        position += written;
        left -= written;
        // A short write: drop what went through and go on with the rest.
        while (batch.length > 0 && written >= (batch[0] as Uint8Array).length) written -= (batch.shift() as Uint8Array).length;
        if (written > 0) batch = [(batch[0] as Uint8Array).subarray(written), ...batch.slice(1)];
      }
    }
  }

  /** Sets the file's length (a longer file ends in a hole). */
  async truncate(length: number): Promise<void> {
    await this.guard(async () => {
      await this.direct?.drain();
      await this.handle.truncate(length);
    });
  }

  /** Extends the file (with a hole) to at least `length` bytes. */
  async ensureLength(length: number): Promise<void> {
    await this.guard(async () => {
      await this.direct?.drain();
      if ((await this.handle.stat()).size < length) await this.handle.truncate(length);
    });
  }

  /** Makes what was written so far durable. */
  async sync(): Promise<void> {
    await this.guard(async () => {
      await this.direct?.drain();
      await this.handle.datasync();
    });
  }

  /** Runs `last` (the final writes), syncs and closes, whatever happens. */
  async finish(last: () => Promise<void>): Promise<void> {
    try {
      await last();
      await this.direct?.close(); // every direct write done (or its failure thrown)
      await this.handle.datasync();
    } catch (error) {
      await this.abort();
      throw this.translate(error);
    }
    await this.handle.close();
    await this.file.commit();
  }

  /** Closes and removes the file (an image it was to replace stays as it was). */
  async abort(): Promise<void> {
    await this.direct?.close().catch(() => undefined);
    await this.handle.close().catch(() => undefined);
    await this.file.discard();
  }

  /**
   * Writes `chunks` (`length` bytes at `offset`) past the page cache when they are whole sectors
   * and the filesystem takes it; otherwise waits for the direct writes in flight over those
   * bytes and answers false (the caller writes them through the page cache).
   */
  private async wentDirect(chunks: readonly Uint8Array[], offset: number, length: number): Promise<boolean> {
    if (this.direct === undefined || length === 0) return false;
    try {
      if (this.direct.accepts(offset, length) && (await this.direct.write(chunks, offset))) return true;
      await this.direct.settleRange(offset, offset + length);
      return false;
    } catch (error) {
      throw this.translate(error);
    }
  }

  private async guard(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (error) {
      throw this.translate(error);
    }
  }

  private translate(error: unknown): CofferError {
    return this.file.translate(error);
  }
}
