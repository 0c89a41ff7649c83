import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileExtents, freeBlocks, parseFreeBlocks, readGeometry } from './ext4.js';
import { run } from './exec.js';
import { ByteStream } from './random.js';

test('parseFreeBlocks reads ranges, single blocks and empty groups', () => {
  const text = [
    'Group 0: (Blocks 0-8191) csum 0x1234',
    '  Free blocks: 5357-8191, 8000',
    'Group 1: (Blocks 8192-16383)',
    '  Free blocks: ',
    '  Free inodes: 2049-4096',
  ].join('\n');
  assert.deepEqual(parseFreeBlocks(text), [
    { start: 5357, count: 2835 },
    { start: 8000, count: 1 },
  ]);
});

// A real filesystem made by mke2fs; debugfs `blocks` and `dumpe2fs -h` are the oracles.
let dir = '';
const OFFSET = 1024 * 1024;
const image = (): string => path.join(dir, 'd.raw');

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'bench-ext4-'));
  const src = path.join(dir, 'src');
  await mkdir(src);
  const bytes = new ByteStream('ext4-test');
  await writeFile(path.join(src, 'big.bin'), bytes.next(3_000_000));
  await writeFile(path.join(src, 'small.txt'), 'hello\n');
  await writeFile(image(), '');
  await truncate(image(), 64 * 1024 * 1024);
  await run('sfdisk', ['-q', image()], { input: 'label: gpt\nstart=2048, size=65536, type=linux\n' });
  await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-E', `offset=${OFFSET},nodiscard`, '-d', src, image(), '32768k']);
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('fileExtents covers exactly the blocks debugfs lists for each file', async () => {
  const files = ['/big.bin', '/small.txt'];
  const extents = await fileExtents(image(), OFFSET, files);
  for (const [i, f] of files.entries()) {
    const { stdout } = await run('debugfs', ['-R', `blocks ${f}`, `${image()}?offset=${OFFSET}`]);
    const expected = stdout.trim().split(/\s+/).map(Number);
    const got = (extents[i] ?? []).flatMap((e) => Array.from({ length: e.count }, (_, k) => e.start + k));
    assert.deepEqual(got, expected, f);
  }
});

test('freeBlocks adds up to the superblock free block count', async () => {
  const { stdout } = await run('dumpe2fs', ['-h', `${image()}?offset=${OFFSET}`]);
  const free = Number(/^Free blocks:\s+(\d+)/m.exec(stdout)?.[1]);
  const ranges = await freeBlocks(image(), OFFSET);
  assert.equal(ranges.reduce((n, r) => n + r.count, 0), free);
  assert.equal((await readGeometry(image(), OFFSET)).blockSize, 4096);
});
