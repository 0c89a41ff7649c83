import { Slots } from '../../concurrency/index.js';
import { CofferError, isCofferError } from '../../errors/index.js';
import { decodeLocatedEntry, type ChunkLocation } from '../format/located-entry.js';
import { chunkInFrame } from '../frame-codec.js';
import { frameName, readStoredFrame } from '../frame-reader.js';
import { packKey } from '../layout.js';
import type { Repository } from '../repository.js';

/**
 * Frames whose tables are kept: a pack's chunks are placed together, frame after frame, so
 * the chunks of one frame are checked one after the other; a few frames more allow some
 * disorder. A table is 48 bytes a chunk.
 */
const FRAMES_KEPT = 16;

/**
 * Frame reads in flight: enough to keep a local disk or an object store busy (the codec
 * pool opens them on every core) without a request per frame of a whole pack at once.
 */
const FRAMES_READ_AT_ONCE = 8;

type FrameTable = { id: Buffer; offset: number; length: number }[];

/**
 * Checks that re-packed chunks read back intact from a format 2 destination, a frame at a
 * time: a frame is read once (one ranged read), opened on a worker with its key and every
 * chunk in it rehashed to the id its table names (frame-codec.ts `openFrame` with `rehash`),
 * nothing but the table crossing back; then each chunk's located entry must match the table
 * (same id at the same offset and length). The same guarantee as reading each chunk back and
 * rehashing it, with one read and one worker task per frame instead of per chunk: a frame of
 * small file chunks holds up to 64 (100,000 small files, 2026-11-27).
 *
 * `check` rejects with `E_VERIFY_FAILED` naming the chunk and its pack when the frame is missing,
 * does not open, or does not hold the chunk; other errors (I/O) pass as they are.
 */
export class FrameReadBack {
  private readonly tables = new Map<string, Promise<FrameTable>>();
  /** Frames read at once: a pack's chunks are placed together, and a read per frame of them all at once would flood the store. */
  private readonly reads = new Slots(FRAMES_READ_AT_ONCE);
  /** `onRead`: told the stored bytes of each frame read. */
  constructor(
    private readonly repo: Repository,
    private readonly onRead: (bytes: number) => void,
  ) {}

  /**
   * Resolves with `located` once chunk `id`, placed there (its 80-byte entry), is read back
   * intact. A chain of promises, no async function: every chunk of a pack waits here at once.
   */
  check(located: Buffer, id: Buffer): Promise<Buffer> {
    let location: ChunkLocation;
    try {
      location = decodeLocatedEntry(located, 'index entry');
    } catch (error) {
      return Promise.reject(this.failed(id, located, error));
    }
    const name = frameName(location);
    return this.table(location, name).then(
      (table) => {
        try {
          if (!location.id.equals(id)) throw new CofferError('E_CORRUPT_OBJECT', `the entry names chunk ${location.id.toString('hex')}`);
          chunkInFrame(table, id, location.chunkOffset, location.chunkLength, name);
        } catch (error) {
          throw this.failed(id, located, error);
        }
        return located;
      },
      (error: unknown) => {
        throw this.failed(id, located, error);
      },
    );
  }

  /** `E_VERIFY_FAILED` for a chunk whose frame is missing or damaged; other errors (I/O) as they are. */
  private failed(id: Buffer, located: Buffer, error: unknown): unknown {
    if (!isCofferError(error, 'E_CORRUPT_OBJECT') && !isCofferError(error, 'E_MISSING_OBJECT')) return error;
    return new CofferError('E_VERIFY_FAILED', `chunk ${id.toString('hex')} written to ${this.repo.location} does not read back intact: ${error.message}`, {
      subject: { repository: this.repo.location, object: packKey(located.subarray(32, 64).toString('hex')) },
      cause: error,
    });
  }

  private table(location: ChunkLocation, name: string): Promise<FrameTable> {
    const found = this.tables.get(name);
    if (found !== undefined) return found;
    const table = this.reads.run(() => this.fetch(location, name));
    table.catch(() => this.tables.get(name) === table && this.tables.delete(name)); // a failed read is not kept
    this.tables.set(name, table);
    if (this.tables.size > FRAMES_KEPT) this.tables.delete(this.tables.keys().next().value as string);
    return table;
  }

  private async fetch(location: ChunkLocation, name: string): Promise<FrameTable> {
    const blob = await readStoredFrame(this.repo, location, name);
    this.onRead(blob.length);
    return (await this.repo.pool.openFrame(blob, { name, rehash: true, keep: false })).table;
  }
}
