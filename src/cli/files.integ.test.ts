/**
 * File-level restore end to end: VM disks holding ext4, FAT32, NTFS and XFS (GPT, and MBR
 * with logical partitions), populated from one tree with a 150 MB file, backed up as raw and
 * as qcow2, VMDK, VHD and VHDX; every file extracted through `coffer files` equals the source
 * tree (names, types, sizes, sha256, link targets, and modes/times where the filesystem keeps
 * them). Each reader's own tests compare it with the filesystem's independent tools.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildExtImage, buildFilesVmDisk, describeTree, FS_TREE_LINKS, requireTools, seededBytes, writeFsTree, type TreeEntry } from '../testing/index.js';
import { assertExit, coffer, cofferJson, makeWorkDir, removeDir, runTool, type BackupJson } from './cli-harness.js';

const BIG = 150_000_000;
const env = { COFFER_PASSWORD: 'files test' };
let work: string;
let repo: string;
let source: Map<string, TreeEntry>;
/** The tree FAT fixtures hold: no links/, so the fixed times of later entries differ. */
let sourceWithoutLinks: Map<string, TreeEntry>;

before(async () => {
  await requireTools('sfdisk', 'mke2fs', 'mformat', 'mcopy', 'mkntfs', 'wimlib-imagex', 'mkfs.xfs', 'qemu-img');
  work = await makeWorkDir('files');
  repo = join(work, 'repo');
  assertExit(await coffer(['init', '-r', repo], { env, timeoutMs: 180_000 }), 0);
  const tree = join(work, 'tree');
  await mkdir(tree);
  await writeFsTree(tree, { bigFileBytes: BIG });
  source = await describeTree(tree);
  const flat = join(work, 'tree-without-links');
  await mkdir(flat);
  await writeFsTree(flat, { bigFileBytes: BIG, withoutLinks: true });
  sourceWithoutLinks = await describeTree(flat);
});
after(() => removeDir(work));

/** What each filesystem keeps of the tree. */
const KEEPS = {
  ext4: { links: true, hardLinks: true, modes: true, mtimes: true, extra: ['lost+found'] },
  fat32: { links: false, hardLinks: false, modes: false, mtimes: true, extra: [] },
  ntfs: { links: true, hardLinks: true, modes: false, mtimes: true, extra: [] },
  // xfsprogs' protofile writes no hard links (a second copy) and sets no mtimes.
  xfs: { links: true, hardLinks: false, modes: true, mtimes: false, extra: [] },
} as const;

function compareTrees(type: keyof typeof KEEPS, actual: Map<string, TreeEntry>): void {
  const keeps = KEEPS[type];
  for (const name of keeps.extra) actual.delete(name);
  const expected = [...(keeps.links ? source : sourceWithoutLinks)];
  assert.deepEqual([...actual.keys()].sort(), expected.map(([p]) => p).sort(), `${type}: the same names`);
  for (const [p, want] of expected) {
    const got = actual.get(p) as TreeEntry;
    assert.equal(got.type, want.type, `${type} ${p}: type`);
    if (want.type === 'file') {
      assert.equal(got.size, want.size, `${type} ${p}: size`);
      assert.equal(got.sha256, want.sha256, `${type} ${p}: content`);
    }
    if (want.type === 'symlink') assert.equal(got.target, want.target, `${type} ${p}: link target`);
    if (keeps.modes && want.type !== 'symlink') assert.equal(got.mode.toString(8), want.mode.toString(8), `${type} ${p}: mode`);
    if (keeps.mtimes && want.type === 'file') assert.equal(got.mtimeMs, want.mtimeMs, `${type} ${p}: mtime`);
  }
  if (keeps.hardLinks) assert.equal(actual.get('links/hard-link')?.ino, actual.get('docs/notes.txt')?.ino, `${type}: the hard link is one file`);
  if (keeps.links) assert.equal(actual.get('links/long-target')?.target, FS_TREE_LINKS['long-target']);
}

for (const table of ['gpt', 'dos'] as const) {
  test(`every file of ext4, FAT32, NTFS and XFS on a ${table} disk, extracted from the repository`, async () => {
    const disk = await buildFilesVmDisk({ table, bigFileBytes: BIG });
    assertExit(await coffer(['backup', '-r', repo, '--vm', `files-${table}`, disk.path], { env, timeoutMs: 300_000 }), 0);
    const volumes = await cofferJson<{ volume: string; filesystem: string | null }[]>(['files', '-r', repo, `files-${table}:latest`], { env, timeoutMs: 180_000 });
    for (const f of disk.filesystems) {
      assert.equal(volumes.find((v) => v.volume === f.volume)?.filesystem, f.type, `${f.volume} is ${f.type}`);
      const out = join(work, `${table}-${f.volume}`);
      const report = await cofferJson<{ problems: unknown[] }>(['files', '-r', repo, `files-${table}:latest`, 'get', `${f.volume}:/`, '--to', out], { env, timeoutMs: 300_000 });
      assert.deepEqual(report.problems, [], `${f.type}: no problems`);
      compareTrees(f.type, await describeTree(out));
      await removeDir(out);
    }
  });
}

// Each image format once, each partition table with two of them (the table is read the same
// whatever format holds the disk: the full matrix doubled this test's time for nothing).
const IMAGE_FORMATS = {
  gpt: [
    { name: 'qcow2', args: ['-O', 'qcow2'] },
    { name: 'vhd', args: ['-O', 'vpc', '-o', 'subformat=dynamic,force_size=on'] },
  ],
  dos: [
    { name: 'vmdk', args: ['-O', 'vmdk', '-o', 'subformat=monolithicSparse'] },
    { name: 'vhdx', args: ['-O', 'vhdx'] },
  ],
} as const;

for (const table of ['gpt', 'dos'] as const) {
  test(`the ${table} disk as ${IMAGE_FORMATS[table].map((f) => f.name).join(' and ')} gives the same files`, async () => {
    const disk = await buildFilesVmDisk({ table, bigFileBytes: BIG });
    const big = source.get('big.bin')?.sha256;
    const formats = IMAGE_FORMATS[table];
    const first = table === 'gpt' ? 0 : 2; // big.bin of a different filesystem for each of the four
    for (const [i, f] of formats.entries()) {
      const image = join(work, `${table}.${f.name}`);
      const converted = await runTool('qemu-img', ['convert', '-f', 'raw', ...f.args, disk.path, image]);
      assert.equal(converted.code, 0, converted.stderr);
      const vm = `files-${table}-${f.name}`;
      const backup = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', vm, image], { env, timeoutMs: 300_000 });
      assert.equal(backup.bytesLogical, disk.size, `${f.name}: same size`);
      for (const fs of disk.filesystems) {
        const listing = await coffer(['files', '-r', repo, `${vm}:latest`, 'find', `${fs.volume}:/`, '--name', '*', '--json'], { env, timeoutMs: 180_000 });
        assertExit(listing, 0);
        const found = JSON.parse(listing.stdout.toString('utf8')) as { name: string }[];
        const expected = fs.type === 'fat32' ? sourceWithoutLinks.size : source.size + (fs.type === 'ext4' ? 1 : 0); // + lost+found
        assert.equal(found.length, expected, `${f.name} ${fs.volume} (${fs.type}): every entry found`);
      }
      // big.bin of one filesystem per format.
      const volume = disk.filesystems[(first + i) % disk.filesystems.length]?.volume as string;
      const cat = await coffer(['files', '-r', repo, `${vm}:latest`, 'cat', `${volume}:/big.bin`], { env, timeoutMs: 120_000 });
      assertExit(cat, 0);
      assert.equal(createHash('sha256').update(cat.stdout).digest('hex'), big, `${f.name} ${volume}: big.bin`);
      await removeDir(image);
    }
  });
}

test('listing / and extracting a 1 MB file of a 20 GiB disk read a handful of chunks', async () => {
  const image = await buildExtImage({ sizeMiB: 20 * 1024, bigFileBytes: 1_000_000 });
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'files-20g', image], { env, timeoutMs: 300_000 }), 0);
  const stats = (stderr: string): { chunksFetched: number; bytesFetched: number } =>
    JSON.parse(stderr.split('\n').find((l) => l.includes('"type":"stats"')) ?? '{}') as { chunksFetched: number; bytesFetched: number };
  const ls = await coffer(['files', '-r', repo, 'files-20g:latest', 'ls', 'disk:/', '--json', '--stats'], { env, timeoutMs: 180_000 });
  assertExit(ls, 0);
  const listed = stats(ls.stderr);
  // The volume as the API names it, DISK:VOLUME, is the same volume.
  const byId = await coffer(['files', '-r', repo, 'files-20g:latest', 'ls', 'disk0:disk:/', '--json'], { env, timeoutMs: 180_000 });
  assertExit(byId, 0);
  assert.deepEqual(byId.stdout, ls.stdout);
  const out = join(work, 'one-file');
  const get = await coffer(['files', '-r', repo, 'files-20g:latest', 'get', 'disk:/big.bin', '--to', out, '--json', '--stats'], { env, timeoutMs: 180_000 });
  assertExit(get, 0);
  const fetched = stats(get.stderr);
  const file = await describeTree(out);
  assert.equal(file.get('big.bin')?.sha256, createHash('sha256').update(seededBytes(150_000, 1_000_000)).digest('hex'), 'the 1 MB file (first piece of writeFsTree\'s big.bin)');
  // 1 MB of file data spans at most 5 blocks of 256 KiB; metadata a few more.
  assert.ok(listed.chunksFetched <= 6, `ls / fetched ${JSON.stringify(listed)}`);
  assert.ok(fetched.chunksFetched <= 12, `get of 1 MB fetched ${JSON.stringify(fetched)}`);
  process.stderr.write(`# 20 GiB disk: ls / fetched ${listed.chunksFetched} chunks (${listed.bytesFetched} bytes); get of a 1 MB file ${fetched.chunksFetched} chunks (${fetched.bytesFetched} bytes)\n`);
});
