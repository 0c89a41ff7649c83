import { ObjectKind } from '../format/envelope.js';
import { encodeLocatedEntry } from '../format/located-entry.js';
import { decodeTrailer, PACK_FOOTER_SIZE, trailerRange, UNADDRESSED_ID, type PackTrailer } from '../format/pack.js';
import type { Repository } from '../repository.js';

/** The stored size of object `key` (one listing of its own key), or null when absent. */
export async function objectSize(repo: Repository, key: string): Promise<number | null> {
  for await (const entry of repo.backend.list(key)) if (entry.key === key) return entry.size;
  return null;
}

/** The located entries (80 bytes each) of every chunk a pack's trailer names. */
export function trailerEntries(pack: Buffer, trailer: PackTrailer): Buffer[] {
  return trailer.chunks.map((chunk) => {
    const frame = trailer.frames[chunk.frame] as { offset: number; length: number };
    return encodeLocatedEntry({ id: Buffer.from(chunk.id), pack, frameOffset: frame.offset, frameLength: frame.length, chunkOffset: chunk.offset, chunkLength: chunk.length });
  });
}

/** The trailer of a whole pack held in memory, opened (authenticated) with the repository's key. */
export function trailerOfPack(repo: Repository, bytes: Buffer, key: string): PackTrailer {
  const range = trailerRange(bytes.subarray(bytes.length - PACK_FOOTER_SIZE), bytes.length, key);
  const sealed = bytes.subarray(range.offset, range.offset + range.length);
  return decodeTrailer(repo.codec.open(sealed, ObjectKind.packTrailer, key, UNADDRESSED_ID, { rehash: false, unaddressed: true }), bytes.length, key);
}
