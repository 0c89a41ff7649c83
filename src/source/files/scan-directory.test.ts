import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { encodeName } from '../../names/index.js';
import { syscalls } from '../../native/index.js';
import { readFileMetadataSync, type FileMetadata } from './file-metadata.js';
import { listDirectory, scanDirectory } from './scan-directory.js';

const dir = mkdtempSync(join(tmpdir(), 'coffer-scan-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const isRoot = process.getuid?.() === 0;
const safe = (name: string) => name !== 'refused';

/** What two reads of one unchanged path agree on: not the attributes (not scanned), nor a symlink's atime (reading its target moves it). */
function comparable(m: FileMetadata): Partial<FileMetadata> {
  const { xattrs: _xattrs, atime, ...rest } = m;
  return m.type === 'symlink' ? rest : { ...rest, atime };
}

test('a scanned directory lists every name with the metadata lstat reads, whatever the type', async () => {
  const at = join(dir, 'kinds');
  mkdirSync(at);
  writeFileSync(join(at, 'file'), 'twelve bytes');
  mkdirSync(join(at, 'sub'));
  symlinkSync('../somewhere/else', join(at, 'link'));
  writeFileSync(join(at, 'café ünïcødé'), '');
  execFileSync('mkfifo', [join(at, 'fifo')]);
  if (isRoot) syscalls.mknod(join(at, 'tty'), 0o20644, 4, 1024 + 300); // a minor past 255: both halves of dev_t's minor
  // Times before 1970 and with nanoseconds: the seconds are negative, the nanoseconds not.
  syscalls.setTimes(join(at, 'file'), -1_234_567_890_123n, 1_700_000_000_999_999_999n);
  syscalls.setTimes(join(at, 'sub'), 5n, 1_700_000_000_000_000_005n); // nanoseconds with leading zeros

  const refused: string[] = [];
  const scanned = await scanDirectory(at, safe, (name) => refused.push(name));
  assert.deepEqual(refused, []);
  const names = scanned.map((s) => s.name).sort();
  assert.deepEqual(names, ['café ünïcødé', 'fifo', 'file', 'link', 'sub', ...(isRoot ? ['tty'] : [])].sort());
  for (const entry of scanned) {
    assert.equal(entry.error, undefined, entry.name);
    assert.deepEqual(comparable(entry.metadata as FileMetadata), comparable(readFileMetadataSync(join(at, entry.name), { xattrs: false })), entry.name);
  }
  const file = scanned.find((s) => s.name === 'file')?.metadata as FileMetadata;
  assert.equal(file.atime, '-1234567890123');
  assert.equal(file.mtime, '1700000000999999999');
  const sub = scanned.find((s) => s.name === 'sub')?.metadata as FileMetadata;
  assert.deepEqual([sub.atime, sub.mtime], ['5', '1700000000000000005']);
  assert.equal(scanned.find((s) => s.name === 'link')?.metadata?.target, '../somewhere/else');
  if (isRoot) assert.deepEqual(scanned.find((s) => s.name === 'tty')?.metadata?.rdev, { major: 4, minor: 1324 });
});

test('names that are not UTF-8 are decoded losslessly (raw bytes as lone surrogates); those the caller refuses are reported and left out', async () => {
  const at = join(dir, 'names');
  mkdirSync(at);
  writeFileSync(join(at, 'refused'), '');
  writeFileSync(join(at, 'kept \uFFFD real replacement character'), '');
  // A name with a byte that is not UTF-8 (0xff), made by the shell: Node's fs would decode it.
  execFileSync('sh', ['-c', 'touch "$(printf "$1/bad\\377name")"; ln -s "$(printf "caf\\351")" "$1/link"', 'sh', at]);
  const refused: string[] = [];
  const scanned = await scanDirectory(at, safe, (name, why) => refused.push(`${name}: ${why}`));
  assert.deepEqual(scanned.map((s) => s.name).sort(), ['bad\udcffname', 'kept \uFFFD real replacement character', 'link']);
  assert.deepEqual(encodeName(scanned.find((s) => s.name === 'bad\udcffname')?.name as string), Buffer.from('bad\xffname', 'latin1'));
  assert.equal(scanned.find((s) => s.name === 'link')?.metadata?.target, 'caf\udce9', 'a target is bytes too');
  assert.equal(scanned.find((s) => s.name === 'bad\udcffname')?.metadata?.type, 'file');
  assert.deepEqual(refused, ['refused: name cannot be stored: not backed up']);
});

test('a directory that cannot be scanned rejects with the errno name; a symlink to one is not followed', async () => {
  await assert.rejects(scanDirectory(join(dir, 'missing'), safe, () => {}), (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.message.includes('missing'));
  writeFileSync(join(dir, 'plain'), '');
  await assert.rejects(scanDirectory(join(dir, 'plain'), safe, () => {}), (e: NodeJS.ErrnoException) => e.code === 'ENOTDIR');
  mkdirSync(join(dir, 'target'));
  symlinkSync('target', join(dir, 'pointer'));
  await assert.rejects(scanDirectory(join(dir, 'pointer'), safe, () => {}), (e: NodeJS.ErrnoException) => e.code === 'ELOOP' || e.code === 'ENOTDIR');
  assert.deepEqual(await scanDirectory(join(dir, 'target'), safe, () => {}), []);
});

test('a large directory is scanned whole, in one call', async () => {
  const at = join(dir, 'large');
  mkdirSync(at);
  for (let i = 0; i < 3000; i++) writeFileSync(join(at, `f${i}`), String(i));
  const scanned = await scanDirectory(at, safe, () => {});
  assert.equal(scanned.length, 3000);
  assert.ok(scanned.every((s) => s.metadata?.type === 'file' && s.metadata.size === s.name.length - 1));
});

test('listing a directory leaves its access time as it was, and its digest leaves access times out', async (t) => {
  const at = join(dir, 'untouched');
  mkdirSync(at);
  writeFileSync(join(at, 'file'), 'x');
  // An access time before the modification time: under relatime any plain read of the directory moves it.
  syscalls.setTimes(at, 1_000_000_000_000_000_000n, 1_700_000_000_000_000_000n);
  const first = await listDirectory(at);
  assert.equal(statSync(at, { bigint: true }).atimeNs, 1_000_000_000_000_000_000n, 'O_NOATIME: the listing left no trace');
  readdirSync(at);
  if (statSync(at, { bigint: true }).atimeNs === 1_000_000_000_000_000_000n) t.diagnostic('this filesystem does not move access times on reads (noatime): the first check proved nothing');

  const seed = Buffer.from('seed');
  syscalls.setTimes(join(at, 'file'), 5n, statSync(join(at, 'file'), { bigint: true }).mtimeNs); // moves the ctime too
  const timed = await listDirectory(at);
  assert.notEqual(timed.digest(seed), first.digest(seed), 'the ctime moved: another digest');
  const fileAtime = statSync(join(at, 'file'), { bigint: true }).atimeNs;
  readFileSync(join(at, 'file'));
  const read = await listDirectory(at);
  if (statSync(join(at, 'file'), { bigint: true }).atimeNs === fileAtime) t.diagnostic('reading did not move the file\'s access time here');
  assert.equal(read.digest(seed), timed.digest(seed), 'a read moved the access time alone: the same digest');
});
