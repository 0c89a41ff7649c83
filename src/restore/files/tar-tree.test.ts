import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { resolvePath } from '../../fs/index.js';
import { decodeName } from '../../names/index.js';
import { dir, file, MemoryFs, symlink } from './memory-fs.test-support.js';
import { tarTree } from './tar-tree.js';

const run = promisify(execFile);

const latin1 = (text: string): Buffer => Buffer.from(text, 'latin1');
/** A name as a reader decodes the bytes (names/byte-names.ts). */
const named = (bytes: Buffer): string => decodeName(bytes);

/**
 * A guest folder with names that are not UTF-8 (ext4/XFS keep bytes): a Latin-1 `caf\xe9`
 * beside a name holding the text `caf\xe9`, a 255-byte name, a hard link and a symlink whose
 * targets have such bytes, and a path past the 100 bytes of the ustar name field.
 */
const ACUTE = latin1('caf\xe9');
const LONGEST = Buffer.alloc(255, 0xe9);
const FOLDER = latin1('d\xe9j\xe0');
const DEEP = Buffer.concat([latin1('x'.repeat(90)), Buffer.from([0xb5])]);

function byteNamesFs(): MemoryFs {
  const shared = file('shared\n', { nlink: 2 });
  return new MemoryFs(
    dir([
      { name: named(ACUTE), node: file('raw e9\n') },
      { name: 'caf\\xe9', node: file('backslash text\n') },
      { name: named(LONGEST), node: file('255 bytes\n') },
      { name: named(latin1('first\xff')), node: shared },
      { name: named(FOLDER), node: dir([{ name: named(latin1('second\xfe')), node: shared }, { name: named(DEEP), node: file('deep\n') }]) },
      { name: 'lien', node: symlink(named(ACUTE)) },
      { name: named(latin1('lien\xe8')), node: symlink(named(Buffer.concat([FOLDER, Buffer.from('/'), DEEP]))) },
    ]),
  );
}

async function archive(fs: MemoryFs, work: string): Promise<{ file: string; report: Awaited<ReturnType<typeof tarTree>> }> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const report = await tarTree(fs, [await resolvePath(fs, '/')], out);
  const file = path.join(work, 'a.tar');
  await fsp.writeFile(file, Buffer.concat(chunks));
  return { file, report };
}

const at = (root: string, ...names: Buffer[]): Buffer => Buffer.concat([Buffer.from(root), ...names.flatMap((n) => [Buffer.from('/'), n])]);

test('a tar stream holds names that are not UTF-8 as their bytes: GNU tar extracts each one exactly, and nothing is renamed', async (t) => {
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'coffer-tar-bytes-'));
  t.after(() => fsp.rm(work, { recursive: true, force: true }));
  const { file, report } = await archive(byteNamesFs(), work);
  assert.deepEqual([report.renamed, report.skipped, report.problems], [[], [], []]);
  assert.deepEqual([report.files, report.directories, report.symlinks, report.hardLinks], [5, 1, 2, 1]);

  const { stdout } = await run('tar', ['--quoting-style=escape', '-tf', file], { env: { ...process.env, LC_ALL: 'C' } });
  assert.deepEqual(stdout.trim().split('\n').sort(), [
    'caf\\351', 'caf\\\\xe9', '\\351'.repeat(255), 'first\\377', 'd\\351j\\340/', 'd\\351j\\340/second\\376', `d\\351j\\340/${'x'.repeat(90)}\\265`, 'lien', 'lien\\350',
  ].sort());

  for (const locale of ['C', 'C.UTF-8']) {
    const to = path.join(work, locale);
    await fsp.mkdir(to);
    await run('tar', ['-xf', file, '-C', to], { env: { ...process.env, LC_ALL: locale } });
    const names = (await fsp.readdir(Buffer.from(to), { encoding: 'buffer' })).map((n) => n.toString('hex')).sort();
    assert.deepEqual(names, [ACUTE, Buffer.from('caf\\xe9'), LONGEST, latin1('first\xff'), FOLDER, Buffer.from('lien'), latin1('lien\xe8')].map((b) => b.toString('hex')).sort(), `names extracted in ${locale}`);
    assert.equal(await fsp.readFile(at(to, ACUTE), 'utf8'), 'raw e9\n', 'the raw name and its backslash twin are two files');
    assert.equal(await fsp.readFile(at(to, Buffer.from('caf\\xe9')), 'utf8'), 'backslash text\n');
    assert.equal(await fsp.readFile(at(to, LONGEST), 'utf8'), '255 bytes\n');
    assert.equal(await fsp.readFile(at(to, FOLDER, DEEP), 'utf8'), 'deep\n');
    const first = await fsp.stat(at(to, latin1('first\xff')));
    const second = await fsp.stat(at(to, FOLDER, latin1('second\xfe')));
    assert.equal(second.ino, first.ino, 'the second name is a hard link to the first');
    assert.deepEqual(await fsp.readlink(at(to, Buffer.from('lien')), { encoding: 'buffer' }), ACUTE, 'the link points at the raw name, not its twin');
    assert.deepEqual(await fsp.readlink(at(to, latin1('lien\xe8')), { encoding: 'buffer' }), Buffer.concat([FOLDER, Buffer.from('/'), DEEP]));
  }
});
