import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { resolvePath } from '../../fs/index.js';
import { decodeName } from '../../names/index.js';
import { dir, file, MemoryFs } from './memory-fs.test-support.js';
import { zipTree } from './zip-tree.js';

const run = promisify(execFile);

test('a zip writes bytes that are not UTF-8 and backslashes as %XX and reports it; a file already named so keeps its content under a ~1 name', async (t) => {
  const work = await fsp.mkdtemp(path.join(os.tmpdir(), 'coffer-zip-bytes-'));
  t.after(() => fsp.rm(work, { recursive: true, force: true }));
  const raw = decodeName(Buffer.from('caf\xe9', 'latin1'));
  const fs = new MemoryFs(dir([
    { name: raw, node: file('raw e9\n') },
    { name: 'caf%E9', node: file('percent text\n') },
    { name: 'caf\\xe9', node: file('backslash text\n') },
    { name: '..\\up', node: file('not a way up\n') },
    { name: 'a/b', node: file('slash\n') },
    { name: 'a%2Fb', node: file('slash text\n') },
  ]));
  const zip = zipTree(fs, [await resolvePath(fs, '/')]);
  const chunks: Buffer[] = [];
  for await (const chunk of zip.stream) chunks.push(chunk as Buffer);
  const report = await zip.report;
  const archive = path.join(work, 'a.zip');
  await fsp.writeFile(archive, Buffer.concat(chunks));

  assert.deepEqual(report.problems, [], 'no entry skipped');
  assert.equal(report.files, 6);
  assert.deepEqual(report.renamed, [
    { path: `/${raw}`, as: 'caf%E9', reason: 'unsafe' },
    { path: '/caf%E9', as: 'caf%E9~1', reason: 'taken' },
    { path: '/caf\\xe9', as: 'caf%5Cxe9', reason: 'unsafe' },
    { path: '/..\\up', as: '..%5Cup', reason: 'unsafe' },
    { path: '/a/b', as: 'a%2Fb', reason: 'unsafe' },
    { path: '/a%2Fb', as: 'a%2Fb~1', reason: 'taken' },
  ]);
  const into = path.join(work, 'x');
  await run('unzip', ['-q', archive, '-d', into]);
  const contents: Record<string, string> = {};
  for (const name of await fsp.readdir(into)) contents[name] = await fsp.readFile(path.join(into, name), 'utf8');
  assert.deepEqual(contents, {
    'caf%E9': 'raw e9\n', 'caf%E9~1': 'percent text\n', 'caf%5Cxe9': 'backslash text\n', '..%5Cup': 'not a way up\n', 'a%2Fb': 'slash\n', 'a%2Fb~1': 'slash text\n',
  });
});
