import { constants as fsConstants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { CofferError } from '../../errors/index.js';
import { type Filesystem, type FsNode, type FsXattr, type ResolvedNode } from '../../fs/index.js';
import { decodeName, hostPath, printableName } from '../../names/index.js';
import { makeFolders } from '../../native/index.js';
import { targetCall, targetError } from '../../disk/index.js';
import { HostOwners } from '../host-owners.js';
import { filePieces } from './file-pieces.js';
import { readXattrs, setXattrs } from './node-xattrs.js';
import { emptyReport, isEntryProblem, noteStreamsLeftOut, safeWalk, type SafeItem, type TreeReport } from './safe-walk.js';

/** `files get` has a way past a name that exists, except a folder in the way of a file or link. */
const EXISTS = { exists: 'it exists already (--overwrite replaces files)' };
const FOLDER_IN_THE_WAY = { exists: 'a folder of that name is in the way (--overwrite replaces files and links, never a folder)' };

export interface ExtractOptions {
  /** The folder to extract into; created if missing. */
  to: string;
  /** Replace files that exist in the folder (never follows a link there: it is removed first). */
  overwrite?: boolean;
  /** Restore owners (uid/gid); default: when running as root. */
  owners?: boolean;
  /**
   * Owners by their recorded ids, names ignored (tar's `--numeric-owner`). Default: by name
   * where the filesystem records names (a file snapshot), as `restore` sets them
   * (host-owners.ts); a guest filesystem's ids are ids either way.
   */
  numericOwner?: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: { files: number; bytes: number; path: string }) => void;
}

/** What an extraction did, and every entry it could not restore and why. */
export type ExtractReport = TreeReport;

/**
 * Writes files, directories and symlinks from a guest filesystem into a folder, safely:
 * - nothing is written outside `to`: every name is checked by `safeName` (no `/`, `..`, NUL),
 *   every folder written into was created by this run or checked with lstat to be a real
 *   folder, files are created with O_EXCL (which never follows a link), symlinks are created
 *   as symlinks with their target as stored and are never followed;
 * - a damaged entry (unreadable inode, bad block map, missing chunk) is reported in
 *   `problems` and the rest goes on; a partial file is removed;
 * - content, mode (with setuid/setgid/sticky), times, extended attributes (POSIX ACLs,
 *   SELinux labels, `user.*`, NTFS streams as `user.NAME`: node-xattrs.ts; one the host
 *   refuses is noted in `skipped`, not a failure, as is a stream no attribute carries), and
 *   (as root) owners are kept (by name when the filesystem records names and this host
 *   knows them, else by id: host-owners.ts); files with several names are restored as hard
 *   links; holes stay holes.
 * A name that exists in the folder, or one the target refuses, is a problem of that entry
 * (`E_TARGET_UNWRITABLE`); a full target ends the run with `E_NO_SPACE`.
 */
export async function extractTree(fs: Filesystem, sources: readonly ResolvedNode[], options: ExtractOptions): Promise<ExtractReport> {
  const report: ExtractReport = emptyReport();
  const owners = (options.owners ?? process.getuid?.() === 0) ? await HostOwners.for({ numeric: options.numericOwner }) : undefined;
  const root = path.resolve(options.to);
  // The folder as the command line gave its bytes (cli/raw-arguments.ts): every call by them.
  await targetCall(root, () => makeFolders(root, 0o777, hostPath));
  const rootStat = await targetCall(root, () => fsp.lstat(hostPath(root)));
  if (!rootStat.isDirectory()) throw new CofferError('E_TARGET_UNWRITABLE', `${printableName(root)} is not a folder`, { subject: { path: root } });
  await targetCall(root, () => fsp.access(hostPath(root), fsConstants.W_OK));
  const exists = options.overwrite === true ? FOLDER_IN_THE_WAY : EXISTS;
  const skipBelow = new Set<string>();
  const linked = new Map<string, HostPath>(); // node id → host path of its first name
  const host = (item: SafeItem): HostPath => hostPath(path.join(root, ...item.hostPath));

  for await (const item of safeWalk(fs, sources, report, skipBelow, 'bytes')) {
    if (options.signal?.aborted) throw new CofferError('E_INTERRUPTED', 'interrupted');
    const target = host(item);
    try {
      if (item.kind === 'enter') {
        if (item.hostPath.length > 0) await makeFolder(target);
        report.directories += item.hostPath.length > 0 ? 1 : 0;
      } else if (item.kind === 'leave') {
        // A folder's attributes once its children are written: its default ACL must not be inherited by them.
        if (item.hostPath.length > 0) {
          const xattrs = await xattrsOf(item);
          await setAttributes(target, item.node, { owners, what: 'folder', xattrs });
          noteStreamsLeftOut(report, item.guestPath, item.node, { done: 'restored', xattrs: xattrs.list });
        }
      } else if (item.node.type === 'file') {
        await writeFile(fs, item, target, options, linked, report);
      } else if (item.node.type === 'symlink') {
        const link = await fs.readlink(item.node);
        if (link === '' || link.includes('\0')) throw new CofferError('E_FS_CORRUPT', `${printableName(item.guestPath)}: symlink target "${printableName(link)}" cannot be created`);
        if (options.overwrite) await removeIfNotFolder(target);
        await targetCall(shown(target), () => fsp.symlink(hostPath(link), target), exists);
        const xattrs = await xattrsOf(item);
        await setAttributes(target, item.node, { owners, what: 'link', xattrs });
        noteStreamsLeftOut(report, item.guestPath, item.node, { done: 'restored', xattrs: xattrs.list });
        report.symlinks++;
      } else {
        report.skipped.push({ path: item.guestPath, reason: `${item.node.type} not restored` });
      }
    } catch (error) {
      if (!isEntryProblem(error)) throw error;
      report.problems.push({ path: item.guestPath, code: error.code, message: error.message });
      if (item.kind === 'enter') skipBelow.add(item.walkKey);
    }
  }
  return report;

  /** The attributes to set on an entry, with the path and report that failures go to. */
  async function xattrsOf(item: SafeItem): Promise<EntryXattrs> {
    return { list: await readXattrs(fs, item.node, item.guestPath, report), guestPath: item.guestPath, report };
  }

  async function makeFolder(target: HostPath): Promise<void> {
    if (options.overwrite) await removeIfNotFolder(target);
    try {
      await fsp.mkdir(target, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw targetError(shown(target), error);
      const st = await fsp.lstat(target);
      if (!st.isDirectory()) throw new CofferError('E_TARGET_UNWRITABLE', `${shown(target)} exists and is not a folder`, { subject: { path: shown(target) } });
    }
  }

  async function writeFile(fsys: Filesystem, item: SafeItem, target: HostPath, o: ExtractOptions, links: Map<string, HostPath>, r: ExtractReport): Promise<void> {
    if (o.overwrite) await removeIfNotFolder(target);
    const first = item.node.nlink > 1 ? links.get(item.node.id) : undefined;
    if (first !== undefined) {
      const ok = await fsp.link(first, target).then(() => true, () => false);
      if (ok) {
        r.hardLinks++;
        return;
      }
    }
    const xattrs = await xattrsOf(item);
    const handle = await targetCall(shown(target), () => fsp.open(target, 'wx', 0o600), exists);
    let complete = false;
    try {
      for await (const piece of filePieces(fsys, item.node, o.signal)) {
        if ('bytes' in piece) {
          await targetCall(shown(target), () => handle.write(piece.bytes, 0, piece.bytes.length, piece.offset));
          r.bytes += piece.bytes.length;
        }
      }
      await targetCall(shown(target), () => handle.truncate(item.node.size));
      await setAttributes(target, item.node, { owners, what: 'file', xattrs, handle });
      complete = true;
    } finally {
      await handle.close();
      if (!complete) await fsp.rm(target, { force: true });
    }
    r.files++;
    noteStreamsLeftOut(r, item.guestPath, item.node, { done: 'restored', xattrs: xattrs.list });
    if (item.node.nlink > 1) links.set(item.node.id, target);
    o.onProgress?.({ files: r.files, bytes: r.bytes, path: item.guestPath });
  }

  async function removeIfNotFolder(target: HostPath): Promise<void> {
    const st = await fsp.lstat(target).catch(() => undefined);
    if (st !== undefined && !st.isDirectory()) await targetCall(shown(target), () => fsp.unlink(target));
  }
}

/** A path on the host: a string, or its bytes when a name in it is not UTF-8 (names' `hostPath`). */
type HostPath = string | Buffer;

/** A host path for messages: bytes that are not UTF-8 as `\xNN`. */
function shown(target: HostPath): string {
  return printableName(typeof target === 'string' ? target : decodeName(target));
}

/** An entry's extended attributes (those marked `archiveOnly`, NTFS's DOS attributes, are not set on the host), and where a failure to set one is noted. */
interface EntryXattrs {
  list: readonly FsXattr[];
  guestPath: string;
  report: ExtractReport;
}

/**
 * Owner, extended attributes, mode and times, in that order: chown clears setuid bits and
 * `security.capability`, so both come after it; `user.*` attributes need write permission,
 * which the final mode may not give; an ACL's mask and the mode's group bits are one value,
 * equal on the disk, so the chmod after it leaves the ACL as it was.
 */
async function setAttributes(target: HostPath, node: FsNode, o: { owners: HostOwners | undefined; what: 'file' | 'folder' | 'link'; xattrs: EntryXattrs; handle?: fsp.FileHandle }): Promise<void> {
  const { owners, what, handle } = o;
  // As Dates: Node takes a negative number of seconds for "now", a Date before 1970 as it is.
  const when = (ms: number): Date => new Date(ms);
  const mtime = Number.isFinite(node.mtimeMs) ? node.mtimeMs : undefined;
  const atime = Number.isFinite(node.atimeMs) ? node.atimeMs : mtime;
  await targetCall(shown(target), async () => {
    if (owners !== undefined) {
      const { uid, gid } = owners.idsOf(node);
      await (handle !== undefined ? handle.chown(uid, gid) : fsp.lchown(target, uid, gid));
    }
    setXattrs(target, o.xattrs.list.filter((x) => x.archiveOnly !== true), o.xattrs.guestPath, o.xattrs.report);
    if (what !== 'link') await (handle !== undefined ? handle.chmod(node.mode & 0o7777) : fsp.chmod(target, node.mode & 0o7777));
    if (mtime === undefined || atime === undefined) return;
    if (handle !== undefined) await handle.utimes(when(atime), when(mtime));
    else if (what === 'link') await fsp.lutimes(target, when(atime), when(mtime));
    else await fsp.utimes(target, when(atime), when(mtime));
  });
}
