import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeFileTree, encodeFileTree, type TreeEntry } from './file-tree.js';

const entry = (name: string, extra: Partial<TreeEntry> = {}): TreeEntry => ({ name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: '1', atime: '1', ctime: '1', inode: 1, links: 1, size: 0, content: [], ...extra });

test('a name and a target that are not UTF-8 are held as \\udcNN escapes in UTF-8 JSON and read back as they were', () => {
  const entries = [entry('café'), entry('caf\udce9'), entry('lien', { type: 'symlink', target: '../caf\udce9', content: undefined }), entry('\udce9'.repeat(255))];
  const bytes = encodeFileTree(entries);
  assert.ok(bytes.toString('utf8').includes('"caf\\udce9"'), 'the escape, not a replacement character');
  assert.ok(Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes), 'valid UTF-8');
  assert.deepEqual(decodeFileTree(bytes, 't').entries.map((e) => [e.name, e.target]), entries.map((e) => [e.name, e.target]));
});

test('a tree with a string no bytes decode to, bytes out of order or a raw name over 255 bytes is refused as corrupt', () => {
  const corrupt = (entries: TreeEntry[]) => assert.throws(() => decodeFileTree(encodeFileTree(entries), 't'), { code: 'E_CORRUPT_OBJECT' }, JSON.stringify(entries.map((e) => e.name)));
  corrupt([entry('caf\udcc3\udca9')]); // the bytes of "café": a second spelling of that name
  corrupt([entry('a\ud800')]);
  corrupt([entry('a\udc41')]); // U+DC41 is no raw byte
  corrupt([entry('\udce9'.repeat(256))]);
  corrupt([entry('caf\udce9'), entry('café')]); // E9 after C3 A9: not sorted by bytes
  corrupt([entry('lien', { type: 'symlink', target: 'x\ud800', content: undefined })]);
  corrupt([entry('lien', { type: 'symlink', target: '\udce9'.repeat(4096), content: undefined })]);
  assert.equal(decodeFileTree(encodeFileTree([entry('lien', { type: 'symlink', target: '\udce9'.repeat(4095), content: undefined })]), 't').entries.length, 1);
});
