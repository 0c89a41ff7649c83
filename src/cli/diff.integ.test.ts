/**
 * `coffer diff` of VM snapshots. An ext4 image made by mke2fs -d (the cached fixture) is
 * backed up, a copy of it is changed with debugfs (a file added, one removed, a mode and an
 * mtime changed, a folder made, a symlink replaced by a folder) and one block of big.bin
 * overwritten in place under its unchanged inode, and the copy is backed up too. The changed
 * disk ranges are checked against `cmp -l` of the two images, in both repository formats;
 * the files reported by `--files` against the edits made.
 */
import assert from 'node:assert/strict';
import { copyFile, writeFile, truncate, open } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildExtImage, requireTools, seededBytes } from '../testing/index.js';
import { assertExit, assertOneLineError, coffer, cofferJson, makeWorkDir, removeDir, runTool, type BackupJson } from './cli-harness.js';

const MiB = 1024 * 1024;
const BLOCK = 256 * 1024; // the repository's default block size
const env = { COFFER_PASSWORD: 'diff' };

interface Range {
  offset: number;
  length: number;
}
interface DiskDiffJson {
  name: string;
  change: 'added' | 'removed' | 'changed' | 'unchanged';
  sizeA?: number;
  sizeB?: number;
  changedBlocks?: number;
  changedBytes?: number;
  zeroedBlocks?: number;
  ranges?: Range[];
  pagesRead?: number;
  pagesSkipped?: number;
}
interface DiffJson {
  kind: string;
  a: { id: string };
  b: { id: string };
  disks: DiskDiffJson[];
  totals: { changedBlocks: number; changedBytes: number; disksChanged: number; disksAdded: number; disksRemoved: number; disksResized: number; pagesRead: number; pagesSkipped: number };
}

let work: string;
let imageA: string;
let imageB: string;
/** The byte ranges of whole repository blocks in which the two images differ, by cmp -l. */
let expected: Range[];

/** The blocks (of `BLOCK` bytes) holding the bytes `cmp -l` finds different, merged into ranges. */
async function cmpRanges(a: string, b: string, size: number): Promise<Range[]> {
  const result = await runTool('cmp', ['-l', a, b], 600_000);
  assert.ok(result.code === 0 || result.code === 1, result.stderr);
  const blocks = new Set<number>();
  for (const line of result.stdout.split('\n')) {
    const at = Number(line.trim().split(/\s+/)[0]);
    if (Number.isInteger(at) && at > 0) blocks.add(Math.floor((at - 1) / BLOCK));
  }
  const ranges: Range[] = [];
  for (const block of [...blocks].sort((x, y) => x - y)) {
    const offset = block * BLOCK;
    const length = Math.min(BLOCK, size - offset);
    const last = ranges.at(-1);
    if (last !== undefined && last.offset + last.length === offset) last.length += length;
    else ranges.push({ offset, length });
  }
  return ranges;
}

async function backup(repo: string, ...images: string[]): Promise<string> {
  return (await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'web01', ...images], { env })).id;
}

before(async () => {
  await requireTools('mke2fs', 'debugfs', 'cmp');
  work = await makeWorkDir('diff');
  const fixture = await buildExtImage({ sizeMiB: 96, bigFileBytes: 3_000_000 });
  imageA = join(work, 'a.img');
  imageB = join(work, 'b.img');
  await copyFile(fixture, imageA);
  await copyFile(fixture, imageB);
  await writeFile(join(work, 'added.bin'), seededBytes(71, 100_000));
  await writeFile(join(work, 'inner.txt'), 'inside the new folder\n');
  const edits = [
    `write ${join(work, 'added.bin')} /docs/added.bin`,
    'rm /docs/private.key',
    'sif /docs/script.sh mode 0100700',
    'sif /docs/readme.txt mtime 20240101000000',
    'mkdir /newdir',
    `write ${join(work, 'inner.txt')} /newdir/inner.txt`,
    'rm /links/dangling',
    'mkdir /links/dangling',
  ];
  await writeFile(join(work, 'edits'), `${edits.join('\n')}\n`);
  const debugfs = await runTool('debugfs', ['-w', '-f', join(work, 'edits'), imageB]);
  assert.equal(debugfs.code, 0, debugfs.stderr);
  assert.doesNotMatch(debugfs.stderr, /rm: |write: |mkdir: |sif: /, debugfs.stderr);
  // One block of big.bin overwritten where it lies: its inode (size, times) stays as it was.
  const block = Number((await runTool('debugfs', ['-R', 'bmap /big.bin 100', imageB])).stdout.trim());
  assert.ok(block > 0, 'big.bin block 100 is mapped');
  const handle = await open(imageB, 'r+');
  await handle.write(seededBytes(72, 4096), 0, 4096, block * 4096);
  await handle.close();
  expected = await cmpRanges(imageA, imageB, 96 * MiB);
  assert.ok(expected.length >= 3, `debugfs changed several places: ${JSON.stringify(expected)}`);
});
after(() => removeDir(work));

for (const format of ['1', '2']) {
  test(`format ${format}: the changed ranges are the blocks cmp -l finds different, read from the index pages only`, async () => {
    const repo = join(work, `repo-${format}`);
    assertExit(await coffer(['init', '-r', repo, '--format', format], { env }), 0);
    const first = await backup(repo, imageA);
    const second = await backup(repo, imageB);
    const diff = await cofferJson<DiffJson>(['diff', '-r', repo, first.slice(0, 8), second], { env });
    assert.equal(diff.kind, 'disks');
    assert.equal(diff.a.id, first);
    assert.equal(diff.disks.length, 1);
    const disk = diff.disks[0] as DiskDiffJson;
    assert.equal(disk.change, 'changed');
    assert.deepEqual(disk.ranges, expected);
    const bytes = expected.reduce((sum, r) => sum + r.length, 0);
    assert.equal(disk.changedBytes, bytes);
    assert.equal(disk.changedBlocks, bytes / BLOCK);
    assert.equal(diff.totals.changedBytes, bytes);

    const text = await coffer(['diff', '-r', repo, first, second], { env });
    assertExit(text, 0);
    const out = text.stdout.toString();
    assert.match(out, new RegExp(`M disk0: 96.0 MiB, .* changed in ${bytes / BLOCK} blocks of 256 KiB, ${expected.length} ranges:`));
    for (const r of expected) assert.ok(out.includes(`bytes ${r.offset}-${r.offset + r.length - 1}`), `${r.offset} listed:\n${out}`);

    // The same disk backed up again: every page is shared, none is read.
    const third = await backup(repo, imageB);
    const same = await cofferJson<DiffJson>(['diff', '-r', repo, second, third], { env });
    assert.equal(same.disks[0]?.change, 'unchanged');
    assert.equal(same.totals.pagesRead, 0);
    assert.equal(same.totals.changedBlocks, 0);
  });
}

test('disks matched by name: added, removed, resized (a grown disk\'s new data counts as changed, its zeros do not)', async () => {
  const repo = join(work, 'repo-disks');
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  const extra = join(work, 'extra.img');
  await writeFile(extra, seededBytes(73, 4 * MiB));
  const grown = join(work, 'grown.img');
  await copyFile(imageB, grown);
  await truncate(grown, 104 * MiB);
  const handle = await open(grown, 'r+');
  await handle.write(seededBytes(74, 64 * 1024), 0, 64 * 1024, 100 * MiB);
  await handle.close();
  const two = await backup(repo, imageA, extra);
  const one = await backup(repo, grown);

  const diff = await cofferJson<DiffJson>(['diff', '-r', repo, two, one], { env });
  assert.deepEqual(diff.disks.map((d) => [d.name, d.change]), [['disk0', 'changed'], ['disk1', 'removed']]);
  const disk0 = diff.disks[0] as DiskDiffJson;
  assert.equal(disk0.sizeA, 96 * MiB);
  assert.equal(disk0.sizeB, 104 * MiB);
  assert.deepEqual(disk0.ranges, [...expected, { offset: 100 * MiB, length: BLOCK }]);
  assert.equal(diff.totals.disksResized, 1);
  assert.equal(diff.totals.disksRemoved, 1);

  const back = await cofferJson<DiffJson>(['diff', '-r', repo, one, two], { env });
  assert.deepEqual(back.disks.map((d) => [d.name, d.change]), [['disk0', 'changed'], ['disk1', 'added']]);
  assert.equal(back.disks[0]?.zeroedBlocks, 1, 'the shrunk disk lost one block of data');

  const text = (await coffer(['diff', '-r', repo, two, one], { env })).stdout.toString();
  assert.match(text, /M disk0: resized from 96.0 MiB to 104 MiB, /);
  assert.match(text, /- disk1: removed \(4\.00 MiB\)/);

  const only = await cofferJson<DiffJson>(['diff', '-r', repo, two, one, '--disk', 'disk1'], { env });
  assert.deepEqual(only.disks.map((d) => [d.name, d.change]), [['disk1', 'removed']]);
  const missing = await coffer(['diff', '-r', repo, two, one, '--disk', 'disk7'], { env });
  assertExit(missing, 2);
  assert.match(assertOneLineError(missing), /has no disk disk7/);
});

test('an unknown snapshot, and a VM snapshot against a file snapshot, are usage errors', async () => {
  const repo = join(work, 'repo-kinds');
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  const vm = await backup(repo, imageA);
  const files = (await cofferJson<BackupJson>(['backup', '-r', repo, '--files', join(work, 'edits')], { env })).id;
  const unknown = await coffer(['diff', '-r', repo, vm, 'abcdef12'], { env });
  assertExit(unknown, 2);
  assert.match(assertOneLineError(unknown), /no snapshot abcdef12/);
  const kinds = await coffer(['diff', '-r', repo, vm, files], { env });
  assertExit(kinds, 2);
  assert.match(assertOneLineError(kinds), /is a VM snapshot and .* a file snapshot: compare snapshots of one kind/);
  const json = await coffer(['diff', '-r', repo, files, vm, '--json'], { env });
  assertExit(json, 2);
  assert.equal(JSON.parse(assertOneLineError(json)).code, 'E_USAGE');
});
