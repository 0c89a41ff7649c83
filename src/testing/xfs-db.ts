/**
 * `xfs_db` (xfsprogs) as the independent oracle of XFS tests: what every path of an image
 * is, as xfs_db decodes it. Directories are listed with `path` + `ls` (names, inode
 * numbers, types), inodes with `print` (mode, owner, link count, size, times), and file
 * contents through `bmap` (xfs_db 6.1 has no file dump): the blocks it names are read from
 * the image file directly, unwritten extents and holes as zeros.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { promisify } from 'node:util';
import { requireTools } from './disks.js';

const execFileAsync = promisify(execFile);

/** Runs xfs_db read-only with `commands` on `image`; times print in UTC (for the oracles of testing/, not exported from it). */
export async function xfsDb(image: string, commands: string[]): Promise<string> {
  await requireTools('xfs_db');
  const env = { ...process.env, LC_ALL: 'C', TZ: 'UTC', PATH: `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin` };
  const { stdout } = await execFileAsync('xfs_db', ['-r', ...commands.flatMap((c) => ['-c', c]), image], { encoding: 'utf8', env, maxBuffer: 256 * 1024 * 1024 });
  return stdout;
}

/** One inode as xfs_db sees it. */
export interface XfsDbNode {
  path: string;
  ino: number;
  /** xfs_db's type word: `regular`, `directory`, `symlink`, `chardev`, `blkdev`, `fifo`, `socket`. */
  type: string;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  birthtimeMs: number;
  /** Data fork format: `local`, `extents`, `btree`, `dev`. */
  format: string;
  /** The block map (regular files and directories not in the inode). */
  extents: { fileBlock: number; agno: number; agbno: number; blocks: number; unwritten: boolean }[];
}

/** The geometry xfs_db reports. */
export interface XfsDbGeometry {
  blockSize: number;
  agBlocks: number;
}

/** Every path of the filesystem in `image` (the root is `/`), decoded by xfs_db. */
export async function xfsDbTree(image: string): Promise<Map<string, XfsDbNode>> {
  const found = new Map<string, { ino: number; type: string }>([['/', { ino: Number(await dbValue(image, ['sb 0', 'print rootino'], 'rootino')), type: 'directory' }]]);
  for (let level = ['/']; level.length > 0; ) {
    const out = Buffer.from(await xfsDb(image, level.flatMap((dir) => [`path ${dir}`, 'ls'])), 'utf8');
    const listings = splitListings(out);
    if (listings.length !== level.length) throw new Error(`xfs_db listed ${listings.length} of ${level.length} directories`);
    const next: string[] = [];
    level.forEach((dir, i) => {
      for (const entry of listings[i] ?? []) {
        const path = `${dir === '/' ? '' : dir}/${entry.name}`;
        found.set(path, { ino: entry.ino, type: entry.type });
        if (entry.type === 'directory') next.push(path);
      }
    });
    level = next;
  }
  const paths = [...found.keys()];
  const print = 'print v3.inumber core.format core.mode core.uid core.gid core.nlinkv2 core.size core.atime core.mtime core.ctime v3.crtime';
  const text = await xfsDb(image, paths.flatMap((p) => [`inode ${found.get(p)?.ino}`, print, 'bmap']));
  const records = text.split(/^(?=v3\.inumber = )/m).filter((r) => r.startsWith('v3.inumber'));
  if (records.length !== paths.length) throw new Error(`xfs_db printed ${records.length} of ${paths.length} inodes`);
  const result = new Map<string, XfsDbNode>();
  records.forEach((record, i) => {
    const path = paths[i] as string;
    const fields = new Map<string, string>();
    for (const m of record.matchAll(/^(\S+) = (.*)$/gm)) fields.set(m[1] as string, m[2] as string);
    const field = (name: string): string => {
      const value = fields.get(name);
      if (value === undefined) throw new Error(`xfs_db printed no ${name} for ${path}`);
      return value;
    };
    const time = (name: string): number => Date.parse(`${field(`${name}.sec`)} UTC`) + Number(field(`${name}.nsec`)) / 1e6;
    const extents = [...record.matchAll(/^data offset (\d+) startblock \d+ \((\d+)\/(\d+)\) count (\d+) flag (\d)$/gm)].map((m) => ({
      fileBlock: Number(m[1]), agno: Number(m[2]), agbno: Number(m[3]), blocks: Number(m[4]), unwritten: m[5] === '1',
    }));
    const ino = Number(field('v3.inumber'));
    if (ino !== found.get(path)?.ino) throw new Error(`xfs_db printed inode ${ino} for ${path}`);
    result.set(path, {
      path, ino, type: found.get(path)?.type ?? '?', mode: parseInt(field('core.mode'), 8) & 0o7777,
      uid: Number(field('core.uid')), gid: Number(field('core.gid')), nlink: Number(field('core.nlinkv2')),
      size: Number(field('core.size')), atimeMs: time('core.atime'), mtimeMs: time('core.mtime'), ctimeMs: time('core.ctime'),
      birthtimeMs: time('v3.crtime'), format: field('core.format').replace(/^\d+ \((\w+)\)$/, '$1'), extents,
    });
  });
  return result;
}

/** Block size and allocation group size of the filesystem in `image`. */
export async function xfsDbGeometry(image: string): Promise<XfsDbGeometry> {
  return {
    blockSize: Number(await dbValue(image, ['sb 0', 'print blocksize'], 'blocksize')),
    agBlocks: Number(await dbValue(image, ['sb 0', 'print agblocks'], 'agblocks')),
  };
}

/** A file's content as its xfs_db block map says: mapped blocks read from the image, the rest zeros. */
export async function xfsDbFileBytes(image: string, node: XfsDbNode, geometry: XfsDbGeometry): Promise<Buffer> {
  const out = Buffer.alloc(node.size);
  const handle = await fs.open(image, 'r');
  try {
    for (const e of node.extents) {
      if (e.unwritten) continue;
      const fileOffset = e.fileBlock * geometry.blockSize;
      const length = Math.min(e.blocks * geometry.blockSize, node.size - fileOffset);
      if (length <= 0) continue;
      const at = (e.agno * geometry.agBlocks + e.agbno) * geometry.blockSize;
      await handle.read(out, fileOffset, length, at);
    }
  } finally {
    await handle.close();
  }
  return out;
}

async function dbValue(image: string, commands: string[], name: string): Promise<string> {
  const out = await xfsDb(image, commands);
  const m = new RegExp(`^${name} = (.*)$`, 'm').exec(out);
  if (m === null) throw new Error(`xfs_db printed no ${name}`);
  return m[1] as string;
}

/** Splits the output of several `ls` (each starts with its `.` entry) into entries, `.`/`..` left out. */
function splitListings(out: Buffer): { name: string; ino: number; type: string }[][] {
  const listings: { name: string; ino: number; type: string }[][] = [];
  let at = 0;
  while (at < out.length) {
    let end = out.indexOf(0x0a, at);
    if (end < 0) end = out.length;
    const line = out.subarray(at, end);
    at = end + 1;
    const head = /^(\d+)\s+(\d+)\s+(\w+)\s+0x[0-9a-f]+\s+(\d+) /.exec(line.toString('latin1'));
    if (head === null) continue;
    const nameStart = (head[0] as string).length;
    const name = line.subarray(nameStart, nameStart + Number(head[4])).toString('utf8');
    if (name === '.') {
      listings.push([]);
      continue;
    }
    if (name === '..') continue;
    listings[listings.length - 1]?.push({ name, ino: Number(head[2]), type: head[3] as string });
  }
  return listings;
}
