import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import path from 'node:path';

/** What a test compares of one entry of a host folder. */
export interface TreeEntry {
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  /** sha256 of a file's content. */
  sha256?: string;
  /** A symlink's target. */
  target?: string;
  mode: number;
  mtimeMs: number;
  /** The inode number, to see which names are hard links of one file. */
  ino: number;
}

/**
 * Every entry below `root` (never following symlinks), by relative path with `/`, with its
 * type, size, content hash, link target, mode, mtime and inode: the source tree of a fixture
 * and a tree extracted by Coffer are compared through this.
 */
export async function describeTree(root: string): Promise<Map<string, TreeEntry>> {
  const out = new Map<string, TreeEntry>();
  const visit = async (dir: string, rel: string): Promise<void> => {
    for (const name of (await fs.readdir(dir)).sort()) {
      const full = path.join(dir, name);
      const key = rel === '' ? name : `${rel}/${name}`;
      const st = await fs.lstat(full);
      const base = { size: st.size, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs, ino: st.ino };
      if (st.isSymbolicLink()) out.set(key, { ...base, type: 'symlink', target: await fs.readlink(full) });
      else if (st.isDirectory()) {
        out.set(key, { ...base, type: 'directory' });
        await visit(full, key);
      } else if (st.isFile()) out.set(key, { ...base, type: 'file', sha256: await sha256File(full) });
      else out.set(key, { ...base, type: 'other' });
    }
  };
  await visit(root, '');
  return out;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
