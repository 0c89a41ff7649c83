import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { pack as tarPack, type Pack } from 'tar-stream';
import { OutputStream } from '../../disk/index.js';
import { CofferError } from '../../errors/index.js';
import type { Filesystem, FsNode, ResolvedNode } from '../../fs/index.js';
import { filePieces, PIECE_BYTES } from './file-pieces.js';
import { emptyReport, isEntryProblem, safeWalk, type TreeReport } from './safe-walk.js';

type TarHeader = Parameters<Pack['entry']>[0];
type TarType = TarHeader['type'];

/** What a tar stream held, and the entries it could not hold. */
export type TarReport = TreeReport;

/**
 * Streams files from a guest filesystem as a POSIX tar archive (ustar, with PAX headers for
 * long or non-ASCII names) into `out`: the same entries, safe names and problems as
 * {@link extractTree}, with modes, owners and mtimes in the headers, second names of a file
 * as hard-link entries. A file whose content fails part-way has its announced size filled with
 * zeros (a tar header cannot be taken back) and is reported in `problems`.
 */
export async function tarTree(fs: Filesystem, sources: readonly ResolvedNode[], out: Writable, signal?: AbortSignal): Promise<TarReport> {
  const report: TarReport = emptyReport();
  const archive = tarPack();
  // The archive is pumped into `out` with backpressure; `out` is never ended (it may be stdout).
  const output = new OutputStream(out);
  const piped = (async () => {
    for await (const chunk of archive) await output.write(chunk as Uint8Array);
    await output.finish();
  })();
  // When the output fails (a full disk, a reader gone), every wait on the archive ends with it.
  const stopped = new Promise<never>((_, reject) => piped.catch(reject));
  stopped.catch(() => {});
  piped.catch((error: unknown) => archive.destroy(error as Error));
  const sink: Sink = { archive, stopped };
  const linked = new Map<string, string>();
  const header = (node: FsNode, name: string, type: TarType, extra: Partial<TarHeader> = {}): TarHeader => ({
    name,
    type,
    mode: node.mode & 0o7777,
    uid: node.uid,
    gid: node.gid,
    mtime: new Date(Number.isFinite(node.mtimeMs) ? node.mtimeMs : 0),
    ...extra,
  });

  for await (const item of safeWalk(fs, sources, report, new Set())) {
    if (signal?.aborted) throw new CofferError('E_INTERRUPTED', 'interrupted');
    const name = item.hostPath.join('/');
    const node = item.node;
    try {
      if (item.kind === 'leave') continue;
      if (item.kind === 'enter') {
        if (name === '') continue;
        await writeEntry(sink, header(node, `${name}/`, 'directory'));
        report.directories++;
      } else if (node.type === 'symlink') {
        const target = await fs.readlink(node);
        await writeEntry(sink, header(node, name, 'symlink', { linkname: target }));
        report.symlinks++;
      } else if (node.type === 'file' && node.nlink > 1 && linked.has(node.id)) {
        await writeEntry(sink, header(node, name, 'link', { linkname: linked.get(node.id) as string, mode: node.mode & 0o7777 }));
        report.hardLinks++;
      } else if (node.type === 'file') {
        await writeFile(fs, node, header(node, name, 'file', { size: node.size }), sink, report, item.guestPath, signal);
        if (node.nlink > 1) linked.set(node.id, name);
      } else {
        report.skipped.push({ path: item.guestPath, reason: `${node.type} not archived` });
      }
    } catch (error) {
      if (!isEntryProblem(error)) throw error;
      report.problems.push({ path: item.guestPath, code: error.code, message: error.message });
    }
  }
  if (!archive.destroyed) archive.finalize(); // (destroyed: the output failed, and piped says how)
  await piped;
  return report;
}

/** The archive being written, and a promise that rejects with the output's failure (never resolves). */
interface Sink {
  archive: Pack;
  stopped: Promise<never>;
}

async function writeEntry(sink: Sink, header: TarHeader): Promise<void> {
  if (sink.archive.destroyed) await sink.stopped;
  await Promise.race([sink.stopped, new Promise<void>((resolve, reject) => sink.archive.entry(header, (error) => (error ? reject(error) : resolve())))]);
}

/** One file's entry: the header, then its content in pieces with backpressure, holes as zeros. */
async function writeFile(
  fs: Filesystem,
  node: FsNode,
  header: TarHeader,
  sink: Sink,
  report: TarReport,
  guestPath: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  let written = 0;
  let failure: CofferError | undefined;
  if (sink.archive.destroyed) await sink.stopped;
  const entry = sink.archive.entry(header);
  const finished = new Promise<void>((resolve, reject) => {
    entry.on('finish', resolve);
    entry.on('close', resolve);
    entry.on('error', reject);
  });
  const zeros = Buffer.alloc(PIECE_BYTES);
  const put = async (bytes: Uint8Array): Promise<void> => {
    if (!entry.write(bytes)) await Promise.race([sink.stopped, once(entry, 'drain')]);
    written += bytes.length;
  };
  try {
    for await (const piece of filePieces(fs, node, signal)) {
      if ('bytes' in piece) await put(piece.bytes);
      else for (let left = piece.zero; left > 0; left -= PIECE_BYTES) await put(zeros.subarray(0, Math.min(PIECE_BYTES, left)));
    }
  } catch (error) {
    if (!isEntryProblem(error)) throw error;
    failure = error;
    for (let left = node.size - written; left > 0; left -= PIECE_BYTES) await put(zeros.subarray(0, Math.min(PIECE_BYTES, left)));
  }
  entry.end(undefined); // streamx: end(data), undefined writes nothing
  await Promise.race([sink.stopped, finished]);
  report.files++;
  report.bytes += written;
  if (failure !== undefined) {
    report.problems.push({ path: guestPath, code: failure.code, message: `${failure.message} (the archive holds zeros from there)` });
  }
}
