import type { BlockDevice } from '../../blockdev/index.js';
import { CofferError } from '../../errors/index.js';
import type { Filesystem, FsDirEntry, FsFileExtent, FsNode, FsPhysicalExtent, FsXattr } from '../filesystem.js';
import { fsCorrupt } from '../fs-errors.js';
import { AttributeType, decodeUtf16 } from './attribute.js';
import type { AttributeStream } from './attribute-stream.js';
import { DirectoryIndex } from './directory-index.js';
import { Namespace, parseStandardInformation } from './metadata.js';
import { MAX_REPARSE_BYTES, namedStreams, reparsePointOf, toFsNode } from './node.js';
import { MftNumber, NtfsVolume, type Inode } from './ntfs-volume.js';
import type { ReparsePoint } from './reparse-point.js';
import { dosAttributesXattr, readStreamXattrs } from './stream-xattrs.js';
import { UpcaseTable, utf16Units } from './upcase.js';

/** Bigger single reads are a caller bug (callers read a few MiB at a time). */
const MAX_READ = 256 * 1024 * 1024;

/**
 * A read-only NTFS volume (NTFS 1.2 and 3.x as Windows and ntfs-3g write them).
 *
 * Names: a directory lists each file under its Win32 (or POSIX) names; DOS-only 8.3 aliases
 * are left out of listings (as `ntfsls` does) but `lookup` finds them, as Windows does.
 * Lookup is case-insensitive through the volume's $UpCase table. Like `ntfsls` without
 * `-s`, listings leave out the NTFS metadata files (MFT records 0–15: `$MFT`, `$Bitmap`,
 * `$Extend`…, all in the root); `lookup` still finds them by name.
 * Links: symlinks and junctions are `symlink` nodes whose target is POSIX-ish (see
 * `posixTarget` in reparse-point.ts); other reparse points keep their file/directory type
 * and show `reparse:0x…` in `attributes`.
 * `id` is the MFT record number.
 */
export class NtfsFilesystem implements Filesystem {
  readonly type = 'ntfs' as const;
  readonly caseInsensitive = true;

  private constructor(
    private readonly volume: NtfsVolume,
    private readonly upcaseTable: UpcaseTable,
    readonly label: string,
  ) {}

  get device(): BlockDevice {
    return this.volume.device;
  }
  get uuid(): string {
    return this.volume.boot.serial;
  }
  get size(): number {
    return this.volume.boot.volumeSize;
  }
  get blockSize(): number {
    return this.volume.boot.clusterSize;
  }

  /** Opens the volume: boot sector, $MFT runlist, $UpCase, the label from $Volume. */
  static async open(device: BlockDevice): Promise<NtfsFilesystem> {
    const volume = await NtfsVolume.open(device);
    const upcaseInode = await volume.inode(MftNumber.UPCASE);
    const upcaseStream = dataStream(volume, upcaseInode, '', '$UpCase');
    const upcase = UpcaseTable.parse(await upcaseStream.read(0, UpcaseTable.BYTES + 1));
    const volumeInode = await volume.inode(MftNumber.VOLUME);
    const name = volumeInode.attributes.find((a) => a.type === AttributeType.VOLUME_NAME);
    const label = name !== undefined && name.resident ? decodeUtf16(name.value) : '';
    return new NtfsFilesystem(volume, upcase, label);
  }

  async root(): Promise<FsNode> {
    return this.node(MftNumber.ROOT);
  }

  async readdir(directory: FsNode): Promise<FsDirEntry[]> {
    const index = await this.index(directory);
    const out: FsDirEntry[] = [];
    for (const entry of await index.entries()) {
      const key = entry.key!;
      if (key.namespace === Namespace.DOS) continue; // the 8.3 alias of a name listed under its long name
      if (entry.file.record < MftNumber.FIRST_USER || key.name === '.' || key.name === '..') continue;
      try {
        out.push({ name: key.name, node: await this.node(entry.file.record, entry.file.sequence) });
      } catch (error) {
        if (!(error instanceof CofferError)) throw error;
        out.push({ name: key.name, error });
      }
    }
    return out;
  }

  async lookup(directory: FsNode, name: string): Promise<FsNode | undefined> {
    const index = await this.index(directory);
    const matches = await index.find(utf16Units(name), this.upcaseTable);
    const match = matches.find((m) => m.key!.name === name) ?? matches[0];
    return match === undefined ? undefined : this.node(match.file.record, match.file.sequence);
  }

  async read(file: FsNode, offset: number, length: number): Promise<Uint8Array> {
    return this.readStream(file, '', offset, length);
  }

  async readStream(file: FsNode, stream: string, offset: number, length: number): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || length > MAX_READ) {
      throw new RangeError(`bad read of ${length} bytes at ${offset}`);
    }
    const inode = await this.inodeOf(file);
    const extents = inode.attributes.filter((a) => a.type === AttributeType.DATA && a.name === stream);
    if (extents.length === 0) {
      if (stream === '') return new Uint8Array(0); // directories, links
      throw new CofferError('E_PATH_NOT_FOUND', `ntfs: MFT record ${inode.number} has no stream named ${JSON.stringify(stream)}`, { subject: { object: file.id } });
    }
    return dataStream(this.volume, inode, stream, `MFT record ${inode.number}`, 'device').read(offset, length);
  }

  async *fileExtents(file: FsNode): AsyncIterable<FsFileExtent> {
    const inode = await this.inodeOf(file);
    if (!inode.attributes.some((a) => a.type === AttributeType.DATA && a.name === '')) return;
    yield* dataStream(this.volume, inode, '', `MFT record ${inode.number}`, 'device').extents();
  }

  /**
   * The base MFT record (`metadata`; extension records are not listed), then the content: a
   * file's unnamed $DATA (resident: `packed` inside the record; else its runs, compressed
   * units `packed`), a directory's $I30 index allocation.
   */
  async *physicalExtents(node: FsNode): AsyncIterable<FsPhysicalExtent> {
    const inode = await this.inodeOf(node);
    const record = this.volume.recordLocation(inode.number);
    for (const piece of record) yield { kind: 'metadata', fileOffset: 0, fileLength: node.size, deviceOffset: piece.offset, length: piece.length, what: `MFT record ${inode.number}` };
    const [type, name] = node.type === 'directory' ? [AttributeType.INDEX_ALLOCATION, '$I30'] : [AttributeType.DATA, ''];
    const extents = inode.attributes.filter((a) => a.type === type && a.name === name);
    if (extents.length === 0) return;
    if (extents[0]!.resident) {
      const size = extents[0]!.value.length;
      if (size > 0) for (const piece of record) yield { kind: 'packed', fileOffset: 0, fileLength: size, deviceOffset: piece.offset, length: piece.length };
      return;
    }
    yield* this.volume.stream(extents, `MFT record ${inode.number}`, 'device').physicalExtents();
  }

  /**
   * The named streams as `user.NAME` (on-disk order; each read whole, resident or not, sparse
   * and compressed ones too), then the DOS attributes as `system.ntfs_attrib_be`, archive-only:
   * what ntfs-3g shows (stream-xattrs.ts). Streams left out say why in FsNode.streams.
   * Throws `E_FS_CORRUPT` for a damaged stream, `E_FS_UNSUPPORTED` past STREAM_XATTR_LIMITS or
   * for an encrypted one.
   */
  async xattrs(node: FsNode): Promise<FsXattr[]> {
    const inode = await this.inodeOf(node);
    const what = `MFT record ${inode.number}`;
    const si = inode.attributes.find((a) => a.type === AttributeType.STANDARD_INFORMATION);
    if (si === undefined || !si.resident) throw fsCorrupt('ntfs', `${what}: no $STANDARD_INFORMATION`, { object: node.id });
    const { fileAttributes } = parseStandardInformation(si.value, inode.number);
    const read = (name: string, size: number): Promise<Uint8Array> => dataStream(this.volume, inode, name, what, 'device').read(0, size);
    const streams = await readStreamXattrs(namedStreams(inode, node.type), read, { what });
    return [...streams, dosAttributesXattr(fileAttributes, inode.directory)];
  }

  async readlink(link: FsNode): Promise<string> {
    const inode = await this.inodeOf(link);
    const target = (await this.reparse(inode))?.target;
    if (target === undefined) throw new CofferError('E_FS_UNSUPPORTED', `ntfs: MFT record ${inode.number} is not a symbolic link or junction`, { subject: { object: link.id } });
    return target;
  }

  private async node(record: number, sequence?: number): Promise<FsNode> {
    const inode = await this.volume.inode(record);
    if (sequence !== undefined && sequence !== 0 && sequence !== inode.sequence) {
      throw fsCorrupt('ntfs', `stale reference to MFT record ${record} (sequence ${sequence}, record has ${inode.sequence})`, { object: String(record) });
    }
    return toFsNode(inode, await this.reparse(inode));
  }

  private reparse(inode: Inode): Promise<ReparsePoint | undefined> {
    return reparsePointOf(inode, (extents) => this.volume.stream(extents, `MFT record ${inode.number}: reparse point`).read(0, MAX_REPARSE_BYTES));
  }

  private async index(directory: FsNode): Promise<DirectoryIndex> {
    const inode = await this.inodeOf(directory);
    return DirectoryIndex.open(this.volume, inode);
  }

  private inodeOf(node: FsNode): Promise<Inode> {
    if (!/^\d{1,15}$/.test(node.id)) throw new RangeError(`not an NTFS node id: ${node.id}`);
    return this.volume.inode(Number(node.id));
  }
}

function dataStream(volume: NtfsVolume, inode: Inode, name: string, what: string, via: 'device' | 'metadata' = 'metadata'): AttributeStream {
  const extents = inode.attributes.filter((a) => a.type === AttributeType.DATA && a.name === name);
  return volume.stream(extents, name === '' ? what : `${what}: stream ${name}`, via);
}
