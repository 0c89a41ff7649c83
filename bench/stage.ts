/**
 * Collects real files from this system into a staging directory, up to a byte budget,
 * for `mke2fs -d` to put into the test disk. Trees are walked in sorted order (so a
 * machine always stages the same files) and share the budget: each takes at most an
 * equal part of what is left, and the last takes the rest. Hard links inside the staged
 * set stay hard links; symlinks are copied as links; devices, sockets and FIFOs are left out.
 *
 * @module
 */
import { copyFile, link, lstat, mkdir, readdir, readlink, symlink, utimes } from 'node:fs/promises';
import path from 'node:path';

/** A staged regular file, named by its path inside the staged tree. */
export interface StagedFile {
  /** Absolute path inside the future filesystem, e.g. `/usr/lib/x/libfoo.so`. */
  readonly path: string;
  readonly size: number;
}

/** What {@link stageFiles} copied. */
export interface StageResult {
  /** Bytes counted against the budget (file sizes rounded up to 4 KiB, links once). */
  readonly bytes: number;
  readonly files: number;
  /** Files of 1 MiB or more whose names are safe to pass to debugfs. */
  readonly large: StagedFile[];
}

const BLOCK = 4096;
const LARGE = 1024 * 1024;
const SAFE_NAME = /^[A-Za-z0-9._+/-]+$/;

interface Walk {
  left: number;
  bytes: number;
  files: number;
  readonly large: StagedFile[];
  readonly inodes: Map<string, string>;
}

async function walk(src: string, dst: string, rel: string, w: Walk): Promise<void> {
  let names: string[];
  try {
    names = (await readdir(src)).sort();
  } catch {
    return; // unreadable directory: skip it
  }
  for (const name of names) {
    if (w.left < BLOCK * 16) return;
    const s = path.join(src, name);
    const d = path.join(dst, name);
    const r = `${rel}/${name}`;
    const st = await lstat(s).catch(() => undefined);
    if (!st) continue;
    if (st.isDirectory()) {
      await mkdir(d, { mode: st.mode & 0o7777 });
      await walk(s, d, r, w);
    } else if (st.isSymbolicLink()) {
      await symlink(await readlink(s), d);
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? w.inodes.get(key) : undefined;
      if (first !== undefined) {
        await link(first, d);
        continue;
      }
      const cost = Math.ceil(st.size / BLOCK) * BLOCK;
      if (cost > w.left) continue;
      try {
        await copyFile(s, d);
      } catch {
        continue; // vanished or unreadable: skip it
      }
      await utimes(d, st.atime, st.mtime);
      if (st.nlink > 1) w.inodes.set(key, d);
      w.left -= cost;
      w.bytes += cost;
      w.files += 1;
      if (st.size >= LARGE && SAFE_NAME.test(r)) w.large.push({ path: r, size: st.size });
    }
  }
}

/**
 * Copies files from `trees` into `dest` (which must not exist) until `budget` bytes.
 *
 * @param trees absolute directories; each is recreated under `dest` at its own path
 * @param dest staging directory to create
 * @param budget bytes to copy, counted in 4 KiB blocks
 */
export async function stageFiles(trees: readonly string[], dest: string, budget: number): Promise<StageResult> {
  await mkdir(dest, { recursive: false });
  const w: Walk = { left: 0, bytes: 0, files: 0, large: [], inodes: new Map() };
  for (let i = 0; i < trees.length; i++) {
    const tree = trees[i] ?? '';
    const remaining = budget - w.bytes;
    const share = i === trees.length - 1 ? remaining : Math.floor(remaining / (trees.length - i));
    const st = await lstat(tree).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    const d = path.join(dest, tree);
    await mkdir(d, { recursive: true });
    w.left = share;
    await walk(tree, d, tree, w);
  }
  return { bytes: w.bytes, files: w.files, large: w.large };
}
