/**
 * The directory tree of the file-backup part (files.ts) and of the chunk-size measurement
 * (chunk-sizes.ts): ≈2 GiB in ≈50,000 files at scale 1, built once per scale and cached in
 * `BENCH_DIR/files-x<scale>/` (`tree/` + `layout.json`, written last: a missing JSON means an
 * interrupted build, and the tree is built again).
 *
 * - **small files**: real files of this machine, copied (mode and times kept) from
 *   /usr/sbin, /usr/bin, /usr/include, /usr/share and /usr/lib in sorted order, each tree
 *   taking at most an equal share of the files and bytes left; files of 256 KiB and more are
 *   skipped, symlinks kept as links. ≈49,900 files, ≈0.55 GiB (as /usr: 10 KB on average).
 * - **large files** under `large/`: 100 files of 4-40 MiB, ≈1.45 GiB together, half of them
 *   incompressible (as media, archives, encrypted data), half a log-like text (timestamps,
 *   hosts, levels, ids and numbers: compresses about 4×). Seeded: the same bytes every build.
 *
 * {@link applyFileChanges} then changes a copy of it the way a day of use does: bytes
 * overwritten and inserted in the middle of large files, large files appended to, small
 * files edited, added and deleted. Seeded too.
 *
 * @module
 */
import { chmod, copyFile, lstat, mkdir, open, readdir, readFile, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ByteStream, Prng } from './random.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** Files at least this large are not taken as small files. */
const SMALL_LIMIT = 256 * 1024;

/** What the tree holds, as `layout.json` records it. */
export interface FileTreeLayout {
  readonly scale: number;
  readonly smallFiles: number;
  readonly smallBytes: number;
  readonly largeFiles: number;
  readonly largeBytes: number;
  /** Symlinks copied with the small files. */
  readonly symlinks: number;
  /** Paths of the small files, relative to the tree, sorted. */
  readonly small: readonly string[];
  /** Paths of the large files, relative to the tree, with their sizes. */
  readonly large: readonly { readonly path: string; readonly size: number; readonly text: boolean }[];
}

/** The sizes at a scale (scale 1: the benchmark's 2 GiB and 50,000 files). */
export function fileTreeSizes(scale: number): { smallFiles: number; smallBytes: number; largeFiles: number; largeBytes: number } {
  return {
    smallFiles: Math.round(49_900 * scale),
    smallBytes: Math.round(0.55 * GiB * scale),
    largeFiles: Math.max(4, Math.round(100 * scale)),
    largeBytes: Math.round(1.45 * GiB * scale),
  };
}

/** Smallest first, so that each gets its share and the last (the largest) takes the rest. */
const SOURCES = ['/usr/sbin', '/usr/bin', '/usr/include', '/usr/share', '/usr/lib'];

/** Builds the tree for `scale` under `dir` unless it is there; answers its directory and layout. */
export async function ensureFileTree(dir: string, scale: number, log: (line: string) => void): Promise<{ tree: string; layout: FileTreeLayout }> {
  const tree = path.join(dir, 'tree');
  const layoutFile = path.join(dir, 'layout.json');
  try {
    return { tree, layout: JSON.parse(await readFile(layoutFile, 'utf8')) as FileTreeLayout };
  } catch {
    // not built yet, or interrupted: build it again
  }
  await rm(dir, { recursive: true, force: true });
  await mkdir(tree, { recursive: true });
  const sizes = fileTreeSizes(scale);
  log(`files: building a ${((sizes.smallBytes + sizes.largeBytes) / GiB).toFixed(2)} GiB tree of ${sizes.smallFiles + sizes.largeFiles} files in ${tree}`);
  const small = await copySmallFiles(tree, sizes.smallFiles, sizes.smallBytes);
  const large = await writeLargeFiles(tree, sizes.largeFiles, sizes.largeBytes, scale);
  const layout: FileTreeLayout = {
    scale,
    smallFiles: small.files.length,
    smallBytes: small.bytes,
    largeFiles: large.length,
    largeBytes: large.reduce((sum, f) => sum + f.size, 0),
    symlinks: small.symlinks,
    small: small.files.sort(),
    large,
  };
  await writeFile(layoutFile, JSON.stringify(layout));
  log(`files: ${layout.smallFiles} small files (${(layout.smallBytes / MiB).toFixed(0)} MiB), ${layout.largeFiles} large (${(layout.largeBytes / MiB).toFixed(0)} MiB)`);
  return { tree, layout };
}

/** Copies real small files from {@link SOURCES}, each source taking a fair share of what is left. */
async function copySmallFiles(tree: string, maxFiles: number, maxBytes: number): Promise<{ files: string[]; bytes: number; symlinks: number }> {
  const state = { files: [] as string[], bytes: 0, symlinks: 0 };
  for (const [i, source] of SOURCES.entries()) {
    const left = SOURCES.length - i;
    const quota = { files: state.files.length + (maxFiles - state.files.length) / left, bytes: state.bytes + (maxBytes - state.bytes) / left };
    const walk = async (from: string, rel: string): Promise<void> => {
      let names: string[];
      try {
        names = (await readdir(from)).sort();
      } catch {
        return; // unreadable: skipped
      }
      for (const name of names) {
        if (state.files.length >= quota.files || state.bytes >= quota.bytes) return;
        const src = path.join(from, name);
        const relative = path.join(rel, name);
        const st = await lstat(src).catch(() => undefined);
        if (st === undefined) continue;
        const dest = path.join(tree, relative);
        if (st.isDirectory()) {
          await mkdir(dest, { recursive: true });
          await walk(src, relative);
          await utimes(dest, st.atime, st.mtime);
        } else if (st.isSymbolicLink()) {
          await symlink(await readlink(src), dest);
          state.symlinks++;
        } else if (st.isFile() && st.size < SMALL_LIMIT) {
          await copyFile(src, dest);
          await chmod(dest, st.mode & 0o7777);
          await utimes(dest, st.atime, st.mtime);
          state.files.push(relative);
          state.bytes += st.size;
        }
      }
    };
    const rel = source.slice(1).replaceAll('/', '-'); // usr-share, …
    await mkdir(path.join(tree, rel), { recursive: true });
    await walk(source, rel);
  }
  return state;
}

/** Writes the large files, seeded: sizes 4-40 MiB scaled to the total, half random bytes, half log text. */
async function writeLargeFiles(tree: string, count: number, total: number, scale: number): Promise<{ path: string; size: number; text: boolean }[]> {
  const prng = new Prng(20261126);
  const weights = Array.from({ length: count }, () => 4 + prng.below(37));
  const sum = weights.reduce((a, b) => a + b, 0);
  const files: { path: string; size: number; text: boolean }[] = [];
  await mkdir(path.join(tree, 'large'), { recursive: true });
  for (const [i, weight] of weights.entries()) {
    const size = Math.max(MiB, Math.round((total * weight) / sum));
    const text = i % 2 === 1;
    const relative = path.join('large', `${text ? 'app' : 'blob'}-${String(i).padStart(3, '0')}.${text ? 'log' : 'bin'}`);
    const handle = await open(path.join(tree, relative), 'w');
    try {
      const bytes = text ? new LogText(`large ${i} x${scale}`) : new ByteStream(`large ${i} x${scale}`);
      for (let written = 0; written < size; ) {
        const n = Math.min(4 * MiB, size - written);
        await handle.write(bytes.next(n));
        written += n;
      }
    } finally {
      await handle.close();
    }
    files.push({ path: relative, size, text });
  }
  return files;
}

/** Log-like lines, seeded: what application logs and text dumps look like to a compressor. */
class LogText {
  readonly #prng: Prng;
  #time = Date.parse('2026-01-01T00:00:00Z');
  #rest = Buffer.alloc(0);

  constructor(label: string) {
    let seed = 0;
    for (const c of label) seed = (Math.imul(seed, 31) + c.charCodeAt(0)) >>> 0;
    this.#prng = new Prng(seed);
  }

  next(n: number): Buffer {
    const parts: Buffer[] = [this.#rest];
    let length = this.#rest.length;
    const levels = ['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN', 'ERROR'];
    const verbs = ['GET', 'POST', 'PUT', 'DELETE'];
    const paths = ['/api/v1/orders', '/api/v1/users', '/static/app.js', '/health', '/api/v1/search', '/login'];
    while (length < n) {
      const p = this.#prng;
      this.#time += p.below(2000);
      const line =
        `${new Date(this.#time).toISOString()} web${p.below(8)} app[${1000 + p.below(9000)}]: ${levels[p.below(levels.length)]} ` +
        `${verbs[p.below(verbs.length)]} ${paths[p.below(paths.length)]}?id=${p.below(1_000_000)} status=${[200, 200, 200, 304, 404, 500][p.below(6)]} ` +
        `bytes=${p.below(100_000)} ms=${p.below(3000)} req=${p.nextU32().toString(16)}${p.nextU32().toString(16)}\n`;
      const b = Buffer.from(line);
      parts.push(b);
      length += b.length;
    }
    const all = Buffer.concat(parts);
    this.#rest = all.subarray(n);
    return all.subarray(0, n);
  }
}

/** What {@link applyFileChanges} did. */
export interface FileChanges {
  readonly overwritten: number;
  readonly inserted: number;
  readonly appended: number;
  readonly smallEdited: number;
  readonly smallAdded: number;
  readonly smallDeleted: number;
  /** Bytes written into files (new and changed). */
  readonly bytesWritten: number;
}

/**
 * Changes the tree at `tree` (a copy of the cached one, whose layout is `layout`), seeded:
 * 10 large files get 64 KiB overwritten in their middle, 5 get 4 KiB inserted in their
 * middle (the rest of the file shifts), 5 get 1 MiB appended; 200 small files get a line
 * appended, 300 new small files appear and 100 are deleted (counts scaled, at least 2).
 */
export async function applyFileChanges(tree: string, layout: FileTreeLayout, scale: number): Promise<FileChanges> {
  const prng = new Prng(4242);
  const bytes = new ByteStream(`changes x${scale}`);
  const scaled = (n: number) => Math.max(2, Math.round(n * scale));
  const large = [...layout.large];
  const pick = <T>(list: T[]): T => list.splice(prng.below(list.length), 1)[0] as T;
  let written = 0;
  const counts = { overwritten: scaled(10), inserted: scaled(5), appended: scaled(5) };
  for (let i = 0; i < counts.overwritten && large.length > 0; i++) {
    const f = pick(large);
    const handle = await open(path.join(tree, f.path), 'r+');
    await handle.write(bytes.next(64 * 1024), 0, 64 * 1024, Math.floor(f.size / 2) + prng.below(MiB));
    await handle.close();
    written += 64 * 1024;
  }
  for (let i = 0; i < counts.inserted && large.length > 0; i++) {
    const f = pick(large);
    const file = path.join(tree, f.path);
    const data = await readFile(file);
    const at = Math.floor(data.length / 2) + prng.below(MiB);
    await writeFile(file, Buffer.concat([data.subarray(0, at), bytes.next(4096), data.subarray(at)]));
    written += data.length + 4096;
  }
  for (let i = 0; i < counts.appended && large.length > 0; i++) {
    const f = pick(large);
    const handle = await open(path.join(tree, f.path), 'a');
    await handle.write(bytes.next(MiB));
    await handle.close();
    written += MiB;
  }
  const small = [...layout.small];
  const edits = { edited: scaled(200), added: scaled(300), deleted: scaled(100) };
  for (let i = 0; i < edits.edited; i++) {
    const line = Buffer.from(`# edited by the benchmark, change ${i}\n`);
    const handle = await open(path.join(tree, pick(small)), 'a');
    await handle.write(line);
    await handle.close();
    written += line.length;
  }
  for (let i = 0; i < edits.deleted; i++) await rm(path.join(tree, pick(small)), { force: true });
  await mkdir(path.join(tree, 'added'), { recursive: true });
  for (let i = 0; i < edits.added; i++) {
    const size = 1024 + prng.below(20 * 1024);
    await writeFile(path.join(tree, 'added', `new-${i}.dat`), bytes.next(size));
    written += size;
  }
  return { ...counts, smallEdited: edits.edited, smallAdded: edits.added, smallDeleted: edits.deleted, bytesWritten: written };
}
