/**
 * The whole life of a damaged chunk, in both formats: verify --read-data sets it aside
 * (quarantine/), the next backup stores it again (the heal), prune drops the damaged copy; from
 * then on backups of the same data store nothing new. A quarantine marker that outlived the heal
 * made every later backup store the chunk once more, for ever (format 2: a new pack each time).
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { initRepository, LocalBackend, listQuarantined, pruneRepository, verifyRepository, type Repository, type Snapshot } from '../repo/index.js';
import { restoreSnapshot } from '../restore/index.js';
import { backupFile, flipByte, seededBytes, tempFolders, withRepo } from '../testing/index.js';

const tempFolder = tempFolders();
const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 64 * KiB;

async function newRepo(format: 1 | 2): Promise<string> {
  const root = await tempFolder('coffer-heal-repo');
  await initRepository(new LocalBackend(root), { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, blockSize: BLOCK, format });
  return root;
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  return out.sort();
}


async function restoresAs(repo: Repository, snapshot: Snapshot, path: string): Promise<boolean> {
  const to = join(await tempFolder('coffer-heal-out'), 'disk.raw');
  await restoreSnapshot(repo, snapshot, { to });
  return (await readFile(to)).equals(await readFile(path));
}

const cases = [
  {
    format: 2 as const,
    // The pack's first frame (the pack header is 8 bytes): its 8 chunks go bad together.
    damage: async (root: string) => flipByte((await files(join(root, 'packs')))[0] as string, 100),
    damagedChunks: 8,
    stored: (root: string) => files(join(root, 'packs')),
  },
  {
    format: 1 as const,
    // One chunk object, in the middle of its sealed bytes.
    damage: async (root: string) => {
      const chunk = (await files(join(root, 'chunks')))[0] as string;
      await flipByte(chunk, Math.floor((await readFile(chunk)).length / 2));
    },
    damagedChunks: 1,
    stored: (root: string) => files(join(root, 'chunks')),
  },
];

for (const c of cases) {
  test(`format ${c.format}: after verify set damaged chunks aside, a backup healed them and prune dropped the damaged copies, later backups of the same disk store nothing new`, async () => {
    const path = join(await tempFolder('coffer-heal-img'), 'disk.raw');
    await writeFile(path, seededBytes(31, 3 * MiB));
    const root = await newRepo(c.format);
    await withRepo(new LocalBackend(root), async (repo) => {
      const first = await backupFile(repo, 'vm', path);
      await c.damage(root);
      const found = await verifyRepository(repo, { readData: true, now: () => new Date() });
      assert.equal(found.quarantined, c.damagedChunks);
      assert.equal((await listQuarantined(repo)).size, c.damagedChunks);

      const heal = await backupFile(repo, 'vm', path);
      assert.equal(heal.stats.bytesNew, c.damagedChunks * BLOCK, 'the heal stores the damaged chunks again');
      await pruneRepository(repo);
      assert.deepEqual((await verifyRepository(repo, { readData: true, now: () => new Date() })).damaged, []);

      const stored = await c.stored(root);
      const third = await backupFile(repo, 'vm', path);
      const fourth = await backupFile(repo, 'vm', path);
      assert.deepEqual([third.stats.bytesNew, fourth.stats.bytesNew], [0, 0], 'backups after the heal and the prune store nothing again');
      assert.deepEqual(await c.stored(root), stored, 'no new pack or chunk object');
      assert.equal((await listQuarantined(repo)).size, 0, 'no quarantine marker is left');

      assert.deepEqual((await verifyRepository(repo, { readData: true, now: () => new Date() })).damaged, []);
      for (const snapshot of [first, heal, third, fourth]) assert.ok(await restoresAs(repo, snapshot, path), `snapshot ${snapshot.id.slice(0, 8)} restores byte for byte`);
    });
  });
}
