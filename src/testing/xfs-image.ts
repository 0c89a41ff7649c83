/**
 * An XFS v5 image holding the shared test tree ({@link writeFsTree}), made without mounting:
 * `mkfs.xfs -p PROTOFILE` copies the tree in, `xfs_repair -n` checks the result.
 *
 * What xfsprogs 6.1's protofile can and cannot write (see /work/shared/notes/test-disks.md):
 * names without whitespace or `:` (the tree has none), though bytes that are not UTF-8 are
 * copied as they are, in names and symlink targets ({@link buildByteNamesXfsImage}); regular
 * files are written whole, so holes become zeros (`sparse.img` is 64 MiB of allocated blocks
 * here); mtimes are not kept (every inode gets the time mkfs ran); there are no hard links
 * (`links/hard-link` is a second regular file with the same bytes, nlink 1); each file is one
 * extent, so a file larger than an allocation group would corrupt the next group: the image
 * always has two groups and {@link buildXfsImage} refuses a big file that does not fit in one.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { cachedFixture, fixtureDir, runTool } from './disks.js';
import { BYTE_NAMES } from './ext-image.js';
import { writeFsTree } from './fs-tree.js';

const MiB = 1024 * 1024;

/** Options of {@link buildXfsImage}. */
export interface XfsImageOptions {
  /** Size of the image (and the filesystem); mkfs.xfs 6.1 refuses less than 300 MiB. */
  sizeMiB: number;
  /** Size of `big.bin` (default that of {@link writeFsTree}: 150 MB). */
  bigFileBytes?: number;
  /** Volume label, at most 12 bytes (default `coffer-xfs`). */
  label?: string;
}

/**
 * The path of a cached raw image of `sizeMiB` holding one XFS v5 filesystem (CRCs, ftype,
 * bigtime, two allocation groups, 4 KiB blocks) over the whole file, populated from
 * {@link writeFsTree} and checked by `xfs_repair -n`.
 * @example const image = await buildXfsImage({ sizeMiB: 320, bigFileBytes: 3_000_000 });
 * // xfs_db -r -c 'path /wide' -c ls "$image"
 */
export async function buildXfsImage(options: XfsImageOptions): Promise<string> {
  const o = { sizeMiB: options.sizeMiB, bigFileBytes: options.bigFileBytes ?? 150_000_000, label: options.label ?? 'coffer-xfs' };
  if (!Number.isInteger(o.sizeMiB) || o.sizeMiB < 300) throw new RangeError(`an XFS image needs at least 300 MiB (mkfs.xfs 6.1), not ${o.sizeMiB}`);
  if (o.bigFileBytes > (o.sizeMiB / 2 - 16) * MiB) throw new RangeError(`big.bin (${o.bigFileBytes} bytes) must fit in one of two allocation groups of ${o.sizeMiB} MiB`);
  if (Buffer.byteLength(o.label) > 12 || /[\s:]/.test(o.label)) throw new RangeError(`bad XFS label ${JSON.stringify(o.label)}`);
  const uuid = createHash('sha256').update(`coffer-xfs:${JSON.stringify(o)}`).digest('hex').slice(0, 32)
    .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
  return cachedFixture('xfs', { xfsRecipe: 1, ...o }, async (tmp) => {
    const src = await fs.mkdtemp(path.join(await fixtureDir(), '.xfs-src-'));
    try {
      const tree = path.join(src, 'tree');
      await fs.mkdir(tree);
      await writeFsTree(tree, { bigFileBytes: o.bigFileBytes });
      const proto = path.join(src, 'proto');
      await fs.writeFile(proto, `coffer\n0 0\n${await protoEntry(tree, '')}$\n`);
      await fs.writeFile(tmp, '');
      await fs.truncate(tmp, o.sizeMiB * MiB);
      await runTool('mkfs.xfs', ['-q', '-f', '-K', '-L', o.label, '-m', `uuid=${uuid}`, '-d', 'agcount=2', '-p', proto, tmp]);
      await runTool('xfs_repair', ['-n', tmp]);
    } finally {
      await fs.rm(src, { recursive: true, force: true });
    }
  });
}

/**
 * One protofile entry for `file` (named `name` in its parent; the root has no name): a
 * 6-character mode (type `-dlbcp`, `u` setuid, `g` setgid, 3 octal digits), uid, gid, then
 * the source path (files), the target (symlinks), or the children and `$` (directories).
 */
async function protoEntry(file: string, name: string): Promise<string> {
  const st = await fs.lstat(file);
  const mode = `${st.mode & 0o4000 ? 'u' : '-'}${st.mode & 0o2000 ? 'g' : '-'}${(st.mode & 0o777).toString(8).padStart(3, '0')}`;
  const head = `${name}${name === '' ? '' : ' '}`;
  if (st.isDirectory()) {
    let out = `${head}d${mode} ${st.uid} ${st.gid}\n`;
    for (const child of (await fs.readdir(file)).sort()) out += await protoEntry(path.join(file, child), child);
    return name === '' ? out : `${out}$\n`;
  }
  if (st.isSymbolicLink()) return `${head}l${mode} ${st.uid} ${st.gid} ${await fs.readlink(file)}\n`;
  if (st.isFile()) return `${head}-${mode} ${st.uid} ${st.gid} ${file}\n`;
  throw new Error(`${file}: the test tree holds only files, directories and symlinks`);
}

/**
 * A 300 MiB (sparse) XFS v5 image whose root holds {@link BYTE_NAMES}, with the contents of
 * `buildByteNamesExtImage`: names that are not UTF-8, as a guest with a Latin-1 locale
 * writes them. Made without mounting: the protofile is written as bytes, and mkfs.xfs 6.1
 * (run under LC_ALL=C) copies raw bytes of names and of symlink targets as they are; only
 * whitespace separates its fields, which no name here holds. Contents come from files with
 * ASCII names, since the protofile names a source path for each regular file.
 */
export async function buildByteNamesXfsImage(): Promise<string> {
  const uuid = createHash('sha256').update('coffer-xfs:byte-names').digest('hex').slice(0, 32)
    .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
  return cachedFixture('xfs-byte-names', { kind: 'xfs-byte-names', version: 1 }, async (tmp) => {
    const src = await fs.mkdtemp(path.join(await fixtureDir(), '.xfs-src-'));
    try {
      const file = async (name: Buffer, content: string): Promise<Buffer> => {
        if (name.some((b) => b === 0x20 || (b >= 0x09 && b <= 0x0d))) throw new RangeError(`a protofile name cannot hold whitespace: ${name.toString('hex')}`);
        const source = path.join(src, `content-${name.toString('hex')}`);
        await fs.writeFile(source, content);
        return Buffer.concat([name, Buffer.from(` ---644 0 0 ${source}\n`)]);
      };
      const proto = Buffer.concat([
        Buffer.from('coffer\n0 0\nd--755 0 0\n'),
        await file(BYTE_NAMES.latin1Acute, 'latin1 e-acute\n'),
        await file(BYTE_NAMES.latin1Grave, 'latin1 e-grave\n'),
        await file(BYTE_NAMES.utf8, 'utf-8\n'),
        await file(BYTE_NAMES.ffFe, 'ff fe\n'),
        BYTE_NAMES.folder, Buffer.from(' d--755 0 0\n'),
        await file(BYTE_NAMES.inFolder, 'inside\n'),
        Buffer.from('$\n'),
        BYTE_NAMES.link, Buffer.from(' l--777 0 0 '), BYTE_NAMES.latin1Acute, Buffer.from('\n'),
        Buffer.from('$\n'),
      ]);
      await fs.writeFile(path.join(src, 'proto'), proto);
      await fs.writeFile(tmp, '');
      await fs.truncate(tmp, 300 * MiB);
      await runTool('mkfs.xfs', ['-q', '-f', '-K', '-L', 'coffer-xfs', '-m', `uuid=${uuid}`, '-d', 'agcount=2', '-p', path.join(src, 'proto'), tmp]);
      await runTool('xfs_repair', ['-n', tmp]);
    } finally {
      await fs.rm(src, { recursive: true, force: true });
    }
  });
}

/**
 * The path of a cached, uncompressed copy of `fixtures/xfs-fragmented.img.gz`: a 64 MiB XFS
 * v5 filesystem made by `fixtures/make-xfs-fragmented.sh` on a loop mount (what
 * `mkfs.xfs -p` cannot write: a B+tree block map, unwritten extents, holes, hard links, a
 * block directory, device nodes, times before 1970 and after 2038). See that script for
 * every file and its content.
 */
export async function xfsFragmentedImage(): Promise<string> {
  const gz = fileURLToPath(new URL('../../../src/testing/fixtures/xfs-fragmented.img.gz', import.meta.url));
  const packed = await fs.readFile(gz);
  const sha = createHash('sha256').update(packed).digest('hex');
  return cachedFixture('xfs-fragmented', { sha }, async (tmp) => {
    await fs.writeFile(tmp, gunzipSync(packed));
  });
}
