/**
 * The task kinds and file browsing through a real `coffer server` process: a real repository
 * holding a VM with an ext4 and an NTFS disk (the shared fixtures), a second VM for grants.
 * Restore to qcow2 compared by `qemu-img compare`; verify; volumes and listings; one file
 * downloaded (whole and by Range) and compared with debugfs's and ntfscat's copies; a folder
 * as tar (GNU tar) and as zip (unzip); instant recovery read by `nbdinfo`, stopped, gone; a
 * RestoreOperator granted /vms/vma refused on vmb and on prune; prune waits for a second
 * administrator under four eyes; the audit log lists the downloads.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { buildExtImage, buildNtfsImage, requireTools } from '../../testing/index.js';
import { firstAdminToken, runCoffer, startServer, type Download, type RequestOptions, type Response, type ServerProcess } from './server-harness.js';

const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), 'coffer-kinds-'));
const data = join(dir, 'data');
const repo = join(dir, 'repo');
const passFile = join(dir, 'repo.pass');
let server: ServerProcess;
let ext4Image = '';
let ntfsImage = '';
let snapA = '';
let snapB = '';
let adminToken = '';
let admin2Token = '';
let restoreToken = '';

before(async () => {
  await requireTools('qemu-img', 'debugfs', 'ntfscat', 'nbdinfo', 'tar', 'unzip');
  ext4Image = await buildExtImage({ sizeMiB: 96, bigFileBytes: 3_000_000 });
  ntfsImage = await buildNtfsImage({ sizeMiB: 96, bigFileBytes: 3_000_000 });
  await writeFile(passFile, 'kinds passphrase\n');
  assert.equal((await runCoffer(['init', '-r', repo, '--password-file', passFile])).code, 0);
  const a = await runCoffer(['backup', '-r', repo, '--password-file', passFile, '--vm', 'vma', '--json', ext4Image, ntfsImage], 120_000);
  assert.equal(a.code, 0, a.stderr);
  snapA = (JSON.parse(a.stdout) as { id: string }).id;
  const b = await runCoffer(['backup', '-r', repo, '--password-file', passFile, '--vm', 'vmb', '--json', ext4Image], 120_000);
  assert.equal(b.code, 0, b.stderr);
  snapB = (JSON.parse(b.stdout) as { id: string }).id;
  await mkdir(data, { recursive: true });
  await writeFile(join(data, 'coffer.yaml'), `security:\n  four-eyes: true\nrepositories:\n  - name: main\n    url: ${repo}\n    passphrase-file: ${passFile}\nhosts:\n  - name: hv1\nvms:\n  - name: vma\n    host: hv1\n    source: { images: [${ext4Image}] }\n  - name: vmb\n    host: hv1\n    source: { images: [${ext4Image}] }\n`);
  server = await startServer(['--data', data, '--listen', '127.0.0.1:0']);
  adminToken = await firstAdminToken(server, 'kinds admin password');
  restoreToken = (await call('POST', '/tokens', { body: { name: 'helpdesk', grants: [{ role: 'RestoreOperator', path: '/vms/vma' }] } })).json.secret;
  assert.equal((await call('POST', '/users', { body: { name: 'admin2', password: 'second admin password', grants: [{ role: 'Admin', path: '/' }], mustChangePassword: false } })).status, 201);
  const jar2 = new Map<string, string>();
  const login2 = await server.request('POST', '/api/v1/auth/login', { body: { user: 'admin2', password: 'second admin password' }, jar: jar2 });
  admin2Token = (await server.request('POST', '/api/v1/tokens', { jar: jar2, headers: { 'x-csrf-token': login2.json.csrfToken as string }, body: { name: 'admin2', grants: [{ role: 'Admin', path: '/' }] } })).json.secret;
  assert.ok(adminToken && restoreToken && admin2Token);
});

after(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

function call(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
  return server.request(method, `/api/v1${path}`, { token: adminToken, ...options });
}

/** A GET whose body is bytes. */
const download = (path: string, token: string, headers: Record<string, string> = {}): Promise<Download> => server.download(`/api/v1${path}`, { token, headers });

/**
 * A task as the server's state database holds it (read-only; the tasks routes are another
 * part's, this test reads the rows they read).
 */
function taskRow(id: string): any {
  const db = new Database(join(data, 'state.db'), { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare('SELECT * FROM tasks WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    if (row === undefined) throw new Error(`no task ${id}`);
    return { ...row, report: row.result === null ? null : JSON.parse(String(row.result)) };
  } finally {
    db.close();
  }
}

async function waitTask(id: string, until: (task: { status: string; report: { detail: Record<string, unknown> } | null }) => boolean, timeoutMs = 60_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const task = taskRow(id);
    if (until(task)) return task;
    if (Date.now() > deadline) throw new Error(`task ${id} still ${task.status} after ${timeoutMs} ms: ${JSON.stringify(task)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const ended = (t: { status: string }) => !['queued', 'running'].includes(t.status);

test('restore to qcow2 through the API equals the source disk (qemu-img compare), and verify passes', async () => {
  // Outside the allowed folders (default DATA/restores), directly or through a symlink: 403.
  await symlink(dir, join(data, 'restores', 'escape'));
  for (const to of [join(dir, 'restored'), join(data, 'restores', 'escape', 'restored')]) {
    const refused = await call('POST', `/repositories/main/snapshots/${snapA.slice(0, 12)}/restore`, { body: { to, format: 'qcow2', disk: 'disk0' } });
    assert.equal(refused.status, 403, refused.text);
    assert.equal(refused.json.code, 'E_RESTORE_TARGET_REFUSED');
  }
  const out = join(data, 'restores', 'restored');
  const started = await call('POST', `/repositories/main/snapshots/${snapA.slice(0, 12)}/restore`, { body: { to: out, format: 'qcow2', disk: 'disk0' } });
  assert.equal(started.status, 202, started.text);
  assert.equal(started.headers.location, `/api/v1/tasks/${started.json.id}`);
  const done = await waitTask(started.json.id, ended);
  assert.equal(done.status, 'succeeded', JSON.stringify(done));
  await run('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', ext4Image, out]);
  const verify = await call('POST', '/repositories/main/verify', { body: { readData: true } });
  assert.equal(verify.status, 202, verify.text);
  const verified = await waitTask(verify.json.id, ended);
  assert.equal(verified.status, 'succeeded', JSON.stringify(verified));
  assert.equal(verified.report.figures.damaged, 0);
  assert.ok(verified.report.figures.chunksRead > 0);
});

test('browse ext4 and NTFS: volumes, listings, a file whole and by Range equal to debugfs and ntfscat', async () => {
  const volumes = (await call('GET', `/repositories/main/snapshots/${snapA}/volumes`)).json.items as { id: string; filesystem: string }[];
  const ext = volumes.find((v) => v.filesystem === 'ext4');
  const ntfs = volumes.find((v) => v.filesystem === 'ntfs');
  assert.ok(ext !== undefined && ntfs !== undefined, JSON.stringify(volumes));
  const root = await call('GET', `/repositories/main/snapshots/${snapA}/files?volume=${encodeURIComponent(ext.id)}&path=/&limit=2`);
  assert.equal(root.status, 200, root.text);
  assert.equal(root.json.items.length, 2);
  assert.ok(root.json.total > 2);
  const docs = await call('GET', `/repositories/main/snapshots/${snapA}/files?volume=${encodeURIComponent(ntfs.id)}&path=/docs`);
  assert.ok(docs.json.items.some((e: { name: string }) => e.name === 'readme.txt'), docs.text);

  const want = { ext4: (await run('debugfs', ['-R', 'cat /docs/readme.txt', ext4Image], { encoding: 'buffer' })).stdout, ntfs: (await run('ntfscat', [ntfsImage, '/docs/readme.txt'], { encoding: 'buffer' })).stdout };
  for (const [volume, bytes] of [[ext.id, want.ext4], [ntfs.id, want.ntfs]] as const) {
    const path = `/repositories/main/snapshots/${snapA}/files/content?volume=${encodeURIComponent(volume)}&path=/docs/readme.txt`;
    const whole = await download(path, restoreToken);
    assert.equal(whole.status, 200);
    assert.equal(sha(whole.body), sha(bytes), `${volume}: the same bytes`);
    assert.equal(whole.headers['content-length'], String(bytes.length));
    assert.equal(whole.headers['content-type'], 'text/plain; charset=utf-8');
    assert.match(String(whole.headers['content-disposition']), /^attachment; filename="readme.txt"/);
    const part = await download(path, restoreToken, { range: 'bytes=2-9' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], `bytes 2-9/${bytes.length}`);
    assert.deepEqual(part.body, bytes.subarray(2, 10));
    assert.equal((await download(path, restoreToken, { range: `bytes=${bytes.length}-` })).status, 416);
  }
  const big = await download(`/repositories/main/snapshots/${snapA}/files/content?volume=${encodeURIComponent(ext.id)}&path=/big.bin`, adminToken);
  assert.equal(sha(big.body), sha((await run('debugfs', ['-R', 'cat /big.bin', ext4Image], { encoding: 'buffer', maxBuffer: 64 << 20 })).stdout));
  assert.equal(big.headers['content-type'], 'application/octet-stream');
});

test('a folder as tar (GNU tar) and as zip (unzip) holds the same files as the filesystem', async () => {
  const ext = `${'disk0'}:disk`;
  for (const format of ['tar', 'zip'] as const) {
    const archive = await download(`/repositories/main/snapshots/${snapA}/files/archive?volume=${encodeURIComponent(ext)}&path=/docs&format=${format}`, restoreToken);
    assert.equal(archive.status, 200, archive.body.toString().slice(0, 300));
    assert.match(String(archive.headers['content-disposition']), new RegExp(`filename="docs\\.${format}"`));
    const file = join(dir, `docs.${format}`);
    const into = join(dir, `unpacked-${format}`);
    await mkdir(into);
    await writeFile(file, archive.body);
    const names = format === 'tar' ? (await run('tar', ['-tf', file])).stdout : (await run('unzip', ['-Z1', file])).stdout;
    for (const name of names.split('\n').filter(Boolean)) assert.ok(!name.startsWith('/') && !name.split('/').includes('..'), `${format}: ${name}`);
    if (format === 'tar') await run('tar', ['-xf', file, '-C', into]);
    else await run('unzip', ['-q', file, '-d', into]);
    const readme = await readFile(join(into, 'docs', 'readme.txt'));
    assert.equal(sha(readme), sha((await run('debugfs', ['-R', 'cat /docs/readme.txt', ext4Image], { encoding: 'buffer' })).stdout), `${format}: readme.txt`);
  }
});

test('instant recovery: the NBD export answers nbdinfo, stops on cancel, and is gone', async () => {
  const started = await call('POST', `/repositories/main/snapshots/${snapA}/instant-recovery`, { body: { listen: '127.0.0.1:0' } });
  assert.equal(started.status, 202, started.text);
  const serving = await waitTask(started.json.id, (t) => t.report !== null || ended(t));
  assert.equal(serving.status, 'running', JSON.stringify(serving));
  const exports = serving.report.detail.exports as { disk: string; uri: string; size: number }[];
  assert.equal(exports.length, 2);
  assert.match(serving.report.detail.qemuCommand, /^qemu-system-x86_64 .*-drive file=nbd:\/\/127\.0\.0\.1:\d+\/disk0,format=raw/);
  const info = await run('nbdinfo', ['--size', exports[0]?.uri as string]);
  assert.equal(Number(info.stdout.trim()), exports[0]?.size);
  const stop = await call('DELETE', `/repositories/main/instant-recovery/${started.json.id}`);
  assert.equal(stop.status, 200, stop.text);
  const stopped = await waitTask(started.json.id, ended);
  assert.equal(stopped.status, 'succeeded', JSON.stringify(stopped));
  await assert.rejects(run('nbdinfo', ['--size', exports[0]?.uri as string]), 'the export is gone');
});

test('a RestoreOperator granted /vms/vma browses vma, not vmb, and cannot prune', async () => {
  assert.equal((await call('GET', `/repositories/main/snapshots/${snapA}/volumes`, { token: restoreToken })).status, 200);
  const other = await call('GET', `/repositories/main/snapshots/${snapB}/volumes`, { token: restoreToken });
  assert.equal(other.status, 403, other.text);
  assert.equal((await call('GET', '/vms/vmb/files/search?name=readme.txt', { token: restoreToken })).status, 403);
  assert.equal((await call('POST', `/repositories/main/snapshots/${snapB}/restore`, { token: restoreToken, body: { to: join(dir, 'nope.raw') } })).status, 403);
  assert.equal((await call('POST', '/repositories/main/prune', { token: restoreToken, body: {} })).status, 403);
  const found = await call('GET', '/vms/vma/files/search?name=readme*', { token: restoreToken });
  assert.equal(found.status, 200, found.text);
  assert.deepEqual(new Set(found.json.items.map((i: { path: string }) => i.path)), new Set(['/docs/readme.txt']));
  assert.equal(found.json.items[0].snapshot, snapA);
  assert.deepEqual(found.json.searchedSnapshots.map((s: { snapshot: string; matches: number }) => [s.snapshot, s.matches]), [[snapA, found.json.items.length]]);
  // A name no snapshot holds: each snapshot searched is listed with no match (the night that no longer had the file).
  const missing = await call('GET', '/vms/vma/files/search?name=no-such-file.txt', { token: restoreToken });
  assert.deepEqual(missing.json.items, []);
  assert.deepEqual(missing.json.searchedSnapshots.map((s: { snapshot: string; matches: number }) => [s.snapshot, s.matches]), [[snapA, 0]]);
});

test('prune under four eyes waits for a second administrator; the audit log lists the downloads', async () => {
  const asked = await call('POST', '/repositories/main/prune', { body: { waitMinutes: 0 } });
  assert.equal(asked.status, 202, asked.text);
  assert.ok(asked.json.approval !== undefined && asked.json.id === undefined, 'an approval, not a task');
  assert.equal((await call('POST', `/approvals/${asked.json.approval}/approve`)).status, 403, 'not by the one who asked');
  const approved = await call('POST', `/approvals/${asked.json.approval}/approve`, { token: admin2Token });
  assert.equal(approved.status, 200, approved.text);
  const taskId = /task (\S+)/.exec(approved.json.result)?.[1] as string;
  const pruned = await waitTask(taskId, ended);
  assert.equal(pruned.status, 'succeeded', JSON.stringify(pruned));
  assert.equal(pruned.kind, 'prune');

  const audit = await call('GET', '/audit?action=files.download');
  // Two whole and two ranged reads of readme.txt, and big.bin; a refused range is no download.
  assert.equal(audit.json.items.length, 5, audit.text);
  const entry = audit.json.items.find((e: { details: { path: string; range?: string } }) => e.details.path === '/docs/readme.txt' && e.details.range === '2-9');
  assert.ok(entry !== undefined && entry.actor.startsWith('token:') && entry.address === '127.0.0.1' && entry.target === `/repositories/main/snapshots/${snapA}`, audit.text);
  assert.ok((await call('GET', '/audit?action=files.archive')).json.items.length >= 2);
  assert.ok((await call('GET', '/audit?action=restore.start')).json.items.length >= 1);
});
