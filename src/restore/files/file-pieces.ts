import { isAllZero } from '../../blockdev/index.js';
import { CofferError } from '../../errors/index.js';
import type { Filesystem, FsFileExtent, FsNode } from '../../fs/index.js';

/** Bytes read from a filesystem per call. */
export const PIECE_BYTES = 1 << 20;

/** A piece of a file's content: `bytes` at `offset`, or `zero` bytes of hole at `offset`. */
export type FilePiece = { offset: number; bytes: Uint8Array } | { offset: number; zero: number };

/**
 * A file's content in order, as data pieces of at most {@link PIECE_BYTES} and holes (from
 * the filesystem's extent map when it has one, and all-zero data pieces reported as holes too,
 * so targets stay sparse). A file that claims more data than its filesystem can hold (a
 * cross-linked or forged block map) fails with `E_FS_CORRUPT` instead of running on.
 */
export async function* filePieces(fs: Filesystem, file: FsNode, signal?: AbortSignal): AsyncIterable<FilePiece> {
  let dataBytes = 0;
  let position = 0;
  const extents: AsyncIterable<FsFileExtent> | FsFileExtent[] = fs.fileExtents?.(file) ?? [{ offset: 0, length: file.size, kind: 'data' }];
  for await (const extent of extents) {
    const end = Math.min(file.size, extent.offset + extent.length);
    if (extent.offset < position || end <= extent.offset) continue; // overlapping or empty: ignore
    if (extent.offset > position) yield { offset: position, zero: extent.offset - position };
    if (extent.kind === 'zero') {
      yield { offset: extent.offset, zero: end - extent.offset };
    } else {
      for (let at = extent.offset; at < end; at += PIECE_BYTES) {
        if (signal?.aborted) throw new CofferError('E_INTERRUPTED', 'interrupted');
        const want = Math.min(PIECE_BYTES, end - at);
        dataBytes += want;
        if (dataBytes > fs.size) throw new CofferError('E_FS_CORRUPT', `${fs.type}: file ${file.id} claims more data than the filesystem holds`);
        const bytes = await fs.read(file, at, want);
        if (bytes.length !== want) throw new CofferError('E_FS_CORRUPT', `${fs.type}: file ${file.id}: read ${bytes.length} of ${want} bytes at ${at}`);
        yield isAllZero(bytes) ? { offset: at, zero: want } : { offset: at, bytes };
      }
    }
    position = end;
  }
  if (position < file.size) yield { offset: position, zero: file.size - position };
}
