import type { FsNode, FsNodeType } from '../filesystem.js';
import { deviceNumbers, FLAGS, type ExtInode } from './inode.js';

/** An ext inode as an {@link FsNode}; keeps the parsed inode so later calls need no re-read. */
export class ExtNode implements FsNode {
  readonly id: string;
  readonly type: FsNodeType;
  readonly size: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly nlink: number;
  readonly mtimeMs: number;
  readonly atimeMs: number;
  readonly ctimeMs: number;
  readonly birthtimeMs: number;
  readonly attributes?: readonly string[];
  readonly rdev?: { major: number; minor: number };

  constructor(
    /** The filesystem object that read it (nodes of another filesystem are re-read by id). */
    readonly owner: object,
    readonly inode: ExtInode,
  ) {
    this.id = String(inode.number);
    this.type = inode.type;
    this.size = inode.size;
    this.mode = inode.mode & 0o7777;
    this.uid = inode.uid;
    this.gid = inode.gid;
    this.nlink = inode.linksCount;
    this.mtimeMs = inode.mtimeMs;
    this.atimeMs = inode.atimeMs;
    this.ctimeMs = inode.ctimeMs;
    this.birthtimeMs = inode.birthtimeMs;
    const attributes: string[] = [];
    if ((inode.flags & FLAGS.ENCRYPT) !== 0) attributes.push('encrypted');
    if ((inode.flags & FLAGS.INLINE_DATA) !== 0) attributes.push('inline');
    if ((inode.flags & FLAGS.CASEFOLD) !== 0) attributes.push('casefold');
    if (attributes.length > 0) this.attributes = attributes;
    if (inode.type === 'char-device' || inode.type === 'block-device') this.rdev = deviceNumbers(inode);
  }
}
