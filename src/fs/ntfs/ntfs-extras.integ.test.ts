/**
 * The NTFS reader on the checked-in volume that only a FUSE mount of ntfs-3g could write
 * (src/testing/fixtures/README.md): LZNT1-compressed files with raw and sparse units, a
 * junction, 41 hard links spilling into an extension record through an $ATTRIBUTE_LIST, a
 * fragmented file, a named stream. Oracles: ntfsls, ntfscat, ntfsinfo.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { before, test } from 'node:test';
import { RawImage } from '../../disk/index.js';
import { ntfsExtrasImage, requireTools, runTool } from '../../testing/index.js';
import type { Filesystem, FsFileExtent, FsNode } from '../index.js';
import { ntfsDriver } from './index.js';
import { decompressLznt1 } from './lznt1.js';

let image: string;
let fs: Filesystem;
const nodes = new Map<string, FsNode>();

function cat(args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile('ntfscat', args, { encoding: 'buffer', maxBuffer: 64 << 20 }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
  });
}
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

before(async () => {
  await requireTools('ntfsls', 'ntfscat', 'ntfsinfo');
  image = await ntfsExtrasImage();
  fs = await ntfsDriver.open(await RawImage.open(image));
  const visit = async (dir: FsNode, prefix: string): Promise<void> => {
    for (const entry of await fs.readdir(dir)) {
      assert.equal(entry.error, undefined, entry.error?.message);
      nodes.set(`${prefix}/${entry.name}`, entry.node!);
      if (entry.node!.type === 'directory') await visit(entry.node!, `${prefix}/${entry.name}`);
    }
  };
  await visit(await fs.root(), '');
});

test('names, MFT numbers and sizes match ntfsls', async () => {
  const listing = new Map<string, [string, number]>();
  let dir = '';
  for (const line of (await runTool('ntfsls', ['-R', '-l', '-i', '-p', '/', image])).split('\n')) {
    const header = /^(\/.*):$/.exec(line);
    if (header) dir = header[1] === '/' ? '' : header[1]!;
    const m = /^\s*(\d+)\s+(\d+)\s+\w{3}\s+\d+ \d\d:\d\d \d{4} (.*)$/.exec(line);
    if (m && m[3] !== '.' && m[3] !== '..') listing.set(`${dir}/${m[3]}`, [m[1]!, Number(m[2])]);
  }
  assert.deepEqual([...nodes.keys()].sort(), [...listing.keys()].sort());
  for (const [p, node] of nodes) {
    assert.equal(node.id, listing.get(p)![0], p);
    if (node.type === 'file') assert.equal(node.size, listing.get(p)![1], p);
  }
});

test('compressed, fragmented and plain files read as ntfscat reads them, whole and in pieces', async () => {
  for (const [p, node] of nodes) {
    if (node.type !== 'file' || (p.startsWith('/filler/') && p !== '/filler/f1')) continue;
    const reference = await cat([image, p]);
    assert.equal(sha(await fs.read(node, 0, node.size + 10)), sha(reference), p);
    for (const [offset, length] of [[1000, 70000], [65530, 12], [node.size - 3, 10]] as const) {
      if (offset < 0) continue;
      assert.deepEqual(Buffer.from(await fs.read(node, offset, length)), reference.subarray(offset, offset + length), `${p} ${offset}+${length}`);
    }
  }
  for (const name of ['text.txt', 'random.bin', 'mixed.bin', 'small.txt']) assert.ok(nodes.get(`/compressed/${name}`)!.attributes?.includes('compressed'), name);
});

test('a compressed file lists its all-zero compression units as holes', async () => {
  const extents: FsFileExtent[] = [];
  const mixed = nodes.get('/compressed/mixed.bin')!;
  for await (const e of fs.fileExtents!(mixed)) extents.push(e);
  // 64 KiB of text, 128 KiB of zeros (two whole 64 KiB units, left sparse), then data.
  assert.deepEqual(extents, [
    { offset: 0, length: 65536, kind: 'data' },
    { offset: 65536, length: 131072, kind: 'zero' },
    { offset: 196608, length: mixed.size - 196608, kind: 'data' },
  ]);
});

test('LZNT1 units compressed by ntfs-3g decompress to what ntfscat reads (runlist from ntfsinfo)', async () => {
  const id = nodes.get('/compressed/text.txt')!.id;
  const info = await runTool('ntfsinfo', ['-v', '-i', id, image]);
  const runs = [...info.matchAll(/^\s+0x([0-9a-f]+)\s+(0x[0-9a-f]+|<HOLE>)\s+0x([0-9a-f]+)$/gm)].map((m) => ({ vcn: parseInt(m[1]!, 16), lcn: m[2] === '<HOLE>' ? null : parseInt(m[2]!, 16), length: parseInt(m[3]!, 16) }));
  assert.ok(runs.length >= 2 && runs[1]!.lcn === null, 'the first unit is compressed (clusters then a hole)');
  const reference = await cat([image, '/compressed/text.txt']);
  const raw = await fsp.readFile(image);
  let units = 0;
  for (let i = 0; i + 1 < runs.length; i += 2) {
    const data = runs[i]!;
    if (data.lcn === null || data.vcn % 16 !== 0 || runs[i + 1]!.lcn !== null) continue;
    const out = new Uint8Array(65536);
    decompressLznt1(raw.subarray(data.lcn * 4096, (data.lcn + data.length) * 4096), out, 'vector');
    const at = data.vcn * 4096;
    assert.deepEqual(Buffer.from(out.subarray(0, Math.min(65536, reference.length - at))), reference.subarray(at, at + 65536), `unit at VCN ${data.vcn}`);
    units++;
  }
  assert.ok(units >= 4, `${units} units checked`);
});

test('a junction is a symlink to its target, POSIX-ish', async () => {
  const junction = nodes.get('/junction')!;
  assert.equal(junction.type, 'symlink');
  assert.ok(junction.attributes?.includes('reparse:junction'));
  assert.equal(await fs.readlink(junction), '/compressed');
  assert.equal(junction.size, '/compressed'.length);
  await assert.rejects(fs.readlink(nodes.get('/with-stream.txt')!), { code: 'E_FS_UNSUPPORTED' });
});

test('41 hard links: names spread over records by an attribute list, one node', async () => {
  const info = await runTool('ntfsinfo', ['-i', nodes.get('/links/many-links.txt')!.id, image]);
  assert.match(info, /\$ATTRIBUTE_LIST/, 'the fixture exercises an attribute list');
  const links = [...nodes].filter(([p]) => p.startsWith('/links/'));
  assert.equal(links.length, 41);
  for (const [p, node] of links) {
    assert.equal(node.id, nodes.get('/links/many-links.txt')!.id, p);
    assert.equal(node.nlink, 41, p);
  }
  const dir = nodes.get('/links')!;
  assert.equal((await fs.lookup!(dir, 'NAME-WITH-A-LONG-SUFFIX-33.TXT'))?.id, nodes.get('/links/many-links.txt')!.id);
});

test('a named stream reads as ntfscat -n reads it', async () => {
  const node = nodes.get('/with-stream.txt')!;
  assert.deepEqual(node.streams, [{ name: 'note', size: 14, xattr: 'user.note' }]);
  assert.deepEqual(Buffer.from(await fs.readStream!(node, 'note', 0, 100)), await cat(['-n', 'note', image, '/with-stream.txt']));
});
