/**
 * A file snapshot browsed through the API of a real `coffer server` process, as the console's
 * restore wizard browses it: `coffer backup --files` of a small tree (a file owned by a named
 * account, a symlink, a subfolder) under the name of a VM the configuration gives a guest
 * agent, as that agent's backups are named. Its files are the one volume `files`; listings
 * carry the recorded owner and group names; a file downloads byte for byte; a folder as tar
 * (read by GNU tar, the owner names in its headers) and as zip (unzip); the VM's file search
 * finds it; a token granted another VM is refused (403) and downloads are audited. Before, the
 * volumes of a file snapshot were `[]` and nothing of it could be opened.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { lchown, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { requireTools, seededBytes } from '../../testing/index.js';
import { firstAdminToken, runCoffer, startServer, type Download, type RequestOptions, type Response, type ServerProcess } from './server-harness.js';

const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), 'coffer-fsnap-browse-'));
const data = join(dir, 'data');
const repo = join(dir, 'repo');
const passFile = join(dir, 'repo.pass');
/** The tree backed up: its path is kept in the snapshot (`/tmp/…/src/hello.txt`). */
const src = join(dir, 'src');
const HELLO = 'hello from a guest\n';
const DATA = Buffer.from(seededBytes(41, 300_000));
/** `owned.txt`'s owner: Debian's `daemon` (1:1) when the test runs as root (it can chown), else whoever runs it. */
const asRoot = process.getuid?.() === 0;
const OWNER = asRoot ? 'daemon' : userInfo().username;
let server: ServerProcess;
let snapshot = '';
let adminToken = '';
let otherToken = '';

before(async () => {
  await requireTools('tar', 'unzip');
  if (asRoot) assert.match(await readFile('/etc/passwd', 'utf8'), /^daemon:x:1:1:/m, 'this host has Debian\'s daemon account (1:1)');
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'hello.txt'), HELLO);
  await writeFile(join(src, 'owned.txt'), 'owned\n');
  await writeFile(join(src, 'sub', 'data.bin'), DATA);
  await symlink('../hello.txt', join(src, 'sub', 'link'));
  if (asRoot) await lchown(join(src, 'owned.txt'), 1, 1);
  await writeFile(passFile, 'file snapshot browse\n');
  assert.equal((await runCoffer(['init', '-r', repo, '--password-file', passFile])).code, 0);
  const backup = await runCoffer(['backup', '-r', repo, '--password-file', passFile, '--files', src, '--host', 'guest1-files', '--json']);
  assert.equal(backup.code, 0, backup.stderr);
  snapshot = (JSON.parse(backup.stdout) as { id: string }).id;
  await mkdir(data, { recursive: true });
  await writeFile(
    join(data, 'coffer.yaml'),
    `repositories:\n  - name: main\n    url: ${repo}\n    passphrase-file: ${passFile}\nhosts:\n  - name: guest1\n  - name: hv1\nvms:\n  - name: guest1-files\n    host: guest1\n    source: { agent: guest1, files: { paths: [${src}] } }\n  - name: other\n    host: hv1\n    source: { images: [${join(dir, 'missing.raw')}] }\n`,
  );
  server = await startServer(['--data', data, '--listen', '127.0.0.1:0']);
  adminToken = await firstAdminToken(server, 'file snapshot admin password');
  otherToken = (await call('POST', '/tokens', { body: { name: 'helpdesk', grants: [{ role: 'RestoreOperator', path: '/vms/other' }] } })).json.secret;
  assert.ok(adminToken && otherToken);
});

after(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

function call(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
  return server.request(method, `/api/v1${path}`, { token: adminToken, ...options });
}

/** A GET whose body is bytes, as the admin. */
const download = (path: string, headers: Record<string, string> = {}): Promise<Download> => server.download(`/api/v1${path}`, { token: adminToken, headers, timeoutMs: 30_000 });

const base = () => `/repositories/main/snapshots/${snapshot}`;
const q = (params: Record<string, string>) => new URLSearchParams(params).toString();

test('a file snapshot has one volume, files, and its folders list with the recorded owner and group names', async () => {
  const volumes = await call('GET', `${base()}/volumes`);
  assert.equal(volumes.status, 200, volumes.text);
  assert.deepEqual(
    volumes.json.items.map((v: { id: string; kind: string; filesystem: string }) => [v.id, v.kind, v.filesystem]),
    [['files', 'files', 'coffer-files']],
  );
  assert.match(volumes.json.items[0].notes.join(' '), new RegExp(`${src.replace(/[/.]/g, '\\$&')}$`), 'the paths backed up');

  const listing = await call('GET', `${base()}/files?${q({ volume: 'files', path: src })}`);
  assert.equal(listing.status, 200, listing.text);
  assert.equal(listing.json.path, src);
  const entries = new Map<string, { type: string; size: number; user?: string; group?: string }>(listing.json.items.map((e: { name: string }) => [e.name, e]));
  assert.deepEqual([...entries.keys()], ['hello.txt', 'owned.txt', 'sub']);
  assert.equal(entries.get('owned.txt')?.size, 6);
  assert.equal(entries.get('owned.txt')?.user, OWNER);
  if (asRoot) assert.equal(entries.get('owned.txt')?.group, 'daemon');
  assert.equal(entries.get('hello.txt')?.user, userInfo().username);
  assert.equal(entries.get('sub')?.type, 'directory');
  const sub = await call('GET', `${base()}/files?${q({ volume: 'files', path: `${src}/sub` })}`);
  assert.deepEqual(sub.json.items.map((e: { name: string; type: string; target?: string }) => [e.name, e.type, e.target]), [['data.bin', 'file', undefined], ['link', 'symlink', '../hello.txt']]);
  const wrong = await call('GET', `${base()}/files?${q({ volume: 'disk0:p1', path: '/' })}`);
  assert.equal(wrong.status, 404, wrong.text);
  assert.equal(wrong.json.code, 'E_VOLUME_NOT_FOUND');
});

test('a file downloads byte for byte (whole and by Range), through a symlink too', async () => {
  const whole = await download(`${base()}/files/content?${q({ volume: 'files', path: `${src}/sub/data.bin` })}`);
  assert.equal(whole.status, 200, whole.body.toString().slice(0, 300));
  assert.ok(whole.body.equals(DATA), 'the same bytes');
  assert.equal(whole.headers['content-length'], String(DATA.length));
  const part = await download(`${base()}/files/content?${q({ volume: 'files', path: `${src}/sub/data.bin` })}`, { range: 'bytes=100000-100099' });
  assert.equal(part.status, 206);
  assert.ok(part.body.equals(DATA.subarray(100_000, 100_100)));
  const linked = await download(`${base()}/files/content?${q({ volume: 'files', path: `${src}/sub/link`, inline: 'true' })}`);
  assert.equal(linked.body.toString('utf8'), HELLO);
  assert.equal(linked.headers['content-type'], 'text/plain; charset=utf-8');
});

test('a folder as tar (GNU tar lists the owner names, extracts the same tree) and as zip (unzip)', async () => {
  for (const format of ['tar', 'zip'] as const) {
    const archive = await download(`${base()}/files/archive?${q({ volume: 'files', path: src, format })}`);
    assert.equal(archive.status, 200, archive.body.toString().slice(0, 300));
    assert.match(String(archive.headers['content-disposition']), new RegExp(`filename="src\\.${format}"`));
    const file = join(dir, `src.${format}`);
    const into = join(dir, `unpacked-${format}`);
    await mkdir(into);
    await writeFile(file, archive.body);
    if (format === 'tar') {
      const listed = (await run('tar', ['-tvf', file])).stdout;
      assert.match(listed, new RegExp(`^-\\S+ ${OWNER}/\\S+ +6 .* src/owned\\.txt$`, 'm'), listed);
      assert.match(listed, /^l\S+ .* src\/sub\/link -> \.\.\/hello\.txt$/m, listed);
      await run('tar', ['-xf', file, '-C', into]);
      if (asRoot) assert.deepEqual([(await lstat(join(into, 'src', 'owned.txt'))).uid, (await lstat(join(into, 'src', 'owned.txt'))).gid], [1, 1], 'tar -x gives daemon its id here');
    } else {
      await run('unzip', ['-q', file, '-d', into]);
    }
    assert.equal(await readFile(join(into, 'src', 'hello.txt'), 'utf8'), HELLO, format);
    assert.ok((await readFile(join(into, 'src', 'sub', 'data.bin'))).equals(DATA), format);
    if (format === 'tar') assert.equal(await readlink(join(into, 'src', 'sub', 'link')), '../hello.txt');
  }
});

test('the VM\'s file search finds the file in its agent\'s file snapshot', async () => {
  const found = await call('GET', `/vms/guest1-files/files/search?${q({ name: 'data.*' })}`);
  assert.equal(found.status, 200, found.text);
  assert.deepEqual(found.json.items.map((i: { snapshot: string; volume: string; path: string; size: number }) => [i.snapshot, i.volume, i.path, i.size]), [[snapshot, 'files', `${src}/sub/data.bin`, DATA.length]]);
  assert.deepEqual(found.json.searchedSnapshots.map((s: { snapshot: string; matches: number }) => [s.snapshot, s.matches]), [[snapshot, 1]]);
});

test('a token granted another VM is refused (403) on every browse route; downloads are audited', async () => {
  const other = { token: otherToken };
  for (const path of [`${base()}/volumes`, `${base()}/files?${q({ volume: 'files', path: src })}`, `${base()}/files/content?${q({ volume: 'files', path: `${src}/hello.txt` })}`, `${base()}/files/archive?${q({ volume: 'files', path: src })}`, `/vms/guest1-files/files/search?${q({ name: 'hello.txt' })}`]) {
    const refused = await call('GET', path, other);
    assert.equal(refused.status, 403, `${path}: ${refused.text}`);
  }
  const downloads = await call('GET', '/audit?action=files.download');
  assert.ok(downloads.json.items.some((e: { target: string; details: { volume: string; path: string } }) => e.target === base() && e.details.volume === 'files' && e.details.path === `${src}/sub/data.bin`), downloads.text);
  assert.ok((await call('GET', '/audit?action=files.archive')).json.items.some((e: { details: { volume: string } }) => e.details.volume === 'files'));
});

test('a file snapshot restores through the API into a folder the server lists as allowed (its files, link and owner as recorded) and test-restores by reading every file; disk-only requests are refused (400)', async () => {
  // Where it may go, as the console reads it to propose a folder: the default, DATA/restores (a help-desk token restoring elsewhere reads it too).
  const targets = await call('GET', '/restore-targets');
  assert.deepEqual(targets.json, { items: [join(data, 'restores')] }, targets.text);
  assert.deepEqual((await call('GET', '/restore-targets', { token: otherToken })).json, targets.json);
  const to = join(targets.json.items[0] as string, 'guest1');
  const started = await call('POST', `${base()}/restore`, { body: { to } });
  assert.equal(started.status, 202, started.text);
  const task = (await call('GET', `/tasks/${started.json.id}?wait=true&timeout=60`)).json;
  assert.equal(task.status, 'succeeded', JSON.stringify(task));
  const restored = join(to, src);
  assert.equal(await readFile(join(restored, 'hello.txt'), 'utf8'), HELLO);
  assert.ok((await readFile(join(restored, 'sub', 'data.bin'))).equals(DATA));
  assert.equal(await readlink(join(restored, 'sub', 'link')), '../hello.txt');
  if (asRoot) assert.deepEqual([(await lstat(join(restored, 'owned.txt'))).uid, (await lstat(join(restored, 'owned.txt'))).gid], [1, 1]);

  const proof = await call('POST', `${base()}/test-restore`, { body: {} });
  assert.equal(proof.status, 202, proof.text);
  const proved = (await call('GET', `/tasks/${proof.json.id}?wait=true&timeout=60`)).json;
  assert.equal(proved.status, 'succeeded', JSON.stringify(proved));
  assert.match(JSON.stringify(proved), /"files":3\b/, 'the three files were read back');

  // Again into the same folder, now full: refused at once (409), not a task that fails.
  const again = await call('POST', `${base()}/restore`, { body: { to } });
  assert.equal(again.status, 409, again.text);
  assert.match(again.text, /is not empty: a file snapshot restores into an empty or new folder/);

  for (const [what, path, body] of [
    ['a clone', `${base()}/restore`, { to: join(data, 'restores', 'clone'), asVm: 'clone' }],
    ['a disk format', `${base()}/restore`, { to: join(data, 'restores', 'q'), format: 'qcow2' }],
    ['instant recovery', `${base()}/instant-recovery`, {}],
  ] as const) {
    const refused = await call('POST', path, { body });
    assert.equal(refused.status, 400, `${what}: ${refused.text}`);
    assert.match(refused.text, /holds files, not disks/, what);
  }
});
