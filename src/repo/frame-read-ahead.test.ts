/**
 * The read-ahead of a full `verify --read-data` (frame-read-ahead.ts) reads frames before the
 * walk knows which are used: what it hands over must be exactly the frames asked for (by name
 * and stored length), and data no snapshot uses any more must neither count as read nor hide
 * anything from the check.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { backupVm } from '../backup/index.js';
import { openImageSource } from '../source/index.js';
import { makeTempDir, seededBytes } from '../testing/index.js';
import { LocalBackend } from './backend/local-backend.js';
import { FrameReadAhead, type FrameOpenedAhead } from './frame-read-ahead.js';
import { decodeLocatedEntry } from './format/located-entry.js';
import { frameName } from './frame-reader.js';
import { initRepository, openRepository, type Repository } from './repository.js';
import { deleteSnapshot, listSnapshots } from './snapshots.js';
import { verifyRepository } from './verify.js';
import { walkBlocks } from './walk.js';

const BLOCK = 64 * 1024;
const dirs: { remove(): Promise<void> }[] = [];
after(async () => {
  for (const dir of dirs) await dir.remove();
});

/** A format 2 repository with one backup of each of two 24-block disks (VMs a and b: 3 frames each). */
async function twoVms(): Promise<{ repo: Repository; close: () => Promise<void> }> {
  const work = await makeTempDir('coffer-read-ahead');
  dirs.push(work);
  const backend = new LocalBackend(join(work.path, 'repo'));
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 2 });
  const repo = await openRepository(backend, { passphrase: 'pw', threads: 2 });
  for (const [vm, seed] of [['a', 1], ['b', 2]] as const) {
    const disk = join(work.path, `${vm}.raw`);
    await writeFile(disk, seededBytes(seed, 24 * BLOCK));
    const source = await openImageSource(vm, [disk]);
    await backupVm(repo, source).finally(() => source.close());
  }
  return { repo, close: () => repo.close() };
}

/** The frames (name → stored length) the snapshots of `vm` use. */
async function framesOf(repo: Repository, vm: string): Promise<Map<string, number>> {
  const frames = new Map<string, number>();
  const snapshots = (await listSnapshots(repo)).filter((s) => s.vm === vm);
  await walkBlocks(repo, snapshots, (visit) => {
    const location = decodeLocatedEntry(visit.located as Buffer, 'test');
    frames.set(frameName(location), location.frameLength);
  }, () => assert.fail('no page is damaged'));
  return frames;
}

test('narrow hands over the frames opened before it and after, only those asked for with their length', async () => {
  const { repo, close } = await twoVms();
  try {
    const a = await framesOf(repo, 'a');
    const b = await framesOf(repo, 'b');
    assert.equal(a.size, 3);
    assert.equal(b.size, 3);
    const readAhead = new FrameReadAhead(repo);
    await readAhead.done; // everything read before the walk "ends"
    const [wrongName, wrongLength] = [...b.keys()];
    const wanted = new Map([...a, [wrongLength as string, (b.get(wrongLength as string) as number) + 1]]);
    const handed: FrameOpenedAhead[] = [];
    readAhead.narrow(wanted, (frame) => handed.push(frame));
    assert.deepEqual(handed.map((f) => f.name).sort(), [...a.keys()].sort()); // not b's frame asked for with another length
    assert.ok(!handed.some((f) => f.name === wrongName));
    for (const frame of handed) assert.equal(frame.table.length, 8);
    assert.deepEqual(await readAhead.trailerProblems(), []);
  } finally {
    await close();
  }
});

test('a verify after a VM\'s snapshot is forgotten (its data not yet pruned): only what is used counts as read', async () => {
  const { repo, close } = await twoVms();
  try {
    const [gone] = (await listSnapshots(repo)).filter((s) => s.vm === 'b');
    await deleteSnapshot(repo, (gone as { id: string }).id);
    const report = await verifyRepository(repo, { readData: true, now: () => new Date() });
    assert.deepEqual(report.damaged, []);
    assert.equal(report.chunksReferenced, 24);
    assert.equal(report.chunksRead, 24);
    const used = [...(await framesOf(repo, 'a')).values()].reduce((sum, length) => sum + length, 0);
    assert.equal(report.bytesRead, used);
  } finally {
    await close();
  }
});
