import type { FsNode, FsNodeType, FsStream } from '../filesystem.js';
import { fsCorrupt } from '../fs-errors.js';
import { AttributeType, type Attribute } from './attribute.js';
import { FILE_ATTRIBUTE_NAMES, FILE_ATTRIBUTE_READONLY, Namespace, parseFileName, parseStandardInformation } from './metadata.js';
import type { Inode } from './ntfs-volume.js';
import { parseReparsePoint, type ReparsePoint } from './reparse-point.js';
import { streamAsXattr } from './stream-xattrs.js';

/** The largest reparse point NTFS allows (16 KiB of data plus its header). */
export const MAX_REPARSE_BYTES = 16 * 1024 + 8;

/**
 * How an inode shows as an {@link FsNode}:
 * - type: a symlink/junction (or WSL special file) by its reparse tag, else a directory
 *   when the record says so, else a file;
 * - size: the unnamed $DATA's size (directories 0; symlinks: their target's UTF-8 length);
 * - mode: 0o755 directories, 0o777 symlinks, 0o644 files (0o444 when FILE_ATTRIBUTE_READONLY);
 * - uid/gid 0; nlink: the $FILE_NAMEs that are not DOS-only 8.3 aliases (one per hard link);
 * - times from $STANDARD_INFORMATION (mtime = data modified, ctime = MFT record changed);
 * - streams: the named $DATA attributes, each with the extended attribute that carries it
 *   or why none does (stream-xattrs.ts); attributes: FILE_ATTRIBUTE_* names, `reparse:…`.
 */
export function toFsNode(inode: Inode, reparse: ReparsePoint | undefined): FsNode {
  const what = `MFT record ${inode.number}`;
  const si = inode.attributes.find((a) => a.type === AttributeType.STANDARD_INFORMATION);
  if (si === undefined || !si.resident) throw fsCorrupt('ntfs', `${what}: no $STANDARD_INFORMATION`, { object: String(inode.number) });
  const info = parseStandardInformation(si.value, inode.number);
  const names = inode.attributes.filter((a) => a.type === AttributeType.FILE_NAME && a.resident);
  const nlink = Math.max(1, names.filter((a) => a.resident && parseFileName(a.value, what).namespace !== Namespace.DOS).length);
  const directory = inode.directory || inode.attributes.some((a) => a.type === AttributeType.INDEX_ROOT && a.name === '$I30');
  const type: FsNodeType = reparse?.nodeType ?? (directory ? 'directory' : 'file');
  const readonly = (info.fileAttributes & FILE_ATTRIBUTE_READONLY) !== 0;
  const attributes = FILE_ATTRIBUTE_NAMES.filter(([bit, name]) => (info.fileAttributes & bit) !== 0 && !(name === 'reparse' && reparse !== undefined)).map(([, name]) => name);
  if (reparse !== undefined) attributes.push(reparse.attribute);
  const streams = namedStreams(inode, type);
  let size = 0;
  if (type === 'symlink') size = Buffer.byteLength(reparse?.target ?? '', 'utf8');
  else if (type === 'file') size = dataStreams(inode.attributes).find((s) => s.name === '')?.size ?? 0;
  return {
    id: String(inode.number),
    type,
    size,
    mode: type === 'directory' ? 0o755 : type === 'symlink' ? 0o777 : readonly ? 0o444 : 0o644,
    uid: 0,
    gid: 0,
    nlink,
    mtimeMs: info.mtimeMs,
    atimeMs: info.atimeMs,
    ctimeMs: info.ctimeMs,
    birthtimeMs: info.birthtimeMs,
    ...(streams.length > 0 ? { streams } : {}),
    attributes,
  };
}

/** The named streams of an inode whose node is of type `type`, each with the attribute that carries it or why none does. */
export function namedStreams(inode: Inode, type: FsNodeType): FsStream[] {
  return dataStreams(inode.attributes).filter((s) => s.name !== '').map((s) => streamAsXattr(s, type));
}

/** The $DATA streams of an inode, by name ('' = the unnamed one), with their sizes. */
export function dataStreams(attributes: Attribute[]): { name: string; size: number }[] {
  const out: { name: string; size: number }[] = [];
  for (const a of attributes) {
    if (a.type !== AttributeType.DATA) continue;
    if (a.resident) out.push({ name: a.name, size: a.value.length });
    else if (a.lowestVcn === 0) out.push({ name: a.name, size: a.dataSize });
  }
  return out;
}

/** Parses the reparse attribute, if any; `read` fetches a non-resident one. */
export async function reparsePointOf(inode: Inode, read: (extents: Attribute[]) => Promise<Uint8Array>): Promise<ReparsePoint | undefined> {
  const extents = inode.attributes.filter((a) => a.type === AttributeType.REPARSE_POINT);
  const first = extents[0];
  if (first === undefined) return undefined;
  const value = first.resident ? first.value : await read(extents);
  return parseReparsePoint(value, `MFT record ${inode.number}`);
}
