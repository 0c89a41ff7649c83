import { fillZeros } from '../../native/index.js';
import type { HostPlacement, ImageFile } from '../image-file.js';
import type { LogReplay } from './vhdx-log.js';

/** What the VHDX reader uses of its file; an {@link ImageFile} or a {@link ReplayedFile} over one. */
export type VhdxSource = Pick<ImageFile, 'path' | 'size' | 'readAt' | 'placeAt' | 'invalid' | 'unsupported' | 'close'>;

/**
 * A VHDX file as it reads after its log is replayed, in memory: the log's writes laid over the
 * file's bytes in order, and the file extended with zeros to the size the log needs. The file
 * itself is never written. Reads past the (extended) end throw `E_IMAGE_INVALID` like
 * {@link ImageFile.readAt}.
 */
export class ReplayedFile implements VhdxSource {
  readonly size: number;
  private readonly low: number;
  private readonly high: number;

  constructor(
    private readonly file: ImageFile,
    private readonly replay: LogReplay,
  ) {
    let size = Math.max(file.size, replay.lastFileOffset);
    let low = Infinity;
    let high = 0;
    for (const w of replay.writes) {
      const end = w.fileOffset + ('data' in w ? w.data.length : w.zeroLength);
      size = Math.max(size, end);
      low = Math.min(low, w.fileOffset);
      high = Math.max(high, end);
    }
    this.size = size;
    this.low = low;
    this.high = high;
  }

  get path(): string {
    return this.file.path;
  }

  async readAt(offset: number, length: number, into?: Uint8Array): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw this.invalid(`needs bytes ${offset}..${offset + length} but the file (with its log replayed) has ${this.size}`);
    }
    const target = into === undefined ? Buffer.alloc(length) : Buffer.from(into.buffer, into.byteOffset, length);
    const inFile = Math.max(0, Math.min(length, this.file.size - offset));
    if (inFile > 0) await this.file.readAt(offset, inFile, target);
    fillZeros(target, inFile);
    if (offset < this.high && offset + length > this.low) {
      for (const w of this.replay.writes) {
        const wLength = 'data' in w ? w.data.length : w.zeroLength;
        const from = Math.max(offset, w.fileOffset);
        const to = Math.min(offset + length, w.fileOffset + wLength);
        if (from >= to) continue;
        if ('data' in w) w.data.copy(target, from - offset, from - w.fileOffset, to - w.fileOffset);
        else fillZeros(target, from - offset, to - offset);
      }
    }
    return target;
  }

  /** The file's bytes where no write of the log lies over them and the file reaches; elsewhere they must be read. */
  placeAt(offset: number, length: number): HostPlacement {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw this.invalid(`needs bytes ${offset}..${offset + length} but the file (with its log replayed) has ${this.size}`);
    }
    if (offset + length > this.file.size || (offset < this.high && offset + length > this.low)) return { kind: 'read' };
    return this.file.placeAt(offset, length);
  }

  invalid(problem: string, offset?: number) {
    return this.file.invalid(problem, offset);
  }

  unsupported(feature: string) {
    return this.file.unsupported(feature);
  }

  close(): Promise<void> {
    return this.file.close();
  }
}
