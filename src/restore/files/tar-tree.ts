import type { Writable } from 'node:stream';
import { OutputStream } from '../../disk/index.js';
import { CofferError } from '../../errors/index.js';
import { type Filesystem, type FsNode, type ResolvedNode } from '../../fs/index.js';
import { encodeName } from '../../names/index.js';
import { filePieces, PIECE_BYTES } from './file-pieces.js';
import { readXattrs } from './node-xattrs.js';
import { emptyReport, isEntryProblem, noteStreamsLeftOut, safeWalk, type TreeReport } from './safe-walk.js';
import { TAR_END, tarHeader, tarPadding, type TarEntry } from './tar-header.js';

/** What a tar stream held, and the entries it could not hold. */
export type TarReport = TreeReport;

/** How to write a tar stream. */
export interface TarOptions {
  signal?: AbortSignal | undefined;
  /**
   * Headers carry the ids only, no names (GNU tar's `--numeric-owner` when it creates): a
   * `tar -x` then gives the recorded ids. Default: the names too, where the filesystem
   * records them (a file snapshot).
   */
  numericOwner?: boolean | undefined;
}

/**
 * Streams files from a guest filesystem as a POSIX tar archive (pax format, tar-header.ts)
 * into `out`: the same entries, safe names and problems as {@link extractTree}, with modes,
 * owners (ids, and names where the filesystem records them), mtimes and extended attributes
 * (POSIX ACLs too: tar-header.ts; NTFS streams as `user.NAME` and DOS attributes as
 * `system.ntfs_attrib_be`, as ntfs-3g shows them) in the headers, second names of a file as
 * hard-link entries. Names and link targets are the guest's bytes,
 * UTF-8 or not (`tar -x` recreates `caf\xe9` as the four bytes it was). A file whose content fails part-way has its announced size filled with
 * zeros (a tar header cannot be taken back) and is reported in `problems`. `out` is written
 * with backpressure and never ended (it may be stdout); its failure (a full disk, a reader
 * gone) ends the run with `E_NO_SPACE` or `E_TARGET_UNWRITABLE`.
 */
export async function tarTree(fs: Filesystem, sources: readonly ResolvedNode[], out: Writable, options: TarOptions = {}): Promise<TarReport> {
  const { signal } = options;
  const names = options.numericOwner !== true;
  const report: TarReport = emptyReport();
  const output = new OutputStream(out);
  const linked = new Map<string, Uint8Array>(); // node id → path of its first name
  const header = (node: FsNode, path: Uint8Array, type: TarEntry['type'], extra: Partial<TarEntry> = {}): Buffer =>
    tarHeader({ path, type, mode: node.mode & 0o7777, uid: node.uid, gid: node.gid, ...(names ? { user: node.user, group: node.group } : {}), mtimeMs: node.mtimeMs, size: 0, ...extra });
  /**
   * The entry's extended attributes as the header takes them, archive-only ones included (a
   * hard link's second name carries none: tar sets them on the first); its streams that none
   * carries are noted.
   */
  const xattrs = async (node: FsNode, guestPath: string): Promise<Partial<TarEntry>> => {
    const list = await readXattrs(fs, node, guestPath, report);
    noteStreamsLeftOut(report, guestPath, node, { done: 'archived', xattrs: list });
    return list.length === 0 ? {} : { xattrs: list.map((x) => ({ name: encodeName(x.name), value: x.value })) };
  };

  for await (const item of safeWalk(fs, sources, report, new Set(), 'bytes')) {
    if (signal?.aborted) throw new CofferError('E_INTERRUPTED', 'interrupted');
    const path = encodeName(item.hostPath.join('/'));
    const node = item.node;
    try {
      if (item.kind === 'leave') continue;
      if (item.kind === 'enter') {
        if (path.length === 0) continue;
        await output.write(header(node, Buffer.concat([path, Buffer.from('/')]), 'directory', await xattrs(node, item.guestPath)));
        report.directories++;
      } else if (node.type === 'symlink') {
        const target = await fs.readlink(node);
        await output.write(header(node, path, 'symlink', { linkPath: encodeName(target), ...await xattrs(node, item.guestPath) }));
        report.symlinks++;
      } else if (node.type === 'file' && node.nlink > 1 && linked.has(node.id)) {
        await output.write(header(node, path, 'link', { linkPath: linked.get(node.id) as Uint8Array }));
        report.hardLinks++;
      } else if (node.type === 'file') {
        await writeFile(fs, node, header(node, path, 'file', { size: node.size, ...await xattrs(node, item.guestPath) }), output, report, item.guestPath, signal);
        if (node.nlink > 1) linked.set(node.id, path);
      } else {
        report.skipped.push({ path: item.guestPath, reason: `${node.type} not archived` });
      }
    } catch (error) {
      if (!isEntryProblem(error)) throw error;
      report.problems.push({ path: item.guestPath, code: error.code, message: error.message });
    }
  }
  await output.write(TAR_END);
  await output.finish();
  return report;
}

/** One file's entry: the header, then its content in pieces with backpressure, holes as zeros, then padding. */
async function writeFile(fs: Filesystem, node: FsNode, header: Buffer, output: OutputStream, report: TarReport, guestPath: string, signal: AbortSignal | undefined): Promise<void> {
  let written = 0;
  let failure: CofferError | undefined;
  const zeros = Buffer.alloc(PIECE_BYTES);
  const put = async (bytes: Uint8Array): Promise<void> => {
    await output.write(bytes);
    written += bytes.length;
  };
  const fillTo = async (end: number): Promise<void> => {
    for (let left = end - written; left > 0; left -= PIECE_BYTES) await put(zeros.subarray(0, Math.min(PIECE_BYTES, left)));
  };
  await output.write(header);
  try {
    for await (const piece of filePieces(fs, node, signal)) {
      if ('bytes' in piece) await put(piece.bytes);
      else await fillTo(written + piece.zero);
    }
  } catch (error) {
    if (!isEntryProblem(error)) throw error;
    failure = error;
  }
  // The header announced node.size bytes (filePieces never gives more): a read that failed is made up with zeros.
  await fillTo(node.size);
  await output.write(tarPadding(node.size));
  report.files++;
  report.bytes += written;
  if (failure !== undefined) {
    report.problems.push({ path: guestPath, code: failure.code, message: `${failure.message} (the archive holds zeros from there)` });
  }
}
