/**
 * ext2/ext3/ext4 fixture images: one filesystem over the whole file, made by `mke2fs -d`
 * from {@link writeFsTree}, its directories indexed by `e2fsck -fyD` (mke2fs -d writes only
 * linear directories) and then checked by `e2fsck -fn`. Cached with {@link cachedFixture}.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { cachedFixture, fixtureDir, runTool, seededBytes } from './disks.js';
import { FS_TREE_TIME, writeFsTree } from './fs-tree.js';

/**
 * Which kind of ext filesystem:
 * - `ext4`: mke2fs defaults for ext4 (extents, flex_bg, 64bit, metadata_csum), 4 KiB blocks;
 * - `ext4-inline`: the same with `inline_data` (small files and directories in the inode);
 * - `ext4-meta-bg`: `meta_bg,^resize_inode,64bit` with 1 KiB blocks and 1024-block groups,
 *   so that the group descriptors are spread over many meta groups;
 * - `ext4-bigalloc-1k`: `bigalloc` in 16 KiB clusters of 1 KiB blocks (s_first_data_block is
 *   0, yet the superblock fills block 1 and the descriptors start at block 2);
 * - `ext4-bigalloc-1k-meta-bg`: the same with `meta_bg,^resize_inode` (meta group 0's
 *   descriptor block after block 1);
 * - `ext4-32bit`: `^64bit` (32-byte group descriptors), 4 KiB blocks;
 * - `ext3`: a journal, indirect block maps, 4 KiB blocks;
 * - `ext2-1k`: no journal, indirect block maps with 1 KiB blocks (a 150 MB file needs the
 *   triple indirect block) and 128-byte inodes (no nanoseconds, no creation time).
 */
export type ExtVariant = 'ext4' | 'ext4-inline' | 'ext4-meta-bg' | 'ext4-bigalloc-1k' | 'ext4-bigalloc-1k-meta-bg' | 'ext4-32bit' | 'ext3' | 'ext2-1k';

export interface ExtImageOptions {
  sizeMiB: number;
  /** Size of `big.bin` (see writeFsTree); default 150 MB. */
  bigFileBytes?: number;
  /** Default `ext4`. */
  variant?: ExtVariant;
  /** Adds {@link HUGE_SPARSE_FILE} (> 4 GiB, almost all holes). */
  hugeSparseFile?: boolean;
}

/**
 * The huge sparse file `hugeSparseFile` adds: its path, size (beyond 4 GiB, not a multiple
 * of any block size) and its data pieces (`seededBytes(seed, length)` at `offset`).
 */
export const HUGE_SPARSE_FILE = {
  path: 'huge/sparse-5g.bin',
  size: 5 * 1024 ** 3 + 1234,
  pieces: [
    { offset: 0, length: 65536, seed: 5001 },
    { offset: 4_500_000_123, length: 100_000, seed: 5002 },
    { offset: 5 * 1024 ** 3 + 1234 - 3000, length: 3000, seed: 5003 },
  ],
} as const;

const MKE2FS_ARGS: Record<ExtVariant, string[]> = {
  ext4: ['-t', 'ext4', '-b', '4096'],
  'ext4-inline': ['-t', 'ext4', '-b', '4096', '-O', 'inline_data'],
  'ext4-meta-bg': ['-t', 'ext4', '-b', '1024', '-g', '1024', '-O', 'meta_bg,^resize_inode,64bit'],
  'ext4-bigalloc-1k': ['-t', 'ext4', '-b', '1024', '-C', '16384', '-O', 'bigalloc'],
  'ext4-bigalloc-1k-meta-bg': ['-t', 'ext4', '-b', '1024', '-C', '16384', '-O', 'bigalloc,meta_bg,^resize_inode'],
  'ext4-32bit': ['-t', 'ext4', '-b', '4096', '-O', '^64bit'],
  ext3: ['-t', 'ext3', '-b', '4096'],
  'ext2-1k': ['-t', 'ext2', '-b', '1024', '-I', '128'],
};

/**
 * Builds (once) and returns the path of an image holding one ext filesystem of
 * `sizeMiB` MiB populated from the shared tree.
 * @example const image = await buildExtImage({ sizeMiB: 96, bigFileBytes: 3_000_000, variant: 'ext3' });
 */
export async function buildExtImage(options: ExtImageOptions): Promise<string> {
  const o = { variant: 'ext4' as ExtVariant, bigFileBytes: 150_000_000, hugeSparseFile: false, ...options };
  const name = `ext-${o.variant}-${o.sizeMiB}m${o.hugeSparseFile ? '-huge' : ''}`;
  return cachedFixture(name, { kind: 'ext-image', version: 1, ...o }, async (tmp) => {
    const src = await fs.mkdtemp(path.join(await fixtureDir(), '.ext-src-'));
    try {
      await writeFsTree(src, { bigFileBytes: o.bigFileBytes });
      if (o.hugeSparseFile) await writeHugeSparseFile(src);
      await makeFs(tmp, src, name, o.sizeMiB, MKE2FS_ARGS[o.variant]);
    } finally {
      await fs.rm(src, { recursive: true, force: true });
    }
  });
}

/**
 * A crafted, damaged ext4 image (8 MiB, no metadata_csum) whose reader must return every
 * entry as the disk has it, with errors per entry, and never hang:
 * - `/slash/name` — a file whose directory entry holds a `/` (bytes patched);
 * - `/..` — a second entry named `..` pointing at a file (bytes patched from `.Y`);
 * - `/oor` — an entry pointing at inode 0x00FFFFFF, beyond the inode count;
 * - `/a/b/escape` — a symlink to `../../../../etc/passwd`;
 * - `/a/b/loop` — a directory entry pointing at its grandparent `/a` (a loop);
 * - `/bad-extent.bin` — 20000 bytes whose extent points at block 4 000 000 000;
 * - `/a/b/victim.txt` — `hi\n`, an ordinary file.
 */
export async function buildHostileExtImage(): Promise<string> {
  return cachedFixture('ext-hostile', { kind: 'ext-hostile', version: 1 }, async (tmp) => {
    const src = await fs.mkdtemp(path.join(await fixtureDir(), '.ext-src-'));
    try {
      await fs.mkdir(path.join(src, 'a/b'), { recursive: true });
      await fs.writeFile(path.join(src, 'a/b/victim.txt'), 'hi\n');
      await fs.symlink('../../../../etc/passwd', path.join(src, 'a/b/escape'));
      await fs.writeFile(path.join(src, 'slashXname'), 'abcdefgh\n');
      await fs.writeFile(path.join(src, '.Y'), 'dd\n');
      await fs.writeFile(path.join(src, 'oor'), 'x\n');
      await fs.writeFile(path.join(src, 'bad-extent.bin'), seededBytes(77, 20000));
      await fs.writeFile(tmp, '');
      await fs.truncate(tmp, 8 * 1024 * 1024);
      await runTool('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-O', '^metadata_csum', ...identity('ext-hostile'), '-d', src, tmp]);
      await runTool('debugfs', ['-w', '-f', '-', tmp], 'link /a /a/b/loop\nsif /bad-extent.bin block[5] 4000000000\n');
      const rootBlock = Number((await runTool('debugfs', ['-R', 'blocks /', tmp])).trim().split(/\s+/)[0]);
      if (!Number.isSafeInteger(rootBlock) || rootBlock <= 0) throw new Error('debugfs gave no block for /');
      const handle = await fs.open(tmp, 'r+');
      try {
        const block = Buffer.alloc(4096);
        await handle.read(block, 0, 4096, rootBlock * 4096);
        const patch = (from: string, to: string): number => {
          const at = block.indexOf(Buffer.from(from));
          if (at < 8 || block[at - 2] !== from.length) throw new Error(`no entry ${from} in the root directory`);
          block.write(to, at, 'latin1');
          return at - 8;
        };
        patch('slashXname', 'slash/name');
        patch('.Y', '..');
        block.writeUInt32LE(0x00ffffff, patch('oor', 'oor'));
        await handle.write(block, 0, 4096, rootBlock * 4096);
      } finally {
        await handle.close();
      }
    } finally {
      await fs.rm(src, { recursive: true, force: true });
    }
  });
}

/** The names of {@link buildByteNamesExtImage}, as the bytes the disk holds. */
export const BYTE_NAMES = {
  /** `caf\xe9` (Latin-1 é): "latin1 e-acute\n". */
  latin1Acute: Buffer.from('caf\xe9', 'latin1'),
  /** `caf\xe8` (Latin-1 è): "latin1 e-grave\n". */
  latin1Grave: Buffer.from('caf\xe8', 'latin1'),
  /** `café` in UTF-8: "utf-8\n". */
  utf8: Buffer.from('café', 'utf8'),
  /** `\xff\xfe`: "ff fe\n". */
  ffFe: Buffer.from([0xff, 0xfe]),
  /** A folder `d\xe9j\xe0` (Latin-1 "déjà") holding `x\xb5` ("inside\n"). */
  folder: Buffer.from('d\xe9j\xe0', 'latin1'),
  inFolder: Buffer.from('x\xb5', 'latin1'),
  /** A symlink `lien` whose target is `caf\xe9`. */
  link: Buffer.from('lien', 'latin1'),
  /** The seven characters `caf\xe9` (a backslash, not a byte E9): "backslash text\n" (ext4 only). */
  backslashText: Buffer.from('caf\\xe9', 'utf8'),
  /** 255 bytes E9, the longest name: "255 bytes\n" (ext4 only). */
  longest: Buffer.alloc(255, 0xe9),
  /** In the folder, `dur\xe9`: a second name (hard link) of `caf\xe8` (ext4 only). */
  hardLink: Buffer.from('dur\xe9', 'latin1'),
  /** `esc\x1b\xe9`: a control character (escaped to `%1B` on restore) before a byte E9, "escape\n" (ext4 only). */
  control: Buffer.from('esc\x1b\xe9', 'latin1'),
} as const;

/**
 * An 8 MiB ext4 (mke2fs -d) whose names are bytes that are not UTF-8, as a guest with a
 * Latin-1 locale writes them ({@link BYTE_NAMES}): two names that differ only in a byte
 * that is not UTF-8, a UTF-8 name beside them, a folder and a link target with such bytes,
 * a name that is the text `caf\xe9`, a 255-byte name, a hard link with such bytes and a
 * name with a control character before such a byte.
 */
export async function buildByteNamesExtImage(): Promise<string> {
  return cachedFixture('ext-byte-names', { kind: 'ext-byte-names', version: 2 }, async (tmp) => {
    const src = await fs.mkdtemp(path.join(await fixtureDir(), '.ext-src-'));
    const at = (...names: Buffer[]): Buffer => Buffer.concat([Buffer.from(src), ...names.flatMap((n) => [Buffer.from('/'), n])]);
    try {
      await fs.writeFile(at(BYTE_NAMES.latin1Acute), 'latin1 e-acute\n');
      await fs.writeFile(at(BYTE_NAMES.latin1Grave), 'latin1 e-grave\n');
      await fs.writeFile(at(BYTE_NAMES.utf8), 'utf-8\n');
      await fs.writeFile(at(BYTE_NAMES.ffFe), 'ff fe\n');
      await fs.mkdir(at(BYTE_NAMES.folder));
      await fs.writeFile(at(BYTE_NAMES.folder, BYTE_NAMES.inFolder), 'inside\n');
      await fs.symlink(BYTE_NAMES.latin1Acute, at(BYTE_NAMES.link));
      await fs.writeFile(at(BYTE_NAMES.backslashText), 'backslash text\n');
      await fs.writeFile(at(BYTE_NAMES.longest), '255 bytes\n');
      await fs.link(at(BYTE_NAMES.latin1Grave), at(BYTE_NAMES.folder, BYTE_NAMES.hardLink));
      await fs.writeFile(at(BYTE_NAMES.control), 'escape\n');
      await fs.writeFile(tmp, '');
      await fs.truncate(tmp, 8 * 1024 * 1024);
      await runTool('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', ...identity('ext-byte-names'), '-d', src, tmp]);
    } finally {
      await fs.rm(src, { recursive: true, force: true });
    }
  });
}

/** Fixed UUID and hash seed derived from the fixture's name, so rebuilds match. */
function identity(name: string): string[] {
  const uuid = (purpose: string): string => createHash('sha256').update(`${name}:${purpose}`).digest('hex').slice(0, 32)
    .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
  return ['-U', uuid('fs'), '-L', 'coffer-ext', '-E', `nodiscard,hash_seed=${uuid('hash')}`];
}

async function makeFs(tmp: string, src: string, name: string, sizeMiB: number, args: string[]): Promise<void> {
  await fs.writeFile(tmp, '');
  await fs.truncate(tmp, sizeMiB * 1024 * 1024);
  await runTool('mke2fs', ['-q', '-F', ...args, ...identity(name), '-d', src, tmp]);
  try {
    await runTool('e2fsck', ['-fyD', tmp]); // index the directories (htree)
  } catch (error) {
    // Exit code 1: the filesystem was modified (its directories optimised), as asked.
    if ((error as { cause?: { code?: unknown } }).cause?.code !== 1) throw error;
  }
  await runTool('e2fsck', ['-fn', tmp]);
}

async function writeHugeSparseFile(root: string): Promise<void> {
  const file = path.join(root, HUGE_SPARSE_FILE.path);
  await fs.mkdir(path.dirname(file), { recursive: true });
  const handle = await fs.open(file, 'w');
  try {
    for (const piece of HUGE_SPARSE_FILE.pieces) await handle.write(seededBytes(piece.seed, piece.length), 0, piece.length, piece.offset);
    await handle.truncate(HUGE_SPARSE_FILE.size);
  } finally {
    await handle.close();
  }
  const t = FS_TREE_TIME - 7;
  await fs.utimes(file, t, t);
  await fs.utimes(path.dirname(file), t, t);
  await fs.utimes(root, FS_TREE_TIME, FS_TREE_TIME);
}
