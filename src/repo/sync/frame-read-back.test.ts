import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { makeTempDir, seededBytes } from '../../testing/index.js';
import { LocalBackend } from '../backend/local-backend.js';
import { decodeLocatedEntry, encodeLocatedEntry } from '../format/located-entry.js';
import { packKey } from '../layout.js';
import { PackWriter } from '../pack-writer.js';
import { initRepository, openRepository, type Repository } from '../repository.js';
import { FrameReadBack } from './frame-read-back.js';

let work: { path: string; remove(): Promise<void> };
let made = 0;
const repos: Repository[] = [];
before(async () => {
  work = await makeTempDir('coffer-frame-read-back');
});
after(async () => {
  for (const repo of repos) await repo.close();
  await work?.remove();
});

/** A format 2 repository holding `count` small chunks (up to 64 a frame, as a sync packs them); their ids and entries. */
async function packedChunks(count: number): Promise<{ repo: Repository; root: string; chunks: { id: Buffer; entry: Buffer }[] }> {
  const root = join(work.path, `repo${made++}`);
  await initRepository(new LocalBackend(root), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, format: 2 });
  const repo = await openRepository(new LocalBackend(root), { passphrase: 'pw', threads: 1 });
  repos.push(repo);
  const writer = new PackWriter(repo, { blocksPerFrame: 64 });
  const staged = [];
  for (let i = 0; i < count; i++) {
    const data = seededBytes(i + 1, 200 + i);
    const id = repo.codec.idOf(data);
    staged.push({ id, placed: (await writer.add(id, data)).placed });
  }
  await writer.finish();
  return { repo, root, chunks: await Promise.all(staged.map(async ({ id, placed }) => ({ id, entry: await placed }))) };
}

async function rejectsVerify(promise: Promise<unknown>, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error) => isCofferError(error, 'E_VERIFY_FAILED') && message.test(error.message));
}

test('every chunk of intact frames checks, each frame read once', async () => {
  const { repo, chunks } = await packedChunks(150);
  let bytes = 0;
  let reads = 0;
  const readBack = new FrameReadBack(repo, (n) => ((bytes += n), reads++));
  const checked = await Promise.all(chunks.map(({ id, entry }) => readBack.check(entry, id)));
  assert.deepEqual(checked, chunks.map((c) => c.entry));
  assert.equal(reads, new Set(chunks.map((c) => decodeLocatedEntry(c.entry, 'entry').frameOffset)).size);
  assert.equal(reads, 3); // 150 chunks, 64 a frame
  assert.ok(bytes > 0);
});

test('a damaged frame, an entry its frame does not hold, and a missing pack fail with E_VERIFY_FAILED', async () => {
  const { repo, root, chunks } = await packedChunks(100);
  const [first, second] = chunks as [{ id: Buffer; entry: Buffer }, { id: Buffer; entry: Buffer }];
  // The entry of one chunk given with another's id, and one pointing at another chunk's offset.
  await rejectsVerify(new FrameReadBack(repo, () => undefined).check(first.entry, second.id), /does not read back intact/);
  const where = decodeLocatedEntry(first.entry, 'entry');
  const shifted = encodeLocatedEntry({ ...where, chunkOffset: decodeLocatedEntry(second.entry, 'entry').chunkOffset });
  await rejectsVerify(new FrameReadBack(repo, () => undefined).check(shifted, first.id), /does not hold chunk/);

  // One byte of the first frame's sealed bytes flipped on disk.
  const path = join(root, packKey(where.pack.toString('hex')));
  const intact = await readFile(path);
  const rotten = Buffer.from(intact);
  const at = where.frameOffset + Math.floor(where.frameLength / 2);
  rotten[at] = (rotten[at] as number) ^ 1;
  await writeFile(path, rotten);
  await rejectsVerify(new FrameReadBack(repo, () => undefined).check(first.entry, first.id), new RegExp(first.id.toString('hex')));

  // The pack gone.
  await repo.backend.delete(packKey(where.pack.toString('hex')));
  await rejectsVerify(new FrameReadBack(repo, () => undefined).check(first.entry, first.id), /missing/);
});
