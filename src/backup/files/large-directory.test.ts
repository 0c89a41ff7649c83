/**
 * A directory of thousands of entries in a format 2 repository: its tree is one chunk larger
 * than a frame's 2 MiB (150-400 bytes an entry), which the pack writer once refused ("the
 * chunk does not fit in the frame slot": the backup of any directory of more than ~8,000
 * files failed). Backed up, changed, backed up again, restored and verified.
 */
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { getFileTree, initRepository, LocalBackend, openRepository, verifyRepository, type Repository, type Snapshot } from '../../repo/index.js';
import { restoreFileSnapshot } from '../../restore/index.js';
import { makeTempDir } from '../../testing/index.js';
import { backupFiles } from './backup-files.js';

const FILES = 9000;
/** Long names make the tree large with fewer files (each name is in the tree once). */
const nameOf = (i: number): string => `message-${String(i).padStart(6, '0')}-${'x'.repeat(100)}.eml`;

let root: { path: string; remove(): Promise<void> };
let repo: Repository;

before(async () => {
  root = await makeTempDir('coffer-large-dir');
  const backend = new LocalBackend(join(root.path, 'repo'));
  await initRepository(backend, { passphrase: 'pw', kdf: { N: 1024, r: 8, p: 1 }, format: 2 });
  repo = await openRepository(backend, { passphrase: 'pw', threads: 2 });
});
after(async () => {
  await repo?.close();
  await root?.remove();
});

/** The tree of `dir` in the snapshot (path components below the root). */
async function treeOf(snapshot: Snapshot, dir: string): Promise<string> {
  let tree = snapshot.files?.tree as string;
  for (const name of dir.split('/').filter(Boolean)) {
    const entry = (await getFileTree(repo, tree)).entries.find((e) => e.name === name);
    assert.ok(entry?.tree !== undefined, `${name} is a directory of the snapshot`);
    tree = entry.tree;
  }
  return tree;
}

test('format 2: a directory whose tree is larger than a frame is backed up, incrementally too, restored and verified', async () => {
  const dir = join(root.path, 'maildir');
  await mkdir(dir);
  for (let i = 0; i < FILES; i++) await writeFile(join(dir, nameOf(i)), `mail ${i}\n`);

  const first = await backupFiles(repo, { host: 'mail', paths: [dir] });
  const tree = await getFileTree(repo, await treeOf(first, dir));
  assert.equal(tree.entries.length, FILES);
  const treeBytes = Buffer.byteLength(JSON.stringify({ version: 1, entries: tree.entries })); // the tree's plaintext (§16)
  assert.ok(treeBytes > 3 * 1024 * 1024, `the directory's tree is ${treeBytes} bytes: more than a frame (2 MiB + a block)`);

  await writeFile(join(dir, nameOf(FILES)), 'one more mail\n');
  await rm(join(dir, nameOf(7)));
  const second = await backupFiles(repo, { host: 'mail', paths: [dir], parent: first });
  assert.equal(second.stats.bytesRead, 'one more mail\n'.length, 'only the new file was read');
  assert.equal((await getFileTree(repo, await treeOf(second, dir))).entries.length, FILES);

  const out = join(root.path, 'out');
  await restoreFileSnapshot(repo, second, { to: out });
  const restored = await readdir(join(out, dir));
  assert.equal(restored.length, FILES);
  assert.equal(await readFile(join(out, dir, nameOf(FILES)), 'utf8'), 'one more mail\n');
  assert.equal(await readFile(join(out, dir, nameOf(8999)), 'utf8'), 'mail 8999\n');
  assert.ok(!restored.includes(nameOf(7)));

  const report = await verifyRepository(repo, { readData: true, now: () => new Date() });
  assert.deepEqual(report.damaged, []);
  assert.ok(report.chunksRead >= FILES, `${report.chunksRead} chunks read and checked`);
});
