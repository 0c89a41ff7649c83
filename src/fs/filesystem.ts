import type { BlockDevice } from '../blockdev/index.js';
import type { CofferError } from '../errors/index.js';

/**
 * The filesystems Coffer reads. `ext2`/`ext3`/`ext4` are one reader (named by the features
 * the superblock declares), as are `fat12`/`fat16`/`fat32`.
 */
export type FsType = 'ext2' | 'ext3' | 'ext4' | 'fat12' | 'fat16' | 'fat32' | 'exfat' | 'ntfs' | 'xfs' | 'coffer-files';

/** What a node is. Device nodes, FIFOs and sockets are listed but hold no data to read. */
export type FsNodeType = 'file' | 'directory' | 'symlink' | 'char-device' | 'block-device' | 'fifo' | 'socket' | 'unknown';

/**
 * One file, directory or link of a filesystem, as its metadata says (a guest's disk is
 * untrusted: sizes and counts are what the disk claims, never allocated blindly).
 */
export interface FsNode {
  /**
   * Identifies the node within its filesystem (ext4/XFS inode number, NTFS MFT record
   * number, FAT first cluster and directory entry position). Hard links share it; a walk
   * uses it to detect directory loops.
   */
  readonly id: string;
  readonly type: FsNodeType;
  /** Logical size in bytes (for a symlink: the length of its target). */
  readonly size: number;
  /**
   * Permission bits and setuid/setgid/sticky (`mode & 0o7777`). Filesystems without them
   * (FAT, NTFS) synthesize 0o755 for directories, 0o644 for files (0o444 when read-only).
   */
  readonly mode: number;
  /** Owner and group (0 where the filesystem has none). */
  readonly uid: number;
  readonly gid: number;
  /**
   * The names of the owner and group where the filesystem records them: a file snapshot
   * does (the names the ids had on the host backed up), a guest's ext4, XFS, NTFS or FAT
   * holds ids only (undefined). A restore maps owners by these names when given.
   */
  readonly user?: string;
  readonly group?: string;
  /** Number of names this node has (1 where the filesystem does not count them). */
  readonly nlink: number;
  /** Times in milliseconds since 1970 UTC; NaN where the filesystem does not record one. */
  readonly mtimeMs: number;
  readonly atimeMs: number;
  readonly ctimeMs: number;
  readonly birthtimeMs: number;
  /**
   * Alternate data streams (NTFS), listed by name and size; the unnamed stream is the
   * file's content and is not listed.
   */
  readonly streams?: readonly FsStream[];
  /** Filesystem-specific attributes worth showing: `hidden`, `system`, `readonly`, `archive`, `compressed`, `sparse`, `encrypted`, `reparse:junction`… */
  readonly attributes?: readonly string[];
  /** Device numbers for char/block devices. */
  readonly rdev?: { major: number; minor: number };
}

/**
 * A named alternate data stream (NTFS) of a node. A reader that gives streams as extended
 * attributes (NTFS: `user.NAME`, as ntfs-3g does) says for each stream either which attribute
 * carries it or why none does, so that a restore can tell the admin what it left out.
 */
export interface FsStream {
  readonly name: string;
  readonly size: number;
  /** The name of the attribute {@link Filesystem.xattrs} gives the stream as (`user.Zone.Identifier`). */
  readonly xattr?: string;
  /** Why no attribute carries it (larger than an attribute holds on Linux …), when none does. */
  readonly notXattr?: string;
}

/**
 * One name in a directory. `node` is set when the entry could be read; otherwise `error`
 * says why (a damaged inode, an out-of-range record) and the rest of the directory stays
 * readable. `name` is exactly what the disk holds, decoded: ext4/XFS bytes by `decodeName`
 * (UTF-8, and each byte that is not as a raw-byte surrogate `encodeName` turns back into
 * it: see names/byte-names.ts), NTFS/FAT long names from UTF-16. It may contain `/`, NUL or
 * control characters on a hostile disk; callers that write files must sanitize it.
 */
export interface FsDirEntry {
  readonly name: string;
  readonly node?: FsNode;
  readonly error?: CofferError;
}

/**
 * One extended attribute of a node, as Linux's getxattr gives it: `name` with its namespace
 * prefix (`user.`, `trusted.`, `security.`, `system.`), decoded like entry names (bytes that
 * are not UTF-8 as raw-byte surrogates: `encodeName` gives them back); `value` in the form
 * setxattr takes (POSIX ACLs `system.posix_acl_access`/`_default` as posix_acl_xattr_header
 * version 2, whatever the disk stores).
 */
export interface FsXattr {
  readonly name: string;
  readonly value: Uint8Array;
  /**
   * Set on an attribute that belongs in an archive but not on a host folder: NTFS's
   * `system.ntfs_attrib_be` (the DOS attributes), which ntfs-3g takes on a mounted NTFS volume
   * and every other Linux filesystem refuses. `files get --tar` writes it; `--to` leaves it
   * out without a word (the listing shows the same flags as FsNode.attributes).
   */
  readonly archiveOnly?: true;
}

/** A range of a file: `data` must be read, `zero` is a hole (or unwritten) and reads as zeros. */
export interface FsFileExtent {
  offset: number;
  length: number;
  kind: 'data' | 'zero';
}

/**
 * Where some of a node's bytes lie on the filesystem's device (its volume), so that damage
 * to device bytes can be traced to the files it touches.
 * - `data`: `length` bytes of content stored as they are: file byte `fileOffset + i` is
 *   device byte `deviceOffset + i` (`fileLength === length`). A directory's data are its
 *   entry blocks.
 * - `packed`: content stored transformed or mixed with other bytes (an NTFS compression
 *   unit, inline data inside an inode or MFT record): any damaged byte of the device range
 *   spoils all of `[fileOffset, fileOffset + fileLength)`.
 * - `metadata`: the structure that describes the node (inode, MFT record, directory entry),
 *   named by `what`: damage there loses the whole node (`fileOffset` 0, `fileLength` its size).
 * Ranges hold only bytes that matter: the slack after a file's last byte in its last block
 * is left out.
 */
export interface FsPhysicalExtent {
  kind: 'data' | 'packed' | 'metadata';
  fileOffset: number;
  fileLength: number;
  deviceOffset: number;
  length: number;
  /** What the metadata is ('inode 12', 'MFT record 40', 'directory entry'). */
  what?: string;
}

/**
 * A read-only filesystem on a block device. Every method may throw `E_FS_CORRUPT` (a
 * structure is damaged: out-of-range block, bad magic, loop in a tree, checksum mismatch
 * where the format has one), `E_FS_UNSUPPORTED` (a feature this reader does not handle), or
 * what the device throws (`E_MISSING_OBJECT`, `E_CORRUPT_OBJECT` for a snapshot disk).
 * Nothing hangs and nothing allocates more than a bounded amount per call, whatever the
 * disk claims.
 */
export interface Filesystem {
  readonly type: FsType;
  /** The volume label ('' when none). */
  readonly label: string;
  /** The filesystem UUID or serial number as usually printed ('' when none). */
  readonly uuid: string;
  /** Bytes the filesystem spans on its device. */
  readonly size: number;
  /** The allocation unit (block or cluster size) in bytes. */
  readonly blockSize: number;
  /** True for filesystems that match names case-insensitively (FAT, NTFS, exFAT). */
  readonly caseInsensitive: boolean;
  /** The device it reads. */
  readonly device: BlockDevice;
  /** What the reader had to work around to open it (a damaged superblock read from its backup), for the user to hear. */
  readonly notice?: string;

  /** The root directory. */
  root(): Promise<FsNode>;

  /** The entries of a directory, without `.` and `..`, in on-disk order. */
  readdir(directory: FsNode): Promise<FsDirEntry[]>;

  /**
   * One entry of a directory by name, using the filesystem's index where it has one (ext4
   * htree, NTFS and XFS B+trees); undefined when absent. Optional: without it, callers scan
   * {@link readdir}.
   */
  lookup?(directory: FsNode, name: string): Promise<FsNode | undefined>;

  /**
   * Bytes `[offset, offset + length)` of a file's content, clipped to its size (a read at or
   * past the end returns an empty array). Holes read as zeros. Callers read in pieces of at
   * most a few MiB.
   */
  read(file: FsNode, offset: number, length: number): Promise<Uint8Array>;

  /**
   * The data and hole ranges of a file, in order, covering `[0, size)`; lets extraction
   * write sparse files without reading holes. Optional: without it, a file is all data.
   */
  fileExtents?(file: FsNode): AsyncIterable<FsFileExtent>;

  /**
   * Where a node lies on the device: its own metadata first (where the reader knows it
   * cheaply), then its content (a file's data, a directory's entry blocks, a symlink's
   * target when stored in blocks), in file order. Reads only metadata, never file content;
   * holes and unwritten ranges have no place and are not listed. Optional: without it, damage
   * on the device cannot be traced to files. Throws like {@link read} on a damaged map.
   */
  physicalExtents?(node: FsNode): AsyncIterable<FsPhysicalExtent>;

  /** A symlink's target, exactly as stored (may be absolute or escape the filesystem). */
  readlink(link: FsNode): Promise<string>;

  /**
   * The node's extended attributes (POSIX ACLs, SELinux labels, `user.*` …), in on-disk
   * order; [] when it has none. Attributes the filesystem keeps for itself (ext4's
   * `system.data`, the inline data; XFS parent pointers) are left out. NTFS gives its named
   * streams as `user.NAME` and its DOS attributes as `system.ntfs_attrib_be`, as ntfs-3g
   * shows them (ntfs/stream-xattrs.ts). Optional: readers without it (FAT) have none to
   * give. Bounded: at most 64 KiB per value; ext reads one attribute block per node, XFS a
   * bounded tree of them (xfs/attr-fork.ts), NTFS at most 64 MiB of streams. Throws
   * `E_FS_CORRUPT` when the attributes are damaged (the node's content may still read),
   * `E_FS_UNSUPPORTED` for a storage or an amount the reader does not handle.
   */
  xattrs?(node: FsNode): Promise<FsXattr[]>;

  /** Bytes of a named alternate data stream (NTFS); optional. */
  readStream?(file: FsNode, stream: string, offset: number, length: number): Promise<Uint8Array>;
}

/**
 * A reader for one family of filesystems. `probe` looks only at the superblock (magic numbers
 * and consistent geometry), so the right reader is found whatever the partition type says;
 * `open` then reads what it needs and throws `E_FS_CORRUPT`/`E_FS_UNSUPPORTED` when it
 * cannot go on.
 */
export interface FilesystemDriver {
  readonly name: string;
  probe(device: BlockDevice): Promise<boolean>;
  open(device: BlockDevice): Promise<Filesystem>;
  /**
   * Asked when no driver's `probe` took the device. Undefined when the device does not carry
   * this filesystem's signature (its magic). When it does, either a filesystem read around the
   * damage (ext: through a backup superblock; its `notice` says so), or a reason why it does
   * not read, e.g. `block size 1024 << 9 is beyond 64 KiB`. Tells a damaged volume from one
   * that holds no filesystem Coffer reads.
   */
  openDamaged?(device: BlockDevice): Promise<Filesystem | { damage: string } | undefined>;
}
