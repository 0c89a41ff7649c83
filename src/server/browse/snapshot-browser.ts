/**
 * Browsing a snapshot's files for the API, straight from the repository (restore's
 * openSnapshotFilesystems: disks as block devices over the chunks, volumes found on them,
 * filesystems opened on demand, or a file snapshot's tree read as one filesystem; nothing
 * restored first). A volume is named as `coffer files` lists it, prefixed with its disk:
 * `disk0:p1`, `disk1:disk`, or an LVM `vg0/root`; a file snapshot's tree is `files`. Each
 * call opens what it needs and closes it after (a stream closes when it ends).
 *
 * Names are bytes on ext2/3/4 and XFS (names/byte-names.ts). What this answers names entries,
 * paths and link targets in their printable form (`printableName`: a byte that is not UTF-8
 * or a control character as `\xNN`, a backslash as `\\`), plain text a browser can put in
 * a query string, with the exact bytes in hex beside (`nameBytes`, `pathBytes`,
 * `targetBytes`) whenever that form holds an escape. A `path` given back in that form is
 * resolved as the CLI resolves it (fs/resolve-path.ts), so a listed name always opens.
 */
import { CofferError } from '../../errors/index.js';
import { resolvePath, walkTree, type Filesystem, type FsDirEntry, type FsNode } from '../../fs/index.js';
import { printableName, printableWithBytes } from '../../names/index.js';
import type { Repository, Snapshot } from '../../repo/index.js';
import { globToRegExp, openSnapshotFilesystems, type BrowsableVolume } from '../../restore/index.js';

/** A volume as the API lists it (restore's description, without what only the CLI shows). */
export type VolumeInfo = Omit<BrowsableVolume, 'onDisk'>;

/** An entry of a directory listing. */
export interface EntryInfo {
  /** The name in its printable form (`caf\xe9`, `a\\b`): what a `path` takes back. */
  name: string;
  /** The name's bytes in hex when `name` holds an escape. */
  nameBytes?: string;
  type: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  /** The owner's and group's names where the snapshot recorded them (a file snapshot), printable. */
  user?: string;
  group?: string;
  nlink: number;
  mtime: string | null;
  /** A symlink's target, printable as `name` is. */
  target?: string;
  targetBytes?: string;
  /** Set when the entry is damaged and could not be read. */
  error?: string;
}

/** Every volume of a snapshot with what is on it (a file snapshot: its one volume, `files`). */
export async function listSnapshotVolumes(repo: Repository, snapshot: Snapshot): Promise<VolumeInfo[]> {
  const browse = await openSnapshotFilesystems(repo, snapshot);
  try {
    return (await browse.volumes()).map(({ onDisk: _onDisk, ...volume }) => volume);
  } finally {
    await browse.close();
  }
}

/** An open filesystem of a snapshot's volume; `close` releases the disks. */
export interface OpenVolume {
  fs: Filesystem;
  close(): Promise<void>;
}

/**
 * Opens the filesystem of volume `id` (`disk0:p1`, `p1` when unique, `vg0/root`, a file
 * snapshot's `files`: restore/files/snapshot-filesystems.ts).
 * @throws E_VOLUME_NOT_FOUND, E_FS_UNSUPPORTED, E_VOLUME_ENCRYPTED.
 */
export async function openVolume(repo: Repository, snapshot: Snapshot, id: string): Promise<OpenVolume> {
  const browse = await openSnapshotFilesystems(repo, snapshot);
  try {
    return { fs: await browse.filesystem(id), close: () => browse.close() };
  } catch (error) {
    await browse.close();
    throw error;
  }
}

/** Runs `fn` on a volume's filesystem and closes it after. */
export async function withVolume<T>(repo: Repository, snapshot: Snapshot, id: string, fn: (fs: Filesystem) => Promise<T>): Promise<T> {
  const open = await openVolume(repo, snapshot, id);
  try {
    return await fn(open.fs);
  } finally {
    await open.close();
  }
}

/**
 * A page of a directory (entries sorted by name), or the one entry when `path` is not a
 * directory. `path` is the directory as it resolved, printable (with `pathBytes`).
 */
export async function listDirectory(fs: Filesystem, path: string, page: { offset: number; limit: number }): Promise<{ path: string; pathBytes?: string; type: string; total: number; items: EntryInfo[] }> {
  const found = await resolvePath(fs, path, { followLast: true });
  const entries: FsDirEntry[] = found.node.type === 'directory' ? await fs.readdir(found.node) : [{ name: found.path.split('/').pop() ?? '', node: found.node }];
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const items: EntryInfo[] = [];
  for (const entry of entries.slice(page.offset, page.offset + page.limit)) {
    if (entry.node === undefined) {
      items.push({ ...printableWithBytes('name', entry.name), type: 'unknown', size: 0, mode: 0, uid: 0, gid: 0, nlink: 0, mtime: null, error: entry.error?.message ?? 'unreadable' });
      continue;
    }
    const target = entry.node.type === 'symlink' ? await fs.readlink(entry.node).catch(() => undefined) : undefined;
    items.push(describeNode(entry.name, entry.node, target));
  }
  return { ...printableWithBytes('path', found.path), type: found.node.type, total: entries.length, items };
}

/** An entry as the API lists it, from its name and target as the filesystem gives them (decoded, not yet printable). */
export function describeNode(name: string, node: FsNode, target?: string): EntryInfo {
  return {
    ...printableWithBytes('name', name), type: node.type, size: node.size, mode: node.mode & 0o7777, uid: node.uid, gid: node.gid,
    ...(node.user === undefined ? {} : { user: printableName(node.user) }),
    ...(node.group === undefined ? {} : { group: printableName(node.group) }),
    nlink: node.nlink,
    mtime: Number.isFinite(node.mtimeMs) ? new Date(node.mtimeMs).toISOString() : null,
    ...(target === undefined ? {} : printableWithBytes('target', target)),
  };
}

/**
 * A file's node, its name and its path as it resolved (decoded: `name` may hold bytes that are
 * not UTF-8), or E_PATH_NOT_FOUND when the path is not a file.
 */
export async function fileNode(fs: Filesystem, path: string): Promise<{ node: FsNode; name: string; path: string }> {
  const found = await resolvePath(fs, path, { followLast: true });
  if (found.node.type !== 'file') throw new CofferError('E_PATH_NOT_FOUND', `${printableName(found.path)} is a ${found.node.type}, not a file`, { subject: { path: printableName(found.path) } });
  return { node: found.node, name: found.path.split('/').pop() ?? 'file', path: found.path };
}

/** The bytes `start..end` (inclusive) of a file, in pieces of at most 1 MiB. */
export async function* fileBytes(fs: Filesystem, node: FsNode, start: number, end: number, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  const piece = 1 << 20;
  for (let offset = start; offset <= end; offset += piece) {
    if (signal?.aborted) throw new CofferError('E_INTERRUPTED', 'the download was cancelled');
    yield await fs.read(node, offset, Math.min(piece, end + 1 - offset));
  }
}

/** A file found by name. */
export interface FoundFile {
  /** Its whole path, printable as a listing's names are. */
  path: string;
  pathBytes?: string;
  type: string;
  size: number;
  mtime: string | null;
}

/** Files whose name matches `glob` (case-insensitive where the filesystem is), at most `limit`; `truncated` when more were there. */
export async function findByName(fs: Filesystem, glob: string, options: { limit: number; deadline: number }): Promise<{ items: FoundFile[]; truncated: boolean }> {
  const pattern = globToRegExp(glob, fs.caseInsensitive);
  const root = await resolvePath(fs, '/', { followLast: true });
  const items: FoundFile[] = [];
  for await (const item of walkTree(fs, root.node, [])) {
    if (item.kind !== 'entry' && item.kind !== 'enter') continue;
    if (item.path.length === 0) continue;
    const name = item.path.at(-1) as string;
    if (!pattern.test(name)) continue;
    if (items.length >= options.limit || Date.now() > options.deadline) return { items, truncated: true };
    items.push({ ...printableWithBytes('path', `/${item.path.join('/')}`), type: item.node.type, size: item.node.size, mtime: Number.isFinite(item.node.mtimeMs) ? new Date(item.node.mtimeMs).toISOString() : null });
  }
  return { items, truncated: false };
}
