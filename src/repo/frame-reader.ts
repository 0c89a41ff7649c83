import { CofferError, isCofferError } from '../errors/index.js';
import { readRange } from './backend/read-range.js';
import { decodeLocatedEntry, type ChunkLocation } from './format/located-entry.js';
import { chunkInFrame } from './frame-codec.js';
import { packKey } from './layout.js';
import type { Repository } from './repository.js';

/**
 * Decoded frames kept (≤ 2 MiB each): more than a restore has in flight (its read-ahead is
 * `threads × 4` frames' worth of blocks, restore-disk.ts), so no frame is decoded twice.
 */
const CACHED_FRAMES = 12;

interface OpenedFrame {
  plaintext: Buffer;
  table: { id: Buffer; offset: number; length: number }[];
}

/**
 * Reads chunks of a format 2 repository through their located entries: one ranged read of the
 * chunk's frame, opened on a worker (authenticated, decompressed; every chunk rehashed in an
 * unencrypted repository), then the chunk checked against the frame's table and copied out.
 * The last few decoded frames are kept, so a sequential restore decodes each frame once for
 * its up to 8 blocks, and concurrent reads of one frame share one fetch.
 */
export class FrameReader {
  private readonly cache = new Map<string, Promise<OpenedFrame>>();
  /** Frames fetched and their stored bytes. */
  readonly fetched = { frames: 0, bytes: 0 };

  constructor(
    private readonly repo: Repository,
    private readonly cachedFrames = CACHED_FRAMES,
  ) {}

  /** Reads the chunk of a located entry into `target` (exactly its length). */
  async read(entry: Buffer, target: Uint8Array): Promise<void> {
    const location = decodeLocatedEntry(entry, 'index entry');
    if (location.chunkLength !== target.length) {
      throw new CofferError('E_CORRUPT_OBJECT', `chunk ${location.id.toString('hex')} holds ${location.chunkLength} bytes where ${target.length} are needed`, { subject: { object: location.id.toString('hex') } });
    }
    const frame = await this.frame(location);
    const name = frameName(location);
    chunkInFrame(frame.table, location.id, location.chunkOffset, location.chunkLength, name);
    target.set(frame.plaintext.subarray(location.chunkOffset, location.chunkOffset + location.chunkLength));
  }

  private frame(location: ChunkLocation): Promise<OpenedFrame> {
    const key = `${location.pack.toString('hex')}@${location.frameOffset}`;
    let frame = this.cache.get(key);
    if (frame === undefined) {
      frame = this.fetch(location);
      frame.catch(() => this.cache.delete(key));
      this.cache.set(key, frame);
      while (this.cache.size > this.cachedFrames) this.cache.delete(this.cache.keys().next().value as string);
    } else {
      this.cache.delete(key);
      this.cache.set(key, frame); // most recent last
    }
    return frame;
  }

  private async fetch(location: ChunkLocation): Promise<OpenedFrame> {
    const name = frameName(location);
    let blob: Buffer;
    try {
      blob = await readRange(this.repo.backend, packKey(location.pack.toString('hex')), location.frameOffset, location.frameLength);
    } catch (error) {
      if (isCofferError(error, 'E_CORRUPT_OBJECT')) throw new CofferError('E_MISSING_OBJECT', `frame ${name} is missing: the pack is shorter than the frame's end`, { subject: { object: name }, cause: error });
      throw error;
    }
    this.fetched.frames += 1;
    this.fetched.bytes += blob.length;
    // The plaintext crosses back as a copy: a shared buffer per frame measured faster but held
    // 384 MiB RSS in the bench's restore (shared memory is freed late), 2026-11-26.
    const opened = await this.repo.pool.openFrame(blob, { name, rehash: false, keep: true });
    return { plaintext: opened.plaintext as Buffer, table: opened.table };
  }
}

/** How a frame is named in messages: `packs/<pack>@<offset>`. */
export function frameName(location: Pick<ChunkLocation, 'pack' | 'frameOffset'>): string {
  return `${packKey(location.pack.toString('hex'))}@${location.frameOffset}`;
}
