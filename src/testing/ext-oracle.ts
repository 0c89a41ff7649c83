/**
 * What e2fsprogs' own debugfs says an ext image holds, as an independent oracle for the ext
 * reader: `rdump /` extracts the whole tree (contents, modes, owners, mtimes, symlinks),
 * `ls -p` on every directory gives inode numbers and sizes, and `stat` gives the mtimes of
 * symlinks (which rdump does not set). debugfs 1.47.0 dumps an inline-data file as all 60
 * bytes of i_block: contents are cut to the size `ls -p` reports.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { fixtureDir, runTool } from './disks.js';

/** One node as debugfs extracted it. Paths are relative, `''` is the root. */
export interface OracleNode {
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtimeSeconds: number;
  inode: number;
  /** sha256 of a file's content. */
  sha256?: string;
  target?: string;
}

/** The tree and where debugfs extracted it (`dir`, removed by `cleanup`). */
export interface OracleTree {
  nodes: Map<string, OracleNode>;
  dir: string;
  cleanup(): Promise<void>;
}

/**
 * Extracts `image` with debugfs and describes every node in it. `backup`: read it through
 * the backup superblock and group descriptors at that block (`debugfs -c -s BLOCK -b SIZE`,
 * catastrophic mode: the bitmaps, whose checksums the stale backup descriptors contradict,
 * are not read), as e2fsck -b would.
 */
export async function debugfsTree(image: string, backup?: { superblock: number; blockSize: number }): Promise<OracleTree> {
  const open = backup === undefined ? [] : ['-c', '-s', String(backup.superblock), '-b', String(backup.blockSize)];
  const dir = await fs.mkdtemp(path.join(await fixtureDir(), '.debugfs-'));
  const cleanup = (): Promise<void> => fs.rm(dir, { recursive: true, force: true });
  try {
    await runTool('debugfs', [...open, '-R', `rdump / ${dir}`, image]);
    const nodes = new Map<string, OracleNode>();
    const directories: string[] = [];
    const visit = async (rel: string): Promise<void> => {
      const full = path.join(dir, rel);
      const st = await fs.lstat(full);
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'other';
      const node: OracleNode = { type, size: st.size, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtimeSeconds: Math.floor(st.mtimeMs / 1000), inode: 0 };
      if (type === 'symlink') node.target = await fs.readlink(full);
      nodes.set(rel, node);
      if (type === 'directory') {
        directories.push(rel);
        for (const name of (await fs.readdir(full)).sort()) await visit(rel === '' ? name : `${rel}/${name}`);
      }
    };
    await visit('');
    const script = directories.map((d) => `ls -p "/${d}"`).join('\n');
    const listing = await runTool('debugfs', [...open, '-f', '-', image], `${script}\n`);
    let current: string | undefined;
    for (const line of listing.split('\n')) {
      const command = /^debugfs: ls -p "\/(.*)"$/.exec(line);
      if (command) {
        current = command[1];
        continue;
      }
      const entry = /^\/(\d+)\/(\d+)\/(\d+)\/(\d+)\/(.*)\/(\d*)\/$/.exec(line);
      if (!entry || current === undefined) continue;
      const name = entry[5] ?? '';
      const rel = name === '.' ? current : name === '..' ? undefined : current === '' ? name : `${current}/${name}`;
      const node = rel === undefined ? undefined : nodes.get(rel);
      if (node !== undefined) {
        node.inode = Number(entry[1]);
        if (node.type === 'file') node.size = Number(entry[6]);
      }
    }
    for (const [rel, node] of nodes) if (node.type === 'file') node.sha256 = await sha256File(path.join(dir, rel), node.size);
    const links = [...nodes.entries()].filter(([, n]) => n.type === 'symlink').map(([rel]) => rel);
    const stats = await runTool('debugfs', [...open, '-f', '-', image], links.map((rel) => `stat "/${rel}"`).join('\n') + '\n');
    const mtimes = [...stats.matchAll(/^ ?mtime: 0x([0-9a-f]+)/gm)].map((m) => parseInt(m[1] ?? '', 16) | 0);
    if (mtimes.length !== links.length) throw new Error(`debugfs stat gave ${mtimes.length} mtimes for ${links.length} symlinks`);
    links.forEach((rel, i) => { nodes.get(rel)!.mtimeSeconds = mtimes[i]!; });
    return { nodes, dir, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

async function sha256File(file: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  if (size > 0) for await (const chunk of createReadStream(file, { end: size - 1 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
