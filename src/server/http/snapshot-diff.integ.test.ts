/**
 * GET …/snapshots/{id}/diff through a real `coffer server` process: what changed between two
 * restore points, as `coffer diff --json` tells it. Two file snapshots of a tree changed in
 * each way the letters tell (content, removal, mode, a file become a folder, a file added
 * under a name that is not UTF-8) give exactly those letters, the name as `\xNN` with its
 * bytes; paged by `limit`, the pages put together are the whole list. Two snapshots of a raw
 * image changed with dd give exactly the blocks dd wrote into; of an ext4 disk changed with
 * debugfs, with files=true, exactly the files debugfs touched. Snapshots of two kinds are
 * refused (400), an unknown one is 404, a caller who may browse one VM cannot compare with
 * another's snapshot (403); comparisons are audited. The time limit's answer is checked on the
 * browse function itself with a deadline already passed.
 */
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, mkdtemp, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { LocalBackend, openRepository, loadSnapshot } from '../../repo/index.js';
import { requireTools, runTool, seededBytes } from '../../testing/index.js';
import { diffSnapshots } from '../browse/index.js';
import { firstAdminToken, runCoffer, startServer, type RequestOptions, type Response, type ServerProcess } from './server-harness.js';

const BLOCK = 256 * 1024; // the repository's default block size
const PASSPHRASE = 'snapshot diff';
const dir = await mkdtemp(join(tmpdir(), 'coffer-api-diff-'));
const data = join(dir, 'data');
const repo = join(dir, 'repo');
const passFile = join(dir, 'repo.pass');
const src = join(dir, 'src');
const rawImage = join(dir, 'raw.img');
const extA = join(dir, 'ext-a.img');
const extB = join(dir, 'ext-b.img');
/** A name holding the byte 0xE9 (Latin-1 é), not UTF-8. */
const RAW_NAME = Buffer.from('caf\xe9', 'latin1');
let server: ServerProcess;
let adminToken = '';
let rawvmToken = '';
/** File snapshots of `src` before and after, snapshots of the raw image, of the ext4 image. */
const ids = { files1: '', files2: '', raw1: '', raw2: '', ext1: '', ext2: '' };

interface Change {
  change: string;
  path: string;
  pathBytes?: string;
  type: string;
  was?: string;
}

async function backup(args: string[]): Promise<string> {
  const done = await runCoffer(['backup', '-r', repo, '--password-file', passFile, '--json', ...args]);
  assert.equal(done.code, 0, done.stderr);
  return (JSON.parse(done.stdout) as { id: string }).id;
}

/** dd writes `bytes` of another seed at `offset` of the image, in place. */
async function ddAt(image: string, offset: number, bytes: number): Promise<void> {
  const patch = join(dir, 'patch.bin');
  await writeFile(patch, seededBytes(offset, bytes));
  await runTool('dd', [`if=${patch}`, `of=${image}`, 'bs=1', `seek=${offset}`, 'conv=notrunc', 'status=none']);
}

before(async () => {
  await requireTools('dd', 'mke2fs', 'debugfs');
  await writeFile(passFile, `${PASSPHRASE}\n`);
  assert.equal((await runCoffer(['init', '-r', repo, '--password-file', passFile])).code, 0);

  await mkdir(join(src, 'keep'), { recursive: true });
  for (const [name, text] of [['a-changed.txt', 'before\n'], ['b-removed.txt', 'gone soon\n'], ['c-mode.txt', 'mode\n'], ['d-becomes-dir', 'a file now\n'], ['keep/same.txt', 'same\n']]) {
    await writeFile(join(src, name as string), text as string);
  }
  ids.files1 = await backup(['--files', src, '--host', 'guest1']);
  await writeFile(join(src, 'a-changed.txt'), 'after, longer\n');
  await unlink(join(src, 'b-removed.txt'));
  await chmod(join(src, 'c-mode.txt'), 0o600);
  await unlink(join(src, 'd-becomes-dir'));
  await mkdir(join(src, 'd-becomes-dir'));
  await writeFile(join(src, 'd-becomes-dir', 'inner.txt'), 'inside\n');
  await writeFile(Buffer.concat([Buffer.from(`${src}/`), RAW_NAME]), 'Latin-1 name\n');
  ids.files2 = await backup(['--files', src, '--host', 'guest1']);

  await writeFile(rawImage, seededBytes(1, 16 * BLOCK));
  ids.raw1 = await backup(['--vm', 'rawvm', rawImage]);
  await ddAt(rawImage, 300_000, 10); // block 1
  await ddAt(rawImage, 5 * BLOCK - 100, 200); // blocks 4 and 5
  await ddAt(rawImage, 16 * BLOCK - 5, 5); // block 15, the last
  ids.raw2 = await backup(['--vm', 'rawvm', rawImage]);

  const tree = join(dir, 'ext-tree');
  await mkdir(tree);
  await writeFile(join(tree, 'gone.txt'), 'removed by debugfs\n');
  await writeFile(join(tree, 'mode.txt'), 'chmod by debugfs\n');
  await writeFile(join(tree, 'same.txt'), 'untouched\n');
  await writeFile(join(dir, 'added.txt'), 'written by debugfs\n');
  await writeFile(extA, '');
  await truncate(extA, 8 * 1024 * 1024);
  await runTool('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-d', tree, extA]);
  await copyFile(extA, extB);
  await writeFile(join(dir, 'edits'), `write ${join(dir, 'added.txt')} /added.txt\nrm /gone.txt\nsif /mode.txt mode 0100600\n`);
  await runTool('debugfs', ['-w', '-f', join(dir, 'edits'), extB]);
  ids.ext1 = await backup(['--vm', 'extvm', extA]);
  ids.ext2 = await backup(['--vm', 'extvm', extB]);

  await mkdir(data, { recursive: true });
  await writeFile(
    join(data, 'coffer.yaml'),
    `repositories:\n  - name: main\n    url: ${repo}\n    passphrase-file: ${passFile}\nhosts:\n  - name: hv1\nvms:\n  - name: rawvm\n    host: hv1\n    source: { images: [${rawImage}] }\n  - name: extvm\n    host: hv1\n    source: { images: [${extB}] }\n  - name: guest1\n    host: hv1\n    source: { images: [${join(dir, 'missing.raw')}] }\n`,
  );
  server = await startServer(['--data', data, '--listen', '127.0.0.1:0']);
  adminToken = await firstAdminToken(server, 'snapshot diff admin password');
  rawvmToken = (await call('POST', '/tokens', { body: { name: 'helpdesk', grants: [{ role: 'RestoreOperator', path: '/vms/rawvm' }] } })).json.secret;
  assert.ok(adminToken && rawvmToken);
});

after(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

function call(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
  return server.request(method, `/api/v1${path}`, { token: adminToken, ...options });
}

function diff(snapshot: string, query: Record<string, string>, options: RequestOptions = {}): Promise<Response> {
  return call('GET', `/repositories/main/snapshots/${snapshot}/diff?${new URLSearchParams(query).toString()}`, options);
}

const letters = (changes: Change[]) => changes.map((c) => `${c.change} ${c.path}${c.was !== undefined ? ` (was ${c.was})` : ''}`);

test('two file snapshots: exactly the changes made, in restic\'s letters, a name that is not UTF-8 as \\xNN with its bytes', async () => {
  const answer = await diff(ids.files2, { against: ids.files1, limit: '500' });
  assert.equal(answer.status, 200, answer.text);
  const doc = answer.json;
  assert.equal(doc.kind, 'files');
  assert.deepEqual([doc.a.id, doc.b.id, doc.b.vm], [ids.files1, ids.files2, 'guest1']);
  assert.deepEqual(letters(doc.changes), [
    `M ${src}/a-changed.txt`,
    `- ${src}/b-removed.txt`,
    `U ${src}/c-mode.txt`,
    `+ ${src}/caf\\xe9`,
    `T ${src}/d-becomes-dir (was file)`,
    `+ ${src}/d-becomes-dir/inner.txt`,
  ]);
  const raw = (doc.changes as Change[]).find((c) => c.path.endsWith('caf\\xe9'));
  assert.equal(raw?.pathBytes, Buffer.concat([Buffer.from(`${src}/`), RAW_NAME]).toString('hex'));
  assert.deepEqual(doc.counts.files, { '+': 2, '-': 1, M: 1, T: 0, U: 1 });
  assert.deepEqual(doc.counts.directories, { '+': 0, '-': 0, M: 0, T: 1, U: 0 });
  assert.equal(doc.bytesAdded, 'after, longer\n'.length + 'inside\n'.length + 'Latin-1 name\n'.length);
  assert.ok(doc.treesSkipped >= 1, 'keep/ is the same tree in both: not read');
  assert.deepEqual([doc.total, doc.next, doc.truncated, doc.timedOut, doc.problems, doc.problemCount], [6, null, false, false, [], 0]);
});

test('paged by limit: each page says the total and where the next starts; the pages put together are the whole list', async () => {
  const whole = (await diff(ids.files2, { against: ids.files1, limit: '500' })).json.changes as Change[];
  const pages: Change[] = [];
  let offset: number | null = 0;
  let requests = 0;
  while (offset !== null) {
    const page = await diff(ids.files2, { against: ids.files1, limit: '4', offset: String(offset) });
    assert.equal(page.status, 200, page.text);
    assert.ok(page.json.changes.length <= 4);
    assert.equal(page.json.total, 6);
    assert.deepEqual(page.json.counts.files, { '+': 2, '-': 1, M: 1, T: 0, U: 1 }, 'the counts are the whole diff\'s on every page');
    assert.equal(page.json.truncated, page.json.next !== null);
    pages.push(...page.json.changes);
    offset = page.json.next;
    requests += 1;
  }
  assert.equal(requests, 2);
  assert.deepEqual(pages, whole);
  const past = await diff(ids.files2, { against: ids.files1, offset: '50' });
  assert.deepEqual([past.json.changes, past.json.total, past.json.next], [[], 6, null]);
  assert.equal((await diff(ids.files2, { against: ids.files1, limit: '501' })).status, 400, 'at most 500 a page');
});

test('two snapshots of a raw image changed with dd: exactly the blocks dd wrote into, no file walked', async () => {
  const answer = await diff(ids.raw2, { against: ids.raw1 });
  assert.equal(answer.status, 200, answer.text);
  const doc = answer.json;
  assert.equal(doc.kind, 'disks');
  assert.equal(doc.volumes, undefined);
  assert.deepEqual(doc.disks, [
    {
      name: 'disk0', change: 'changed', sizeA: 16 * BLOCK, sizeB: 16 * BLOCK, blockSize: BLOCK, changedBlocks: 4, zeroedBlocks: 0, changedBytes: 4 * BLOCK,
      ranges: [{ offset: BLOCK, length: BLOCK }, { offset: 4 * BLOCK, length: 2 * BLOCK }, { offset: 15 * BLOCK, length: BLOCK }], rangeCount: 3, pagesRead: 2, pagesSkipped: 0,
    },
  ]);
  assert.deepEqual([doc.totals.changedBytes, doc.totals.disksChanged, doc.total, doc.next, doc.truncated], [4 * BLOCK, 1, 0, null, false]);
  const same = await diff(ids.raw2, { against: ids.raw2 });
  assert.deepEqual([same.json.disks[0].change, same.json.disks[0].ranges, same.json.totals.pagesRead], ['unchanged', [], 0]);
  const one = await diff(ids.raw2, { against: ids.raw1, disk: 'disk0' });
  assert.equal(one.json.disks.length, 1);
});

test('two snapshots of an ext4 disk with files=true: the files debugfs added, removed and changed', async () => {
  const answer = await diff(ids.ext2, { against: ids.ext1, files: 'true' });
  assert.equal(answer.status, 200, answer.text);
  const doc = answer.json;
  assert.equal(doc.disks[0].change, 'changed');
  assert.equal(doc.volumes.length, 1, JSON.stringify(doc.volumes));
  const volume = doc.volumes[0];
  assert.deepEqual([volume.disk, volume.change, volume.filesystem, volume.complete], ['disk0', 'compared', 'ext4', true]);
  assert.deepEqual(letters(volume.changes), ['+ /added.txt', '- /gone.txt', 'U /mode.txt']);
  assert.deepEqual(volume.counts.files, { '+': 1, '-': 1, M: 0, T: 0, U: 1 });
  assert.equal(volume.bytesAdded, 'written by debugfs\n'.length);
  assert.deepEqual([doc.total, doc.timedOut], [3, false]);
  const paged = await diff(ids.ext2, { against: ids.ext1, files: 'true', limit: '1', offset: '1' });
  assert.deepEqual([letters(paged.json.volumes[0].changes), paged.json.next, paged.json.truncated], [['- /gone.txt'], 2, true]);
});

test('refused: snapshots of two kinds or a disk of a file snapshot (400), an unknown snapshot or disk (404), the other VM\'s snapshot (403); comparisons are audited', async () => {
  const kinds = await diff(ids.files2, { against: ids.raw1 });
  assert.equal(kinds.status, 400, kinds.text);
  assert.equal(kinds.json.code, 'E_USAGE');
  assert.equal(kinds.json.detail, `${ids.raw1.slice(0, 8)} is a VM snapshot and ${ids.files2.slice(0, 8)} a file snapshot: compare snapshots of one kind`);
  assert.equal((await diff(ids.files2, { against: ids.files1, disk: 'disk0' })).status, 400);
  assert.equal((await diff(ids.raw2, {})).status, 400, 'against is required');
  const unknown = await diff(ids.raw2, { against: 'ffffffff' });
  assert.deepEqual([unknown.status, unknown.json.code], [404, 'E_NOT_FOUND']);
  assert.equal((await call('GET', `/repositories/main/snapshots/ffffffff/diff?against=${ids.raw1}`)).status, 404);
  const noDisk = await diff(ids.raw2, { against: ids.raw1, disk: 'disk7' });
  assert.deepEqual([noDisk.status, noDisk.json.code], [404, 'E_DISK_NOT_FOUND']);

  const helpdesk = { token: rawvmToken };
  assert.equal((await diff(ids.raw2, { against: ids.raw1 }, helpdesk)).status, 200, 'rawvm\'s snapshots: allowed');
  for (const [snapshot, against] of [[ids.raw2, ids.ext1], [ids.ext2, ids.raw1], [ids.files2, ids.files1]] as const) {
    const refused = await diff(snapshot, { against }, helpdesk);
    assert.deepEqual([refused.status, refused.json.code], [403, 'E_FORBIDDEN'], refused.text);
  }
  const audit = await call('GET', '/audit?action=files.diff');
  assert.ok(
    audit.json.items.some((e: { target: string; details: { against: string; total: number } }) => e.target === `/repositories/main/snapshots/${ids.files2}` && e.details.against === ids.files1 && e.details.total === 6),
    audit.text,
  );
});

test('the time limit: a walk stopped by its deadline answers what it had, says timedOut, and leaves out what only a finished walk knows', async () => {
  const repository = await openRepository(new LocalBackend(repo), { passphrase: PASSPHRASE });
  try {
    const bounds = { files: true, page: { offset: 0, limit: 50 }, maxRanges: 2, maxProblems: 10, deadline: AbortSignal.abort() };
    const files = await diffSnapshots(repository, await loadSnapshot(repository, ids.files1), await loadSnapshot(repository, ids.files2), bounds);
    assert.equal(files.kind, 'files');
    assert.deepEqual([files.timedOut, files.truncated, files.total, files.next], [true, true, 0, null]);
    assert.ok(!('bytesAdded' in files) && !('problems' in files), JSON.stringify(files));
    const disks = await diffSnapshots(repository, await loadSnapshot(repository, ids.ext1), await loadSnapshot(repository, ids.ext2), bounds);
    assert.ok(disks.kind === 'disks' && disks.volumes !== undefined);
    assert.equal(disks.disks[0]?.change, 'changed', 'the disks are compared whatever the deadline');
    assert.deepEqual(disks.volumes.map((v) => [v.change, v.complete]), [['compared', false]]);
    assert.deepEqual([disks.timedOut, disks.truncated], [true, true]);
    // The cap on ranges: the raw image's three ranges, two listed.
    const raw = await diffSnapshots(repository, await loadSnapshot(repository, ids.raw1), await loadSnapshot(repository, ids.raw2), { ...bounds, files: false });
    assert.ok(raw.kind === 'disks');
    const disk = raw.disks[0] as { ranges: unknown[]; rangeCount: number };
    assert.deepEqual([disk.ranges.length, disk.rangeCount, raw.truncated, raw.timedOut], [2, 3, true, false]);
  } finally {
    await repository.close();
  }
});
