import type { FsNodeType, FsStream, FsXattr } from '../filesystem.js';
import { fsCorrupt, fsUnsupported } from '../fs-errors.js';

/**
 * How an NTFS file's named streams and DOS attributes show as Linux extended attributes: as
 * ntfs-3g shows them on a mounted volume (ntfs-3g(8), `streams_interface=xattr`, its default;
 * "Using Extended Attributes" in ntfs-3g's documentation), so that a restored file carries
 * what `cp -a` or `tar --xattrs` copies from such a mount:
 *
 * - A named $DATA stream `NAME` is the attribute `user.NAME` (the name from UTF-16 to UTF-8),
 *   its value the stream's bytes, on files and folders alike. A browser's `Zone.Identifier`
 *   is `user.Zone.Identifier`.
 * - Not given, each with the reason a restore reports (FsStream.notXattr):
 *   - the streams of a link (symlink, junction): ntfs-3g lists none for links, and Linux takes
 *     no `user.*` attribute on a symlink;
 *   - a stream named `ntfs-3g.…` (longer than that prefix): where ntfs-3g keeps a Linux
 *     attribute of another namespace (`ntfs-3g.trusted.x` holds `trusted.x`); its listing
 *     hides them;
 *   - a stream over {@link MAX_XATTR_VALUE} bytes (Linux's XATTR_SIZE_MAX; ntfs-3g's getxattr
 *     fails with E2BIG for it), never cut short;
 *   - a name Linux cannot take: over 255 bytes with its `user.` prefix (XATTR_NAME_MAX), or
 *     holding a NUL.
 * - The DOS attributes (FILE_ATTRIBUTE_*, 32 bits) are `system.ntfs_attrib_be`, big-endian,
 *   as ntfs-3g's ntfs_get_ntfs_attrib computes them: the $STANDARD_INFORMATION flags with
 *   DIRECTORY (0x10) set for a folder's record and cleared otherwise, NORMAL (0x80) when no
 *   flag is left. ntfs-3g does not list it (so `cp -a` does not copy it) and Linux
 *   filesystems refuse the name, so it is `archiveOnly`: a tar holds it, and
 *   `tar --xattrs --xattrs-include='*'` onto an ntfs-3g mount sets the flags back. Its twin
 *   `system.ntfs_attrib` (the CPU's byte order, not portable) is not given.
 */

/** The largest value of one extended attribute on Linux (XATTR_SIZE_MAX). */
export const MAX_XATTR_VALUE = 65536;
/** The longest attribute name Linux takes, prefix included (XATTR_NAME_MAX), in bytes. */
const MAX_XATTR_NAME = 255;
/** Where ntfs-3g keeps Linux attributes of other namespaces (ntfs-3g.c, fix_xattr_prefix). */
const NTFS_3G_STORE = 'ntfs-3g.';
/** The name of the DOS attributes as ntfs-3g gives them, big-endian. */
export const DOS_ATTRIBUTES_XATTR = 'system.ntfs_attrib_be';

const FILE_ATTRIBUTE_DIRECTORY = 0x10;
const FILE_ATTRIBUTE_NORMAL = 0x80;

/** Bounds on one node's stream attributes, whatever a damaged or hostile volume claims (as XFS's attribute fork). */
export const STREAM_XATTR_LIMITS = { count: 65536, totalBytes: 64 * 1024 * 1024 } as const;

/** A named stream of a node of type `type`, with the attribute that carries it or why none does. */
export function streamAsXattr(stream: { name: string; size: number }, type: FsNodeType): FsStream {
  const { name, size } = stream;
  const xattr = `user.${name}`;
  const bytes = Buffer.byteLength(name, 'utf8');
  let notXattr: string | undefined;
  if (type === 'symlink') notXattr = 'a link carries no user.* attributes on Linux';
  else if (name.startsWith(NTFS_3G_STORE) && bytes > NTFS_3G_STORE.length) notXattr = `ntfs-3g's store of the Linux attribute ${name.slice(NTFS_3G_STORE.length)}, which ntfs-3g does not list either`;
  else if (size > MAX_XATTR_VALUE) notXattr = `larger than the ${MAX_XATTR_VALUE} bytes an extended attribute holds on Linux`;
  else if (name.includes('\0')) notXattr = 'its name holds a NUL character, which no attribute name can';
  else if (bytes + 5 > MAX_XATTR_NAME) notXattr = `its attribute name would be ${bytes + 5} bytes, more than the ${MAX_XATTR_NAME} Linux takes`;
  return notXattr === undefined ? { name, size, xattr } : { name, size, notXattr };
}

/**
 * The attributes carrying `streams` (those with an `xattr`), in their order, each read whole by
 * `read`. Throws `E_FS_UNSUPPORTED` past {@link STREAM_XATTR_LIMITS} (`limits` in tests), and
 * `E_FS_CORRUPT` when a stream reads shorter than its size; `read` throws for a damaged one.
 */
export async function readStreamXattrs(
  streams: readonly FsStream[],
  read: (name: string, size: number) => Promise<Uint8Array>,
  options: { what: string; limits?: { count: number; totalBytes: number } },
): Promise<FsXattr[]> {
  const { what, limits = STREAM_XATTR_LIMITS } = options;
  const out: FsXattr[] = [];
  let total = 0;
  for (const stream of streams) {
    if (stream.xattr === undefined) continue;
    if (out.length >= limits.count) throw fsUnsupported('ntfs', `${what}: more than ${limits.count} alternate data streams`, { object: what });
    total += stream.size;
    if (total > limits.totalBytes) throw fsUnsupported('ntfs', `${what}: alternate data streams of more than ${limits.totalBytes} bytes`, { object: what });
    const value = await read(stream.name, stream.size);
    if (value.length !== stream.size) throw fsCorrupt('ntfs', `${what}: stream ${stream.name} of ${stream.size} bytes reads as ${value.length}`, { object: what });
    out.push({ name: stream.xattr, value });
  }
  return out;
}

/** The DOS attributes as `system.ntfs_attrib_be`; `directory`: the MFT record's directory flag. */
export function dosAttributesXattr(fileAttributes: number, directory: boolean): FsXattr {
  let flags = directory ? fileAttributes | FILE_ATTRIBUTE_DIRECTORY : fileAttributes & ~FILE_ATTRIBUTE_DIRECTORY;
  if (flags === 0) flags = FILE_ATTRIBUTE_NORMAL;
  const value = new Uint8Array(4);
  new DataView(value.buffer).setUint32(0, flags >>> 0, false);
  return { name: DOS_ATTRIBUTES_XATTR, value, archiveOnly: true };
}
