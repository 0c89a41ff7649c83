import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { pack as tarPack, type Pack } from 'tar-stream';
import { OutputStream } from '../../disk/index.js';
import { CofferError } from '../../errors/index.js';
import { hasRawBytes, printableName, type Filesystem, type FsNode, type ResolvedNode } from '../../fs/index.js';
import { filePieces, PIECE_BYTES } from './file-pieces.js';
import { emptyReport, isEntryProblem, noteStreamsLeftOut, safeWalk, type TreeReport } from './safe-walk.js';

type TarHeader = Parameters<Pack['entry']>[0];
type TarType = TarHeader['type'];

/** What a tar stream held, and the entries it could not hold. */
export type TarReport = TreeReport;

/** The largest owner id the ustar header holds as tar-stream writes it (6 octal digits). */
const USTAR_MAX_ID = 0o777777;
/** The latest time (seconds since 1970) tar-stream's ustar header holds: it truncates to a signed 32-bit integer. */
const USTAR_MAX_SECONDS = 2 ** 31 - 1;

/**
 * A node's owner and modification time as header fields: in the ustar fields where they fit,
 * else (ids above 262,143, times before 1970 or after 2038-01-19) exact in PAX records
 * (`uid`, `gid`, `mtime` in decimal seconds, which readers prefer) with the ustar field
 * clamped: never a saturated or wrapped value a reader would take for the truth. A time the
 * filesystem does not record is 1970.
 */
function ownerAndTime(node: Pick<FsNode, 'uid' | 'gid' | 'mtimeMs'>): Pick<TarHeader, 'uid' | 'gid' | 'mtime' | 'pax'> {
  const pax: Record<string, string> = {};
  const id = (value: number, key: 'uid' | 'gid'): number => {
    if (value <= USTAR_MAX_ID) return value;
    pax[key] = String(value);
    return 0;
  };
  const fields = { uid: id(node.uid, 'uid'), gid: id(node.gid, 'gid') };
  const ms = Number.isFinite(node.mtimeMs) ? node.mtimeMs : 0;
  const fits = ms >= 0 && ms < (USTAR_MAX_SECONDS + 1) * 1000;
  if (!fits) pax.mtime = paxSeconds(ms);
  const mtime = new Date(fits ? ms : Math.min(Math.max(ms, 0), USTAR_MAX_SECONDS * 1000));
  return Object.keys(pax).length > 0 ? { ...fields, mtime, pax } : { ...fields, mtime };
}

/** Milliseconds since 1970 as PAX's decimal seconds ("-1", "7258118400.25"). */
function paxSeconds(ms: number): string {
  const sign = ms < 0 ? '-' : '';
  const whole = Math.floor(Math.abs(ms) / 1000);
  const fraction = Math.abs(ms) % 1000;
  return fraction === 0 ? `${sign}${whole}` : `${sign}${whole}.${String(fraction).padStart(3, '0').replace(/0+$/, '')}`;
}

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
    ...ownerAndTime(node),
    ...extra,
  });

  for await (const item of safeWalk(fs, sources, report, new Set(), 'escape')) {
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
        const stored = await fs.readlink(node);
        const target = hasRawBytes(stored) ? printableName(stored) : stored;
        if (target !== stored) report.skipped.push({ path: item.guestPath, reason: `its link target is not UTF-8, as tar link names must be: archived as ${target}` });
        await writeEntry(sink, header(node, name, 'symlink', { linkname: target }));
        report.symlinks++;
      } else if (node.type === 'file' && node.nlink > 1 && linked.has(node.id)) {
        await writeEntry(sink, header(node, name, 'link', { linkname: linked.get(node.id) as string, mode: node.mode & 0o7777 }));
        report.hardLinks++;
      } else if (node.type === 'file') {
        await writeFile(fs, node, header(node, name, 'file', { size: node.size }), sink, report, item.guestPath, signal);
        noteStreamsLeftOut(report, item.guestPath, node, 'archived');
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
