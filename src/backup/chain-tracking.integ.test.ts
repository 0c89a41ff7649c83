import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, open, readFile, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { initRepository, LocalBackend, openRepository, type Repository } from '../repo/index.js';
import { restoreSnapshot } from '../restore/index.js';
import { openImageSource } from '../source/index.js';
import { buildExt4Disk, requireTools } from '../testing/index.js';
import { backupVm } from './backup-vm.js';

const run = promisify(execFile);
const KiB = 1024;
const MiB = 1024 * KiB;
let work: string;
let repo: Repository;

before(async () => {
  await requireTools('qemu-img', 'qemu-io', 'sfdisk', 'mke2fs');
  work = await mkdtemp(join(tmpdir(), 'coffer-chain-'));
  const backend = new LocalBackend(join(work, 'repo'));
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: 64 * KiB });
  repo = await openRepository(backend, { passphrase: 'pw', threads: 2 });
});
after(async () => {
  await repo.close();
  await rm(work, { recursive: true, force: true });
});

async function backup(vm: string, path: string, options: { imageSnapshot?: string } = {}) {
  const source = await openImageSource(vm, [path], options);
  try {
    return await backupVm(repo, source);
  } finally {
    await source.close();
  }
}

test('a chain-aware incremental reads only what the new overlay allocates, and restores exactly', async () => {
  const raw = (await buildExt4Disk({ name: 'chain-base', size: 64 * MiB, label: 'gpt', partitionSizeMiB: 48, files: 'small' })).path;
  const base = join(work, 'base.qcow2');
  const top = join(work, 'top.qcow2');
  await run('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, base]);
  const first = await backup('vm', base);
  assert.ok(first.stats.bytesRead > MiB);

  // The VM now runs on an overlay: the base becomes read-only history.
  await run('qemu-img', ['create', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top]);
  await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 5M 128k', '-c', 'write -P 0x6b 30M 4k', top]);
  const second = await backup('vm', top);
  assert.equal(second.parent, first.id);
  assert.equal(second.stats.bytesRead, 128 * KiB + 64 * KiB); // two 64 KiB blocks and one, nothing else

  const restored = join(work, 'restored.raw');
  await restoreSnapshot(repo, second, { to: restored });
  const oracle = join(work, 'oracle.raw');
  await run('qemu-img', ['convert', '-O', 'raw', top, oracle]);
  assert.ok((await readFile(restored)).equals(await readFile(oracle)));

  // Nothing touched since: nothing read.
  const third = await backup('vm', top);
  assert.equal(third.stats.bytesRead, 0);

  // The base changed behind our back (its identity moved): everything is read again.
  const now = new Date();
  await utimes(base, now, now);
  const fourth = await backup('vm', top);
  assert.ok(fourth.stats.bytesRead > MiB, `read ${fourth.stats.bytesRead}`);
});

/** The snapshot restored to a raw file, read whole. */
async function restoredBytes(snapshot: Parameters<typeof restoreSnapshot>[1], name: string): Promise<Buffer> {
  const to = join(work, `${name}.raw`);
  await restoreSnapshot(repo, snapshot, { to });
  return readFile(to);
}

test('the same qcow2 read at an internal snapshot, then at its current state, then at the snapshot again: each backup reads it all and restores what it read', async () => {
  const image = join(work, 'snapshots.qcow2');
  await run('qemu-img', ['create', '-f', 'qcow2', image, '8M']);
  await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x11 0 1M', image]);
  await run('qemu-img', ['snapshot', '-c', 'before-upgrade', image]);
  await run('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x22 0 1M', image]);
  const atSnapshot = Buffer.alloc(8 * MiB);
  atSnapshot.fill(0x11, 0, MiB);
  const current = Buffer.alloc(8 * MiB);
  current.fill(0x22, 0, MiB);

  // The file does not change between these three backups: only which state is read does.
  const first = await backup('snapvm', image, { imageSnapshot: 'before-upgrade' });
  assert.ok((await restoredBytes(first, 'snap-first')).equals(atSnapshot));
  const second = await backup('snapvm', image);
  assert.equal(second.parent, first.id);
  assert.equal(second.stats.bytesRead, MiB, 'the current state is other content than the snapshot: read again');
  assert.ok((await restoredBytes(second, 'snap-second')).equals(current), 'the current state, not the snapshot\'s');
  const third = await backup('snapvm', image, { imageSnapshot: 'before-upgrade' });
  assert.equal(third.stats.bytesRead, MiB);
  assert.ok((await restoredBytes(third, 'snap-third')).equals(atSnapshot));
  // Read at the same snapshot again, nothing has changed: nothing is read.
  const fourth = await backup('snapvm', image, { imageSnapshot: 'before-upgrade' });
  assert.equal(fourth.stats.bytesRead, 0);
});

test('a VMDK whose data lies in a -flat.vmdk extent: a write into the extent alone (the descriptor untouched) is seen by the next backup', async () => {
  const descriptor = join(work, 'flat.vmdk');
  await run('qemu-img', ['create', '-f', 'vmdk', '-o', 'subformat=monolithicFlat', descriptor, '4M']);
  await run('qemu-io', ['-f', 'vmdk', '-c', 'write -P 0x44 1M 256k', descriptor]);
  const first = await backup('flatvm', descriptor);
  assert.ok(first.stats.bytesRead >= 256 * KiB && first.stats.bytesRead <= 512 * KiB, `read ${first.stats.bytesRead}: the flat extent's holes are not read`);
  const unchanged = await backup('flatvm', descriptor);
  assert.equal(unchanged.stats.bytesRead, 0, 'nothing touched: nothing read');

  // A VM (or dd) writing the flat extent as a raw disk never touches the descriptor.
  const before = await readFile(descriptor);
  const extent = await open(join(work, 'flat-flat.vmdk'), 'r+');
  await extent.write(Buffer.alloc(64 * KiB, 0x55), 0, 64 * KiB, 3 * MiB);
  await extent.close();
  assert.ok((await readFile(descriptor)).equals(before));
  const after = await backup('flatvm', descriptor);
  assert.equal(after.stats.bytesRead, first.stats.bytesRead + 64 * KiB, 'the extent changed: its data read again, the new 64 KiB with it');
  const expected = Buffer.alloc(4 * MiB);
  expected.fill(0x44, MiB, MiB + 256 * KiB);
  expected.fill(0x55, 3 * MiB, 3 * MiB + 64 * KiB);
  assert.ok((await restoredBytes(after, 'flat-after')).equals(expected));
});
