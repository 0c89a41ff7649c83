import { Readable } from 'node:stream';
import { ZipFile } from 'yazl';
import { CofferError } from '../../errors/index.js';
import { type Filesystem, type FsNode, type ResolvedNode } from '../../fs/index.js';
import { encodeName } from '../../names/index.js';
import { filePieces, PIECE_BYTES } from './file-pieces.js';
import { emptyReport, isEntryProblem, noteStreamsLeftOut, safeWalk, type TreeReport } from './safe-walk.js';

/** What a zip stream held, and the entries it could not hold. */
export type ZipReport = TreeReport;

/**
 * Streams files from a guest filesystem as a zip archive (yazl: deflate, zip64 when sizes
 * need it, UTF-8 names): the same entries and safe names as {@link tarTree} (never absolute,
 * never `..`, control characters and `/` inside a name escaped), folders as folder entries,
 * symlinks as Info-ZIP symlink entries (mode 0120777, the target as content), second names of
 * a file as copies. A file whose content fails part-way is filled with zeros to its announced
 * size (the local header is written) and reported in `problems`.
 *
 * Returns the archive as a stream at once, and `report`, which settles when the walk ended
 * and every entry is in the archive (the stream still has to be read to its end).
 */
export function zipTree(fs: Filesystem, sources: readonly ResolvedNode[], signal?: AbortSignal): { stream: Readable; report: Promise<ZipReport> } {
  const zip = new ZipFile();
  const report = emptyReport();
  let failure: Error | undefined;
  zip.on('error', (error) => {
    failure = error;
    zip.outputStream.destroy(error);
  });
  const walk = (async () => {
    for await (const item of safeWalk(fs, sources, report, new Set(), 'zip')) {
      if (signal?.aborted) throw new CofferError('E_INTERRUPTED', 'interrupted');
      if (failure !== undefined) throw failure;
      const name = item.hostPath.join('/');
      const node = item.node;
      const mtime = new Date(Number.isFinite(node.mtimeMs) && node.mtimeMs > 0 ? node.mtimeMs : 0);
      try {
        if (item.kind === 'leave') continue;
        if (item.kind === 'enter') {
          if (name === '') continue;
          zip.addEmptyDirectory(name, { mtime, mode: 0o40000 | (node.mode & 0o7777 || 0o755) });
          noteStreamsLeftOut(report, item.guestPath, node, { done: 'archived' });
          report.directories++;
        } else if (node.type === 'symlink') {
          const target = await fs.readlink(node);
          zip.addBuffer(encodeName(target), name, { mtime, mode: 0o120777, compress: false });
          report.symlinks++;
        } else if (node.type === 'file') {
          const entry = { path: item.guestPath };
          zip.addReadStreamLazy(name, { mtime, mode: 0o100000 | (node.mode & 0o7777 || 0o644), size: node.size, forceZip64Format: node.size >= 0xffffffff }, (cb) => cb(null, Readable.from(content(fs, node, entry, report, signal))));
          report.files++;
          noteStreamsLeftOut(report, item.guestPath, node, { done: 'archived' });
        } else {
          report.skipped.push({ path: item.guestPath, reason: `${node.type} not archived` });
        }
      } catch (error) {
        if (!isEntryProblem(error)) throw error;
        report.problems.push({ path: item.guestPath, code: error.code, message: error.message });
      }
    }
    zip.end();
    return report;
  })();
  walk.catch((error: unknown) => zip.outputStream.destroy(error as Error));
  return { stream: zip.outputStream, report: walk };
}

/** One file's bytes in pieces, holes as zeros; a read that fails is reported and the rest is zeros. */
async function* content(fs: Filesystem, node: FsNode, entry: { path: string }, report: ZipReport, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
  let written = 0;
  const zeros = Buffer.alloc(PIECE_BYTES);
  try {
    for await (const piece of filePieces(fs, node, signal)) {
      if ('bytes' in piece) {
        written += piece.bytes.length;
        yield piece.bytes;
      } else {
        for (let left = piece.zero; left > 0; left -= PIECE_BYTES) {
          const n = Math.min(PIECE_BYTES, left);
          written += n;
          yield zeros.subarray(0, n);
        }
      }
    }
  } catch (error) {
    if (!isEntryProblem(error)) throw error;
    report.problems.push({ path: entry.path, code: error.code, message: `${error.message} (the archive holds zeros from there)` });
    for (let left = node.size - written; left > 0; left -= PIECE_BYTES) {
      const n = Math.min(PIECE_BYTES, left);
      written += n;
      yield zeros.subarray(0, n);
    }
  }
  report.bytes += written;
}
