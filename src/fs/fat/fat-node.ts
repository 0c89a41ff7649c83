import type { FsNode } from '../filesystem.js';
import { ATTR_ARCHIVE, ATTR_DIRECTORY, ATTR_HIDDEN, ATTR_READ_ONLY, ATTR_SYSTEM, type ShortEntry } from './dir-entry.js';

/**
 * Node ids of the FAT reader, which also carry what reading a node needs:
 * - `root`: the fixed root directory of FAT12/16;
 * - `d<cluster>`: a directory, by its first cluster (the FAT32 root too), so that two entries
 *   naming one directory share an id and a walk sees a loop;
 * - `f<cluster>@<position>`: a file, by its first cluster (0 when empty) and the device byte
 *   offset of its directory entry.
 */
export type FatNodeRef =
  | { kind: 'fixed-root' }
  | { kind: 'directory'; cluster: number }
  | { kind: 'file'; cluster: number; position: number };

export function nodeId(ref: FatNodeRef): string {
  switch (ref.kind) {
    case 'fixed-root':
      return 'root';
    case 'directory':
      return `d${ref.cluster}`;
    case 'file':
      return `f${ref.cluster}@${ref.position}`;
  }
}

/** The reference a node id stands for; a RangeError for an id this reader never made. */
export function parseNodeId(id: string): FatNodeRef {
  if (id === 'root') return { kind: 'fixed-root' };
  const directory = /^d(\d{1,10})$/.exec(id);
  if (directory) return { kind: 'directory', cluster: Number(directory[1]) };
  const file = /^f(\d{1,10})@(\d{1,16})$/.exec(id);
  if (file) return { kind: 'file', cluster: Number(file[1]), position: Number(file[2]) };
  throw new RangeError(`${JSON.stringify(id)} is not a FAT node id`);
}

/** The attribute names of an entry's DIR_Attr bits. */
export function attributeNames(attributes: number): string[] {
  const names: string[] = [];
  if (attributes & ATTR_READ_ONLY) names.push('readonly');
  if (attributes & ATTR_HIDDEN) names.push('hidden');
  if (attributes & ATTR_SYSTEM) names.push('system');
  if (attributes & ATTR_ARCHIVE) names.push('archive');
  return names;
}

/**
 * The node of a short entry. FAT has no owners, links or permissions: uid/gid 0, nlink 1,
 * mode 0o755 for directories, 0o644 for files, 0o444 for read-only files; no change time.
 * `directoryBytes` is the size of a directory's cluster chain.
 */
export function entryNode(entry: ShortEntry, ref: FatNodeRef, directoryBytes: number): FsNode {
  const isDirectory = (entry.attributes & ATTR_DIRECTORY) !== 0;
  return {
    id: nodeId(ref),
    type: isDirectory ? 'directory' : 'file',
    size: isDirectory ? directoryBytes : entry.size,
    mode: isDirectory ? 0o755 : entry.attributes & ATTR_READ_ONLY ? 0o444 : 0o644,
    uid: 0,
    gid: 0,
    nlink: 1,
    mtimeMs: entry.mtimeMs,
    atimeMs: entry.atimeMs,
    ctimeMs: NaN,
    birthtimeMs: entry.birthtimeMs,
    attributes: attributeNames(entry.attributes),
  };
}

/** The root directory's node: no entry describes it, so it has no times. */
export function rootNode(ref: FatNodeRef, bytes: number): FsNode {
  return {
    id: nodeId(ref), type: 'directory', size: bytes, mode: 0o755, uid: 0, gid: 0, nlink: 1,
    mtimeMs: NaN, atimeMs: NaN, ctimeMs: NaN, birthtimeMs: NaN, attributes: [],
  };
}

/**
 * Case-insensitive comparison key, as FAT matches names: each character upper-cased when it
 * maps to one character (Windows' per-character up-case table, not full Unicode folding).
 */
export function foldName(name: string): string {
  let out = '';
  for (const ch of name) {
    const upper = ch.toUpperCase();
    out += upper.length === ch.length ? upper : ch;
  }
  return out;
}
