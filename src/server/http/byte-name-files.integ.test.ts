/**
 * File browsing through a real `coffer server` process on an ext4 whose names are bytes that
 * are not UTF-8 (testing's byte-names image, made by mke2fs -d from a folder written with
 * Buffer paths: a Latin-1 `caf\xe9`, a folder `d\xe9j\xe0`, a link to `caf\xe9`, a name that is
 * the text `caf\xe9`, a control character). Every name, path and target answered is printable
 * text (`\xNN`, `\\`) with its bytes in hex beside, and that text given back as `path=` lists
 * the folder, downloads the file (its bytes compared), and archives the folder as tar (read by
 * GNU tar into names of the same bytes); the search answers such paths so too, and the audit
 * log records them printable.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { BYTE_NAMES, buildByteNamesExtImage, requireTools } from '../../testing/index.js';
import { firstAdminToken, runCoffer, startServer, type Download, type Response, type ServerProcess } from './server-harness.js';

const run = promisify(execFile);
const dir = await mkdtemp(join(tmpdir(), 'coffer-byte-names-'));
const data = join(dir, 'data');
const repo = join(dir, 'repo');
const passFile = join(dir, 'repo.pass');
let server: ServerProcess;
let token = '';
let snapshot = '';
let files = '';
let volume = '';

/** A name's bytes as the API shows them: `\xNN` for a byte that is not UTF-8 or a control character, `\\` for a backslash. */
const shown = (bytes: Buffer): string => bytes.toString('latin1').replace(/[\\\x00-\x1f\x7f-\xff]/g, (c) => (c === '\\' ? '\\\\' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
const hex = (bytes: Buffer): string => bytes.toString('hex');

before(async () => {
  await requireTools('mke2fs', 'tar');
  const image = await buildByteNamesExtImage();
  await writeFile(passFile, 'byte names passphrase\n');
  assert.equal((await runCoffer(['init', '-r', repo, '--password-file', passFile])).code, 0);
  const backup = await runCoffer(['backup', '-r', repo, '--password-file', passFile, '--vm', 'latin', '--json', image], 120_000);
  assert.equal(backup.code, 0, backup.stderr);
  snapshot = (JSON.parse(backup.stdout) as { id: string }).id;
  await mkdir(data, { recursive: true });
  await writeFile(join(data, 'coffer.yaml'), `repositories:\n  - name: main\n    url: ${repo}\n    passphrase-file: ${passFile}\nhosts:\n  - name: hv1\nvms:\n  - name: latin\n    host: hv1\n    source: { images: [${image}] }\n`);
  server = await startServer(['--data', data, '--listen', '127.0.0.1:0']);
  token = await firstAdminToken(server, 'byte names admin password');
  const volumes = (await call('GET', `/repositories/main/snapshots/${snapshot}/volumes`)).json.items as { id: string; filesystem: string | null }[];
  const ext4 = volumes.find((v) => v.filesystem === 'ext4');
  assert.ok(ext4 !== undefined, JSON.stringify(volumes));
  files = `/repositories/main/snapshots/${snapshot}/files`;
  volume = ext4.id;
});

after(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

function call(method: string, path: string): Promise<Response> {
  return server.request(method, `/api/v1${path}`, { token });
}

/** `…/files{suffix}?volume=V&path=P…`, the path in its printable form, encoded as a browser's URLSearchParams does. */
const at = (suffix: string, path: string, more: Record<string, string> = {}): string => `${files}${suffix}?${new URLSearchParams({ volume, path, ...more }).toString()}`;

/** A GET whose body is bytes. */
const download = (path: string): Promise<Download> => server.download(`/api/v1${path}`, { token });

type Entry = { name: string; nameBytes?: string; type: string; target?: string; targetBytes?: string };

test('a listing names each entry printably, with its bytes in hex when it shows an escape, and no lone surrogate', async () => {
  const root = await call('GET', at('', '/'));
  assert.equal(root.status, 200, root.text);
  assert.doesNotMatch(root.text, /\\ud[89a-f][0-9a-f]{2}|\uFFFD/i, 'no lone surrogate and no replacement character in the JSON');
  const byName = new Map((root.json.items as Entry[]).map((e) => [e.name, e]));
  for (const bytes of [BYTE_NAMES.latin1Acute, BYTE_NAMES.latin1Grave, BYTE_NAMES.ffFe, BYTE_NAMES.folder, BYTE_NAMES.backslashText, BYTE_NAMES.longest, BYTE_NAMES.control]) {
    const entry = byName.get(shown(bytes));
    assert.ok(entry !== undefined, `${shown(bytes)} in ${[...byName.keys()].join(', ')}`);
    assert.equal(entry.nameBytes, hex(bytes), shown(bytes));
  }
  assert.equal(byName.get('caf\\xe9')?.type, 'file');
  assert.equal(byName.get('caf\\\\xe9')?.type, 'file', 'the text caf\\xe9 lists apart from the byte E9');
  assert.equal(byName.get('esc\\x1b\\xe9')?.type, 'file');
  assert.equal(byName.get('café')?.type, 'file');
  assert.equal(byName.get('café')?.nameBytes, undefined, 'a UTF-8 name is itself');
  assert.equal(byName.get('d\\xe9j\\xe0')?.type, 'directory');
  const link = byName.get('lien');
  assert.deepEqual([link?.type, link?.target, link?.targetBytes, link?.nameBytes], ['symlink', 'caf\\xe9', hex(BYTE_NAMES.latin1Acute), undefined]);
});

test('the printable path given back enters the folder, and a file in it downloads with its bytes', async () => {
  const folder = `/${shown(BYTE_NAMES.folder)}`;
  const listing = await call('GET', at('', folder));
  assert.equal(listing.status, 200, listing.text);
  assert.equal(listing.json.path, '/d\\xe9j\\xe0');
  assert.equal(listing.json.pathBytes, hex(Buffer.concat([Buffer.from('/'), BYTE_NAMES.folder])));
  assert.equal(listing.json.type, 'directory');
  assert.deepEqual((listing.json.items as Entry[]).map((e) => [e.name, e.nameBytes]).sort(), [[shown(BYTE_NAMES.hardLink), hex(BYTE_NAMES.hardLink)], [shown(BYTE_NAMES.inFolder), hex(BYTE_NAMES.inFolder)]].sort());

  const file = await download(at('/content', `${folder}/${shown(BYTE_NAMES.inFolder)}`));
  assert.equal(file.status, 200, file.body.toString());
  assert.equal(file.body.toString(), 'inside\n');
  assert.equal(file.headers['content-disposition'], 'attachment; filename="x_B5"; filename*=UTF-8\'\'x%25B5', 'the byte B5 as %B5, as the zip names it');
  // The raw byte E9 and the text `caf\xe9` are two files, each found by its printable name; a ranged preview too.
  assert.equal((await download(at('/content', '/caf\\xe9'))).body.toString(), 'latin1 e-acute\n');
  assert.equal((await download(at('/content', '/caf\\xe8'))).body.toString(), 'latin1 e-grave\n');
  assert.equal((await download(at('/content', '/caf\\\\xe9'))).body.toString(), 'backslash text\n');
  assert.equal((await download(at('/content', '/esc\\x1b\\xe9', { inline: 'true' }))).body.toString(), 'escape\n');
  assert.equal((await download(at('/content', `/${shown(BYTE_NAMES.longest)}`))).body.toString(), '255 bytes\n');
  // Through the link, whose target has the byte E9.
  assert.equal((await download(at('/content', '/lien'))).body.toString(), 'latin1 e-acute\n');
  const missing = await call('GET', at('/content', '/caf\\xea'));
  assert.equal(missing.status, 404, missing.text);
});

test('the folder as tar: GNU tar writes its names with the same bytes', async () => {
  const archive = await download(at('/archive', `/${shown(BYTE_NAMES.folder)}`, { format: 'tar' }));
  assert.equal(archive.status, 200, archive.body.toString().slice(0, 300));
  assert.match(String(archive.headers['content-disposition']), /filename="d_E9j_E0\.tar"; filename\*=UTF-8''d%25E9j%25E0\.tar$/);
  const into = join(dir, 'untar');
  await mkdir(into);
  await writeFile(join(dir, 'folder.tar'), archive.body);
  await run('tar', ['--warning=no-unknown-keyword', '-xf', join(dir, 'folder.tar'), '-C', into]);
  const inside = (name: Buffer): Buffer => Buffer.concat([Buffer.from(`${into}/`), BYTE_NAMES.folder, Buffer.from('/'), name]);
  assert.equal(await readFile(inside(BYTE_NAMES.inFolder), 'utf8'), 'inside\n');
  assert.equal(await readFile(inside(BYTE_NAMES.hardLink), 'utf8'), 'latin1 e-grave\n');
  // The whole volume (its entries at the archive's top), for the link whose target has the byte E9.
  const whole = await download(at('/archive', '/', { format: 'tar' }));
  await writeFile(join(dir, 'root.tar'), whole.body);
  const rootInto = join(dir, 'untar-root');
  await mkdir(rootInto);
  await run('tar', ['--warning=no-unknown-keyword', '-xf', join(dir, 'root.tar'), '-C', rootInto]);
  assert.deepEqual(await readlink(Buffer.from(`${rootInto}/lien`), { encoding: 'buffer' }), BYTE_NAMES.latin1Acute);
  assert.equal(await readFile(Buffer.concat([Buffer.from(`${rootInto}/`), BYTE_NAMES.latin1Acute]), 'utf8'), 'latin1 e-acute\n');
});

test('the search answers printable paths with their bytes, and the audit log records the printable paths', async () => {
  const found = await call('GET', `/vms/latin/files/search?${new URLSearchParams({ name: '*\\xe9' }).toString()}`);
  assert.equal(found.status, 200, found.text);
  const paths = new Map((found.json.items as { path: string; pathBytes?: string }[]).map((i) => [i.path, i.pathBytes]));
  assert.equal(paths.get('/caf\\xe9'), hex(Buffer.concat([Buffer.from('/'), BYTE_NAMES.latin1Acute])));
  assert.equal(paths.get('/d\\xe9j\\xe0/dur\\xe9'), hex(Buffer.concat([Buffer.from('/'), BYTE_NAMES.folder, Buffer.from('/'), BYTE_NAMES.hardLink])));
  assert.ok(paths.has('/esc\\x1b\\xe9'), [...paths.keys()].join(', '));
  assert.ok(!paths.has('/caf\\\\xe9'), 'the text `xe9` is not the byte E9');

  const downloads = (await call('GET', '/audit?action=files.download')).json.items as { details: { path: string } }[];
  assert.ok(downloads.some((e) => e.details.path === '/d\\xe9j\\xe0/x\\xb5'), JSON.stringify(downloads.map((e) => e.details.path)));
  // Through the link: the file it resolved to.
  assert.ok(downloads.some((e) => e.details.path === '/caf\\xe9'));
  const archives = (await call('GET', '/audit?action=files.archive')).json.items as { details: { path: string } }[];
  assert.ok(archives.some((e) => e.details.path === '/d\\xe9j\\xe0'), JSON.stringify(archives.map((e) => e.details.path)));
});
