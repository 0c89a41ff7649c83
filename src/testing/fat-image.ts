/**
 * FAT12/16/32 filesystem images made by mtools (no mounting) and checked with `fsck.fat -n`
 * from dosfstools, cached with {@link cachedFixture}.
 *
 * - FAT32 (`mformat -F`) and FAT16 (mformat's choice for ~200 MiB) hold the shared tree of
 *   {@link writeFsTree} without links (FAT has none).
 * - FAT12 (a 4 MiB floppy-like image; the shared tree does not fit) holds the small tree of
 *   {@link FAT_SMALL_TREE}: names in every case form, attributes, a fragmented file, deleted
 *   entries, a directory spanning several clusters.
 *
 * mtools runs with `TZ=UTC` (FAT stores local time: the fixtures' local time is UTC),
 * `LC_ALL=C.UTF-8` (long names are converted from UTF-8) and `SOURCE_DATE_EPOCH` (the volume
 * label entry's time), so a rebuild on one machine gives the same bytes; across machines the
 * order of entries may differ (mcopy -s copies in the host's readdir order).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { cachedFixture, fixtureDir, requireTools, runTool, seededBytes } from './disks.js';
import { FS_TREE_TIME, writeFsTree } from './fs-tree.js';

const execFileAsync = promisify(execFile);

/** Options of {@link buildFatImage}. */
export interface FatImageOptions {
  /** Size of the image (the whole file is the filesystem). FAT12 needs at most 32. */
  sizeMiB: number;
  /** Size of `big.bin` of the shared tree (FAT16/32 only); default 150 MB. */
  bigFileBytes?: number;
  /** Default 32. 12 holds {@link FAT_SMALL_TREE} instead of the shared tree. */
  fatBits?: 12 | 16 | 32;
  /** Volume label (up to 11 ASCII characters); default `COFFER`. */
  label?: string;
  /** Volume serial number (8 hex digits); default `c0ffee12`. */
  serial?: string;
}

/**
 * The FAT12 fixture's tree (paths relative to the root). Files are written in this order, then
 * `frag-b.bin` and `docs/doomed.txt` are deleted (`mdel`: their entries become 0xE5) and
 * `fragmented.bin` is copied last, so it fills frag-b's clusters first and continues after
 * the other files (a chain with a jump). mtimes: {@link FS_TREE_TIME} − 120 s × (index + 1).
 */
export const FAT_SMALL_TREE = {
  /** name → content (a string, or a length of `seededBytes(index)`) and mtools attributes. */
  files: [
    { path: 'README.TXT', content: 'upper case 8.3 name, no long name\n' },
    { path: 'lower.txt', content: 'lower case 8.3 name (NT case flags)\n' },
    { path: 'UPPER.txt', content: 'upper base, lower extension\n' },
    { path: 'Mixed Case Name.txt', content: 'needs a long name\n' },
    { path: 'café.txt', content: 'non-ASCII long name\n' },
    { path: 'empty.dat', content: '' },
    { path: 'big.bin', content: 1_048_576 },
    { path: 'hidden.txt', content: 'hidden\n', attributes: ['+h'] },
    { path: 'system.sys', content: 'system\n', attributes: ['+s'] },
    { path: 'readonly.txt', content: 'read-only\n', attributes: ['+r'] },
    { path: 'frag-a.bin', content: 5000 },
    { path: 'frag-b.bin', content: 5000 },
    { path: 'frag-c.bin', content: 5000 },
    { path: 'a/b/c/deep.txt', content: 'three levels down\n' },
    { path: 'docs/doomed.txt', content: 'deleted before the end\n' },
    ...Array.from({ length: 40 }, (_, i) => ({ path: `docs/a-long-file-name-number-${String(i).padStart(2, '0')}.txt`, content: `document ${i}\n` })),
    { path: 'fragmented.bin', content: 300_000 },
  ] as readonly { path: string; content: string | number; attributes?: readonly string[] }[],
  directories: ['a', 'a/b', 'a/b/c', 'docs', 'empty'] as readonly string[],
  deleted: ['frag-b.bin', 'docs/doomed.txt'] as readonly string[],
} as const;

/**
 * A FAT image of `sizeMiB` MiB (one filesystem over the whole file), populated and checked
 * with `fsck.fat -n`; returns the path of the cached file.
 * @example
 * const image = await buildFatImage({ sizeMiB: 128, bigFileBytes: 3_000_000 });
 * // oracle: MTOOLS_SKIP_CHECK=1 mdir -/ -a -i "$image" ::
 */
export async function buildFatImage(options: FatImageOptions): Promise<string> {
  const o = {
    sizeMiB: options.sizeMiB,
    fatBits: options.fatBits ?? 32,
    bigFileBytes: options.fatBits === 12 ? 0 : options.bigFileBytes ?? 150_000_000,
    label: options.label ?? 'COFFER',
    serial: options.serial ?? 'c0ffee12',
  };
  if (!/^[0-9A-Za-z _-]{0,11}$/.test(o.label)) throw new RangeError(`bad FAT label ${JSON.stringify(o.label)}`);
  if (!/^[0-9a-fA-F]{8}$/.test(o.serial)) throw new RangeError(`bad FAT serial ${o.serial}`);
  await requireTools('mformat', 'mcopy', 'mdel', 'mattrib', 'fsck.fat');
  return cachedFixture(`fat${o.fatBits}`, { kind: 'fat', recipe: 1, ...o }, async (tmp) => {
    await fs.writeFile(tmp, '');
    await fs.truncate(tmp, o.sizeMiB * 1024 * 1024);
    await mtools('mformat', ['-i', tmp, ...(o.fatBits === 32 ? ['-F'] : []), '-N', o.serial, ...(o.label ? ['-v', o.label] : []), '::']);
    const src = await fs.mkdtemp(path.join(await fixtureDir(), '.fat-src-'));
    try {
      if (o.fatBits === 12) {
        await writeSmallFatTree(tmp, src);
      } else {
        await writeFsTree(src, { bigFileBytes: o.bigFileBytes, withoutLinks: true });
        const top = (await fs.readdir(src)).sort().map((n) => path.join(src, n));
        await mtools('mcopy', ['-s', '-p', '-m', '-i', tmp, ...top, '::/']);
      }
    } finally {
      await fs.rm(src, { recursive: true, force: true });
    }
    const report = await runTool('fsck.fat', ['-n', '-v', tmp]);
    const bits = /\d+ FATs, (\d+) bit entries/.exec(report)?.[1];
    if (bits !== String(o.fatBits)) throw new Error(`mformat made FAT${bits ?? '?'} instead of FAT${o.fatBits} on ${o.sizeMiB} MiB`);
  });
}

/** Writes {@link FAT_SMALL_TREE} into `src`, then into the image, step by step. */
async function writeSmallFatTree(image: string, src: string): Promise<void> {
  const { files, directories, deleted } = FAT_SMALL_TREE;
  for (const dir of directories) await fs.mkdir(path.join(src, dir), { recursive: true });
  for (const [index, file] of files.entries()) {
    const data = typeof file.content === 'number' ? seededBytes(index, file.content) : Buffer.from(file.content);
    await fs.writeFile(path.join(src, file.path), data);
    const t = FS_TREE_TIME - 120 * (index + 1);
    await fs.utimes(path.join(src, file.path), t, t);
  }
  for (const dir of directories) await mtools('mmd', ['-i', image, `::/${dir}`]);
  const last = files[files.length - 1]!;
  for (const file of files) {
    if (file === last) continue;
    await mtools('mcopy', ['-p', '-m', '-i', image, path.join(src, file.path), `::/${file.path}`]);
    if (file.attributes) await mtools('mattrib', ['-i', image, ...file.attributes, `::/${file.path}`]);
  }
  await mtools('mdel', ['-i', image, ...deleted.map((p) => `::/${p}`)]);
  await mtools('mcopy', ['-p', '-m', '-i', image, path.join(src, last.path), `::/${last.path}`]);
}

/** Runs an mtools command with the environment described at the top of this file. */
async function mtools(tool: string, args: string[]): Promise<string> {
  await requireTools(tool);
  const env = { ...process.env, MTOOLS_SKIP_CHECK: '1', LC_ALL: 'C.UTF-8', TZ: 'UTC', SOURCE_DATE_EPOCH: String(FS_TREE_TIME) };
  try {
    return (await execFileAsync(tool, args, { encoding: 'utf8', env, maxBuffer: 64 << 20 })).stdout;
  } catch (err) {
    const { stderr = '' } = err as { stderr?: string };
    throw new Error(`${tool} ${args.join(' ')} failed:\n${stderr}`, { cause: err });
  }
}

/** Runs an mtools reader (mdir, mcopy, mattrib) as {@link buildFatImage} runs mtools: for oracles in tests. */
export async function runMtools(tool: 'mdir' | 'mcopy' | 'mattrib', args: string[]): Promise<string> {
  return mtools(tool, args);
}

/** One file or directory of a FAT volume as mtools reads it. */
export interface MtoolsEntry {
  type: 'file' | 'directory';
  size: number;
  /** sha256 of the content (files only, '' for directories). */
  sha256: string;
  mtimeMs: number;
  /** The letters mattrib prints: A, H, S, R. */
  attributes: string;
}

/**
 * The independent oracle: every file and directory of the FAT volume `image` (a path, or
 * `path@@offset` for one inside a disk), by path from the root (`a/b.txt`), as extracted by
 * `mcopy -s -n -m` (long names, content, mtimes; FAT local time read as UTC) and listed by
 * `mattrib -/` (attributes). Returns the entries, the volume label and serial `mdir` prints.
 */
export async function readFatWithMtools(image: string): Promise<{ entries: Map<string, MtoolsEntry>; label: string; serial: string }> {
  const out = await fs.mkdtemp(path.join(await fixtureDir(), '.fat-oracle-'));
  try {
    await mtools('mcopy', ['-s', '-n', '-m', '-i', image, '::*', out]);
    const entries = new Map<string, MtoolsEntry>();
    const walk = async (dir: string, prefix: string): Promise<void> => {
      for (const name of await fs.readdir(dir)) {
        const full = path.join(dir, name);
        const st = await fs.stat(full);
        const rel = prefix + name;
        const sha256 = st.isFile() ? createHash('sha256').update(await fs.readFile(full)).digest('hex') : '';
        entries.set(rel, { type: st.isDirectory() ? 'directory' : 'file', size: st.isFile() ? st.size : 0, sha256, mtimeMs: st.mtimeMs, attributes: '' });
        if (st.isDirectory()) await walk(full, `${rel}/`);
      }
    };
    await walk(out, '');
    for (const line of (await mtools('mattrib', ['-/', '-i', image, '::'])).split('\n')) {
      const match = /^(.*?)::\/(.+)$/.exec(line);
      const entry = match ? entries.get(match[2]!) : undefined;
      if (entry) entry.attributes = match![1]!.replace(/\s/g, '');
    }
    const listing = await mtools('mdir', ['-i', image, '::']);
    const label = /Volume in drive : is (.*?) *$/m.exec(listing)?.[1] ?? '';
    const serial = /Volume Serial Number is (\S+)/.exec(listing)?.[1] ?? '';
    return { entries, label, serial };
  } finally {
    await fs.rm(out, { recursive: true, force: true });
  }
}
