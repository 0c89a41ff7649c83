/**
 * The one tree of files every filesystem fixture is populated from (ext4, FAT, NTFS, XFS), so
 * file-level restore is checked on the same content everywhere. Deterministic: the same
 * options give the same names, bytes, modes and times.
 *
 * Layout (paths relative to the root):
 * - `big.bin` — `bigFileBytes` of `seededBytes(150)` (150 MB in the full fixtures);
 * - `docs/readme.txt`, `docs/notes.txt` (text), `docs/empty.txt` (0 bytes),
 *   `docs/script.sh` (mode 0755), `docs/private.key` (mode 0600);
 * - `deep/d01/d02/…/d24/leaf.txt` — a directory 24 levels deep;
 * - `many/entry-with-a-longer-name-000.txt` … `-199.txt` — 200 small files (beyond one
 *   directory block: ext4 htree, NTFS index allocation, XFS leaf directories);
 * - `wide/w0000` … `w1499` — 1500 empty files (XFS node directories, two-level indexes);
 * - `unicode/café-crème.txt`, `unicode/Ελληνικά.txt`, `unicode/日本語のファイル.txt`,
 *   `unicode/Ünïcödé-dir/inner.txt` — only characters of the Basic Multilingual Plane (mtools
 *   truncates the others) and no whitespace (xfsprogs' protofile cannot write it);
 * - `sparse.img` — 64 MiB with 64 KiB of data at 0, 1 MiB and 40 MiB, holes elsewhere;
 * - `links/` (skipped by filesystems without links, see {@link FS_TREE_LINKS}):
 *   `relative` → `../docs/readme.txt`, `absolute` → `/etc/hostname`,
 *   `dir-link` → `../deep/d01`, `long-target` → a 200-character relative path (a slow
 *   symlink on ext4, a remote one on XFS), `dangling` → `nowhere/at/all`,
 *   `hard-link` — a second name of `docs/notes.txt`;
 * - `empty-dir/`.
 * Files and folders carry distinct fixed mtimes from {@link FS_TREE_TIME} downwards.
 */
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { seededBytes } from './disks.js';

/** The newest mtime in the tree, seconds since 1970 (2023-11-14T22:13:20Z). */
export const FS_TREE_TIME = 1_700_000_000;

/** The entries of `links/` and what each is, for fixtures of filesystems without links. */
export const FS_TREE_LINKS = {
  relative: '../docs/readme.txt',
  absolute: '/etc/hostname',
  'dir-link': '../deep/d01',
  'long-target': `../${'long-directory-name-segment/'.repeat(6)}${'x'.repeat(200 - 3 - 6 * 28)}`,
  dangling: 'nowhere/at/all',
} as const;

export interface FsTreeOptions {
  /** Size of `big.bin`; default 150 MB (150 × 10^6 bytes). */
  bigFileBytes?: number;
  /** Leave out `links/` (symlinks and the hard link): for FAT. */
  withoutLinks?: boolean;
}

/** Writes the tree into `root` (an empty, existing directory). */
export async function writeFsTree(root: string, options: FsTreeOptions = {}): Promise<void> {
  const big = options.bigFileBytes ?? 150_000_000;
  const write = async (rel: string, data: Buffer | string, mode = 0o644): Promise<void> => {
    await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await fs.writeFile(path.join(root, rel), data, { mode });
    await fs.chmod(path.join(root, rel), mode);
  };
  const handle = await fs.open(path.join(root, 'big.bin'), 'w');
  try {
    for (let done = 0, piece = 0; done < big; piece++) {
      const length = Math.min(16 << 20, big - done);
      await handle.write(seededBytes(150_000 + piece, length), 0, length, done);
      done += length;
    }
  } finally {
    await handle.close();
  }
  const text = (words: number, seed: number): string =>
    Array.from({ length: words }, (_, i) => ['disk', 'block', 'chunk', 'extent', 'inode', 'backup', 'restore'][(i * 7 + seed) % 7]).join(' ') + '\n';
  await write('docs/readme.txt', `Coffer file-level restore fixture.\n${text(400, 1)}`);
  await write('docs/notes.txt', text(3000, 2));
  await write('docs/empty.txt', '');
  await write('docs/script.sh', '#!/bin/sh\necho restored\n', 0o755);
  await write('docs/private.key', seededBytes(9, 1600).toString('base64'), 0o600);
  const deep = Array.from({ length: 24 }, (_, i) => `d${String(i + 1).padStart(2, '0')}`).join('/');
  await write(`deep/${deep}/leaf.txt`, 'at the bottom\n');
  for (let i = 0; i < 200; i++) await write(`many/entry-with-a-longer-name-${String(i).padStart(3, '0')}.txt`, `file ${i}\n${text(i, i)}`);
  await fs.mkdir(path.join(root, 'wide'));
  for (let i = 0; i < 1500; i++) await fs.writeFile(path.join(root, 'wide', `w${String(i).padStart(4, '0')}`), '');
  await write('unicode/café-crème.txt', 'café\n');
  await write('unicode/Ελληνικά.txt', 'γεια\n');
  await write('unicode/日本語のファイル.txt', 'こんにちは\n');
  await write('unicode/Ünïcödé-dir/inner.txt', 'inner\n');
  const sparse = await fs.open(path.join(root, 'sparse.img'), 'w');
  try {
    for (const [at, seed] of [[0, 1], [1 << 20, 2], [40 << 20, 3]] as const) await sparse.write(seededBytes(7000 + seed, 65536), 0, 65536, at);
    await sparse.truncate(64 << 20);
  } finally {
    await sparse.close();
  }
  if (!options.withoutLinks) {
    await fs.mkdir(path.join(root, 'links'));
    for (const [name, target] of Object.entries(FS_TREE_LINKS)) await fs.symlink(target, path.join(root, 'links', name));
    await fs.link(path.join(root, 'docs/notes.txt'), path.join(root, 'links/hard-link'));
  }
  await fs.mkdir(path.join(root, 'empty-dir'));
  await freeze(root, { n: 0 });
}

/** Sets every entry below `dir` (and `dir`) to a distinct fixed time, children first. */
async function freeze(dir: string, counter: { n: number }): Promise<void> {
  for (const name of (await fs.readdir(dir)).sort()) {
    const p = path.join(dir, name);
    const st = await fs.lstat(p);
    if (st.isDirectory()) await freeze(p, counter);
    const t = FS_TREE_TIME - 60 * ++counter.n;
    await fs.lutimes(p, t, t);
  }
  await fs.utimes(dir, FS_TREE_TIME, FS_TREE_TIME);
}
