/**
 * ext4 casefolded directories (`mke2fs -O casefold`, `chattr +F`; here the flag set with
 * debugfs, as this machine's kernel mounts no casefold filesystem): a name is found whatever
 * its case and normalization inside such a directory, as Linux finds it, and only there; the
 * exact name wins; a name that is not UTF-8 matches only exactly. Listings keep the names as
 * stored. (debugfs does not fold, so the kernel's documented behaviour is the reference.)
 */
import assert from 'node:assert/strict';
import * as fsp from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { RawImage } from '../../disk/index.js';
import { requireTools, runTool, tempFolders } from '../../testing/index.js';
import { openFilesystem, resolvePath, type Filesystem } from '../index.js';
import { foldedName } from './casefold.js';

const tempFolder = tempFolders();
let image: string;
let device: RawImage;
let fs: Filesystem;

before(async () => {
  await requireTools('mke2fs', 'debugfs');
  const work = await tempFolder('coffer-ext-casefold');
  const tree = path.join(work, 'tree');
  await fsp.mkdir(path.join(tree, 'Docs'), { recursive: true });
  await fsp.writeFile(path.join(tree, 'Docs', 'ReadMe.TXT'), 'readme\n');
  await fsp.writeFile(path.join(tree, 'Docs', 'Résumé.txt'), 'nfc resume\n'); // typed in NFC
  await fsp.writeFile(path.join(tree, 'Docs', 'straße'), 'street\n');
  await fsp.writeFile(Buffer.from(`${tree}/Docs/caf\xe9`, 'latin1'), 'latin1\n');
  await fsp.mkdir(path.join(tree, 'Plain'));
  await fsp.writeFile(path.join(tree, 'Plain', 'Case.txt'), 'case sensitive here\n');
  image = path.join(work, 'casefold.img');
  await fsp.writeFile(image, '');
  await fsp.truncate(image, 16 * 1024 * 1024);
  await runTool('mke2fs', ['-q', '-F', '-t', 'ext4', '-O', 'casefold', '-d', tree, image]);
  // +F on /Docs: the extents flag it has (0x80000) and casefold (0x40000000).
  await runTool('debugfs', ['-w', '-R', 'set_inode_field /Docs flags 0x40080000', image]);
  device = await RawImage.open(image);
  const opened = await openFilesystem(device);
  assert.ok(opened !== undefined);
  fs = opened;
});
after(() => device?.close());

async function read(p: string): Promise<string | undefined> {
  try {
    const { node } = await resolvePath(fs, p);
    return Buffer.from(await fs.read(node, 0, node.size)).toString();
  } catch {
    return undefined;
  }
}

test('in a casefolded directory a name is found whatever its case and normalization', async () => {
  assert.equal(await read('/Docs/ReadMe.TXT'), 'readme\n', 'as stored');
  assert.equal(await read('/Docs/readme.txt'), 'readme\n');
  assert.equal(await read('/Docs/README.txt'), 'readme\n');
  assert.equal(await read('/Docs/RÉSUMÉ.TXT'.normalize('NFD')), 'nfc resume\n', 'another case and normalization');
  assert.equal(await read('/Docs/STRASSE'), 'street\n', 'ß folds to ss');
  assert.equal(await read('/Docs/nothing.txt'), undefined);
});

test('only there: the root and a plain directory match exactly, and a name that is not UTF-8 matches only its bytes', async () => {
  assert.equal(await read('/docs/ReadMe.TXT'), undefined, 'the root is not casefolded');
  assert.equal(await read('/Plain/case.txt'), undefined);
  assert.equal(await read('/Plain/Case.txt'), 'case sensitive here\n');
  assert.equal(await read('/Docs/caf\\xe9'), 'latin1\n');
  assert.equal(await read('/Docs/CAF\\xe9'), undefined);
  assert.equal(foldedName('caf\udce9'), undefined);
});

test('a listing keeps every name as stored', async () => {
  const { node } = await resolvePath(fs, '/Docs');
  const names = (await fs.readdir(node)).map((e) => e.name).filter((n) => n !== '.' && n !== '..').sort();
  assert.deepEqual(names, ['ReadMe.TXT', 'Résumé.txt', 'caf\udce9', 'straße']);
});
