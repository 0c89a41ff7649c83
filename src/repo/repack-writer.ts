import { ObjectKind } from './format/envelope.js';
import { encodeSegment, MAX_SEGMENT_ENTRIES } from './format/index-segment.js';
import { encodeLocatedEntry } from './format/located-entry.js';
import { encodeTrailer, packFooter, packHeader, PACK_FOOTER_SIZE, PACK_HEADER_SIZE, UNADDRESSED_ID } from './format/pack.js';
import { packKey, segmentKey } from './layout.js';
import { PACK_DEFAULTS } from './pack-writer.js';
import type { Repository } from './repository.js';

/** A sealed frame (envelope of kind 9) and the chunks its table holds, in table order. */
export interface SealedFrame {
  sealed: Buffer;
  /** Offsets are in the frame's plaintext, as its table says. */
  chunks: { id: Buffer; offset: number; length: number }[];
}

/**
 * Writes the frames prune keeps out of repacked packs into new packs (format/pack.ts), then
 * one index segment per 65,536 of their chunks (format/index-segment.ts). Unlike the backup's
 * {@link PackWriter} it takes frames already sealed: a frame whose chunks are all still used
 * is moved byte for byte (frames are not bound to their pack or offset: their envelope's AAD
 * has no id, docs/repository-format.md §19.2), so only frames that lose chunks are
 * recompressed (by the caller, on the codec workers).
 *
 * Order: {@link addFrame} puts a pack once it reaches the pack size; {@link finish} puts the
 * last pack, then the segments naming every chunk written. Nothing refers to the new packs
 * before their segments exist, and nothing old is deleted here: the caller deletes the old
 * packs only after {@link finish} (and a sync).
 *
 * Memory: the pack being filled (≤ pack size + one frame) and 80 bytes per chunk written.
 */
export class RepackWriter {
  private frames: { offset: number; sealed: Buffer; chunks: SealedFrame['chunks'] }[] = [];
  private packBytes = PACK_HEADER_SIZE;
  private entries: Buffer[] = [];
  /** What was written: packs, segments, and their stored bytes (`packBytes`: the packs' alone). */
  readonly written = { packs: 0, segments: 0, bytes: 0, packBytes: 0, chunks: 0 };
  /** With `remember`: the new located entry of each chunk written, by chunk id (hex). */
  readonly placed = new Map<string, Buffer>();

  constructor(
    private readonly repo: Repository,
    private readonly options: { packSize?: number; remember?: boolean } = {},
  ) {}

  private get packSize(): number {
    return this.options.packSize ?? PACK_DEFAULTS.packSize;
  }

  /** Appends a frame to the pack being filled; puts the pack when it is full. */
  async addFrame(frame: SealedFrame): Promise<void> {
    this.frames.push({ offset: this.packBytes, sealed: frame.sealed, chunks: frame.chunks });
    this.packBytes += frame.sealed.length;
    if (this.packBytes >= this.packSize) await this.closePack();
  }

  /** Puts the last pack and the index segments of every chunk written. */
  async finish(): Promise<void> {
    if (this.frames.length > 0) await this.closePack();
    while (this.entries.length > 0) {
      const plaintext = encodeSegment(this.entries.splice(0, MAX_SEGMENT_ENTRIES));
      const id = this.repo.codec.idOf(plaintext);
      const sealed = await this.repo.pool.seal(plaintext, ObjectKind.indexSegment, id);
      await this.repo.backend.put(segmentKey(id.toString('hex')), sealed);
      this.written.segments += 1;
      this.written.bytes += sealed.length;
    }
  }

  private async closePack(): Promise<void> {
    const frames = this.frames;
    this.frames = [];
    const trailerPlain = encodeTrailer({
      frames: frames.map((f) => ({ offset: f.offset, length: f.sealed.length })),
      chunks: frames.flatMap((f, frame) => f.chunks.map((c) => ({ id: c.id, frame, offset: c.offset, length: c.length }))),
    });
    const trailer = this.repo.codec.seal(trailerPlain, ObjectKind.packTrailer, UNADDRESSED_ID);
    const size = this.packBytes + trailer.length + PACK_FOOTER_SIZE;
    const pack = Buffer.from(new SharedArrayBuffer(size));
    packHeader().copy(pack, 0);
    for (const frame of frames) frame.sealed.copy(pack, frame.offset);
    trailer.copy(pack, this.packBytes);
    packFooter(trailer.length).copy(pack, this.packBytes + trailer.length);
    this.packBytes = PACK_HEADER_SIZE;
    const packId = await this.repo.pool.sha256(pack);
    await this.repo.backend.put(packKey(packId.toString('hex')), pack);
    this.written.packs += 1;
    this.written.bytes += size;
    this.written.packBytes += size;
    for (const frame of frames) {
      for (const chunk of frame.chunks) {
        const entry = encodeLocatedEntry({ id: chunk.id, pack: packId, frameOffset: frame.offset, frameLength: frame.sealed.length, chunkOffset: chunk.offset, chunkLength: chunk.length });
        this.entries.push(entry);
        if (this.options.remember === true) this.placed.set(chunk.id.toString('hex'), entry);
        this.written.chunks += 1;
      }
    }
  }
}
