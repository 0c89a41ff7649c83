import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, utimes } from 'node:fs/promises';
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

async function backup(vm: string, path: string) {
  const source = await openImageSource(vm, [path]);
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
