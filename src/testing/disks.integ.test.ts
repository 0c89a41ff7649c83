import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  buildExt4Disk,
  buildSparseDiskBeyond4G,
  deriveDisk,
  fixtureDir,
  requireTools,
  seededBytes,
  type Ext4DiskOptions,
} from './disks.js';

const MiB = 1024 * 1024;
const execFileAsync = promisify(execFile);

/** Runs an independent reader; sfdisk and debugfs live in /usr/sbin. */
async function read(tool: string, args: string[]): Promise<string> {
  const env = { ...process.env, PATH: `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin`, LC_ALL: 'C' };
  return (await execFileAsync(tool, args, { encoding: 'utf8', env, maxBuffer: 64 * MiB })).stdout;
}

const debugfs = (disk: string, offset: number, request: string): Promise<string> =>
  read('debugfs', ['-R', request, `${disk}?offset=${offset}`]);

before(() => requireTools('sfdisk', 'mke2fs', 'e2fsck', 'debugfs', 'cp'));

const cases: { options: Ext4DiskOptions; listed: string[] }[] = [
  {
    options: { name: 'disks-test-gpt', size: 64 * MiB, label: 'gpt', partitionSizeMiB: 48, files: 'small' },
    listed: ['lost+found', 'etc', 'home', 'usr', 'var', 'empty-dir', 'file-0.bin', 'file-6.bin'],
  },
  {
    options: { name: 'disks-test-dos', size: 40 * MiB, label: 'dos', partitionStartMiB: 3, partitionSizeMiB: 32, files: 'small', seed: 5 },
    listed: ['lost+found', 'etc', 'home'],
  },
  {
    options: { name: 'disks-test-system', size: 64 * MiB, label: 'gpt', partitionSizeMiB: 60, files: 'system', systemBytes: 12 * MiB },
    listed: ['lost+found', 'usr'],
  },
];

for (const { options, listed } of cases) {
  test(`buildExt4Disk ${options.name}: sfdisk reads the table back, debugfs the files`, async () => {
    const disk = await buildExt4Disk(options);
    const start = (options.partitionStartMiB ?? 1) * MiB;
    assert.equal(disk.size, options.size);
    assert.equal((await fs.stat(disk.path)).size, options.size);
    assert.deepEqual(disk.partitions, [{ start, size: options.partitionSizeMiB * MiB }]);

    const table = (JSON.parse(await read('sfdisk', ['-J', disk.path])) as {
      partitiontable: { label: string; partitions: { start: number; size: number }[] };
    }).partitiontable;
    assert.equal(table.label, options.label);
    assert.deepEqual(table.partitions.map((p) => [p.start, p.size]), [[start / 512, options.partitionSizeMiB * 2048]]);

    const names = (await debugfs(disk.path, start, 'ls -l /')).split('\n').map((l) => l.trim().split(/\s+/).pop());
    for (const name of listed) assert.ok(names.includes(name), `${name} missing from / of ${disk.path}`);
  });
}

test('the small tree has text, a hard link, a symlink, a sparse file and a unicode name', async () => {
  const disk = await buildExt4Disk(cases[0]!.options);
  const at = disk.partitions[0]!.start;
  assert.match(await debugfs(disk.path, at, 'cat /etc/file-1.txt'), /^((coffer|disk|block|chunk|extent|snapshot|backup|restore|inode|sector) ?)+\n/);
  assert.match(await debugfs(disk.path, at, 'stat /usr/bin/hard-link'), /Links: 2/);
  assert.match(await debugfs(disk.path, at, 'stat /home/latest'), /Type: symlink/);
  const sparse = await debugfs(disk.path, at, 'stat /var/sparse.img');
  assert.match(sparse, /Size: 4194304/);
  assert.ok(Number(/Blockcount: (\d+)/.exec(sparse)?.[1]) < 100, 'sparse.img lost its hole');
  // debugfs escapes non-ASCII bytes in listings, but takes UTF-8 names in requests
  assert.match(await debugfs(disk.path, at, 'stat "/home/alice/docs/café ☕ notes.txt"'), /Size: 13\b/);
});

test('buildSparseDiskBeyond4G: 5 GiB apparent, partition past 4 GiB, mostly holes', async () => {
  const disk = await buildSparseDiskBeyond4G('disks-test-beyond4g');
  const st = await fs.stat(disk.path);
  assert.equal(st.size, 5 * 1024 * MiB);
  assert.equal(disk.size, st.size);
  assert.ok(st.blocks * 512 < 200 * MiB, `uses ${st.blocks * 512} bytes`);
  assert.deepEqual(disk.partitions, [{ start: 4200 * MiB, size: 128 * MiB }]);
  const handle = await fs.open(disk.path, 'r');
  try {
    const { buffer } = await handle.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, MiB);
    assert.ok(buffer.equals(seededBytes(4242, 64 * 1024)));
  } finally {
    await handle.close();
  }
  assert.match(await debugfs(disk.path, 4200 * MiB, 'ls -l /etc'), /file-1\.txt/);
});

test('deriveDisk changes exactly the bytes asked, and stays sparse', async () => {
  const base = await buildExt4Disk(cases[0]!.options);
  const edits = [
    { offset: 3 * MiB + 100, bytes: Buffer.from('coffer was here') },
    { offset: 40 * MiB - 10, bytes: 8192, seed: 9 },
    { offset: 20 * MiB + 1, bytes: 1000 },
  ];
  const derived = await deriveDisk(base.path, 'disks-test-derived', edits);
  const expected = await fs.readFile(base.path);
  const original = Buffer.from(expected);
  expected.write('coffer was here', 3 * MiB + 100, 'latin1');
  seededBytes(9, 8192).copy(expected, 40 * MiB - 10);
  seededBytes(20 * MiB + 1, 1000).copy(expected, 20 * MiB + 1); // default seed: the offset
  assert.ok(!expected.equals(original));
  const actual = await fs.readFile(derived);
  assert.equal(actual.length, expected.length);
  for (let at = 0; at < expected.length; at += MiB) {
    assert.ok(actual.subarray(at, at + MiB).equals(expected.subarray(at, at + MiB)), `MiB ${at / MiB} differs`);
  }
  const st = await fs.stat(derived);
  assert.ok(st.blocks * 512 < st.size / 2, 'the copy filled the holes');
});

test('a second call reuses the cached disk, also when two calls race', async () => {
  const options: Ext4DiskOptions = { name: 'disks-test-race', size: 24 * MiB, label: 'gpt', partitionSizeMiB: 16, files: 'small', seed: 3 };
  const [a, b] = await Promise.all([buildExt4Disk(options), buildExt4Disk(options)]);
  assert.equal(a.path, b.path);
  const first = await fs.stat(a.path);
  const again = await buildExt4Disk(options);
  const second = await fs.stat(again.path);
  assert.equal(again.path, a.path);
  assert.equal(second.mtimeMs, first.mtimeMs);
  assert.equal(second.ino, first.ino);
  const dir = await fixtureDir();
  const leftovers = (await fs.readdir(dir)).filter((n) => n.startsWith(`.${path.basename(a.path)}.${process.pid}.`));
  assert.deepEqual(leftovers, []);

  const edits = [{ offset: MiB, bytes: 10 }];
  const d1 = await deriveDisk(a.path, 'disks-test-race-derived', edits);
  const d2 = await deriveDisk(a.path, 'disks-test-race-derived', edits);
  assert.equal(d2, d1);
  assert.equal((await fs.stat(d2)).mtimeMs, (await fs.stat(d1)).mtimeMs);
});

test('seededBytes is deterministic, seed-dependent and prefix-stable', () => {
  assert.ok(seededBytes(1, 4096).equals(seededBytes(1, 4096)));
  assert.ok(!seededBytes(1, 4096).equals(seededBytes(2, 4096)));
  assert.ok(seededBytes(1, 100).equals(seededBytes(1, 1000).subarray(0, 100)));
  assert.equal(seededBytes(1, 0).length, 0);
  assert.equal(seededBytes(1, 3 * MiB + 5).length, 3 * MiB + 5);
});

test('requireTools names the missing tool and its package', async () => {
  await requireTools('sfdisk', 'mke2fs');
  await assert.rejects(requireTools('sfdisk', 'no-such-tool-coffer'), (err: Error) => {
    assert.match(err.message, /no-such-tool-coffer/);
    assert.doesNotMatch(err.message, /sfdisk/);
    return true;
  });
});
