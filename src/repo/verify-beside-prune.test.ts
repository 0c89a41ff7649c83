/**
 * verify takes no lease (docs/concurrency.md): a prune may run beside it. On a real local
 * format 2 repository, a `verify --read-data` whose first read of a pack waits until a
 * repacking prune (another handle, as another process would) has moved the chunks and deleted
 * the pack verify had listed: verify must read the chunks at their new places and not call the
 * removed pack damaged (it did: "pack … is missing", exit 13), nor quarantine anything.
 */
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { backupFile, closedAfter, rewriteFrames, seededBytes, tempFolders } from '../testing/index.js';
import { ForwardingBackend } from './backend/forwarding-backend.js';
import { LocalBackend } from './backend/local-backend.js';
import { pruneRepository } from './prune.js';
import { initRepository, openRepository, type Repository } from './repository.js';
import { deleteSnapshot } from './snapshots.js';
import { verifyRepository } from './verify.js';

const KiB = 1024;
const BLOCK = 64 * KiB;
const opened = closedAfter<Repository>();
const tempFolder = tempFolders();

/** Holds every read of a pack until `between` (run once, at the first such read) has ended. */
class PruneAtFirstPackRead extends ForwardingBackend {
  private started: Promise<void> | undefined;
  constructor(inner: LocalBackend, private readonly between: () => Promise<void>) {
    super(inner);
  }
  override async getRange(key: string, offset: number, length: number, into?: Uint8Array): Promise<Buffer> {
    await this.held(key);
    return super.getRange(key, offset, length, into);
  }
  override async get(key: string): Promise<Buffer> {
    await this.held(key);
    return super.get(key);
  }
  private async held(key: string): Promise<void> {
    if (key.startsWith('packs/')) await (this.started ??= this.between());
  }
}

test('verify --read-data beside a prune that repacks: the moved chunks are read at their new places, the removed pack is not called damaged, nothing is quarantined', async () => {
  const dir = await tempFolder('coffer-verify-prune');
  const root = join(dir, 'repo');
  await initRepository(new LocalBackend(root), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format: 2 });
  const writer = opened(await openRepository(new LocalBackend(root), { passphrase: 'pw', threads: 2 }));
  // 8 frames of 8 blocks in one pack; two frames rewritten: 25 % of the pack unused once the
  // first snapshot is forgotten, so the prune repacks it (moves its 6 live frames, deletes it).
  const first = seededBytes(51, 64 * BLOCK);
  const second = rewriteFrames(first, { frames: [0, 4], frameBytes: 8 * BLOCK, seed: 60 });
  const image = join(dir, 'disk.raw');
  await writeFile(image, first);
  const old = await backupFile(writer, 'vm', image);
  await writeFile(image, second);
  await backupFile(writer, 'vm', image);
  await deleteSnapshot(writer, old.id);

  let packsRepacked = 0;
  const backend = new PruneAtFirstPackRead(new LocalBackend(root), async () => {
    packsRepacked = (await pruneRepository(writer)).packs?.packsRepacked ?? 0;
  });
  const verifier = opened(await openRepository(backend, { passphrase: 'pw', threads: 2 }));
  const report = await verifyRepository(verifier, { readData: true, now: () => new Date() });
  assert.equal(packsRepacked, 1, 'the prune ran during the verify and repacked the pack verify had listed');
  assert.deepEqual(report.damaged, [], 'nothing damaged');
  assert.equal(report.quarantined, 0);
  assert.deepEqual(await readdir(join(root, 'quarantine')).catch(() => []), [], 'no quarantine marker');
  assert.ok(report.chunksRead >= 64, `${report.chunksRead} chunks read`);
});
