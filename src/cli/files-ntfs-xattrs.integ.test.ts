/**
 * A Windows guest's alternate data streams and DOS attributes through a file-level restore, as
 * ntfs-3g shows them on a mounted volume: the checked-in NTFS volume ntfs-3g wrote
 * (testing/ntfs-oracle.ts lists its entries) is backed up; `files get --to` sets each named
 * stream as `user.NAME` with the bytes `ntfscat -a 0x80 -n NAME` reads, and nothing of the
 * `system.` namespace; `--tar` holds the same and `system.ntfs_attrib_be`, the flags
 * `ntfsinfo` prints as ntfs-3g gives them, and GNU tar's `--xattrs -x` gives the streams back.
 * The stream one byte over 64 KiB and ntfs-3g's store of a Linux attribute are warning lines,
 * as is an attribute the host's filesystem has no room for. A damaged stream is a problem of
 * its file (exit 14), whose content is restored.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { damageNtfsStream, ntfs3gAttrib, ntfsCat, ntfsInfo, NTFS_STREAMS_PATHS, ntfsStreamsImage, requireTools } from '../testing/index.js';
import { assertExit, coffer, makeWorkDir, removeDir } from './cli-harness.js';

const run = promisify(execFile);
const env = { COFFER_PASSWORD: 'ntfs-xattrs' };
let work: string;
let repo: string;
let image: string;
/** Per path, the streams as ntfs-3g's mount lists them: `user.NAME` → hex of what ntfscat reads. */
const expected = new Map<string, Map<string, string>>();
/** The streams a restore leaves out, by path and name, and the start of why. */
const LEFT_OUT = [
  ['/sizes.txt', 'big', '(65537 bytes: larger than the 65536 bytes an extended attribute holds on Linux)'],
  ['/store.txt', 'ntfs-3g.trusted.coffer', "(41 bytes: ntfs-3g's store of the Linux attribute trusted.coffer"],
] as const;

before(async () => {
  await requireTools('ntfscat', 'ntfsinfo', 'getfattr', 'tar', 'python3');
  work = await makeWorkDir('files-ntfs-xattrs');
  repo = join(work, 'repo');
  image = await ntfsStreamsImage();
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'windows', image], { env }), 0);
  for (const path of NTFS_STREAMS_PATHS) {
    const streams = new Map<string, string>();
    for (const name of (await ntfsInfo(image, path)).streams.keys()) {
      if (!LEFT_OUT.some(([p, n]) => p === path && n === name)) streams.set(`user.${name}`, (await ntfsCat(image, path, name)).toString('hex'));
    }
    expected.set(path, streams);
  }
});
after(() => removeDir(work));

/** `getfattr -d -m - -e hex` of one path, as name → hex value. */
async function getfattr(file: string): Promise<Map<string, string>> {
  const { stdout } = await run('getfattr', ['-d', '-m', '-', '-e', 'hex', '--absolute-names', file]);
  return new Map([...stdout.matchAll(/^([^#=\n][^=\n]*)=0x([0-9a-f]*)$/gm)].map((m) => [m[1] as string, m[2] as string]));
}

/** A restore's lines: the streams it left out (path → line), the attributes the host refused (path → names). */
function skippedLines(skipped: { path: string; reason: string }[]): { streams: Map<string, string>; refused: Map<string, Set<string>> } {
  const streams = new Map<string, string>();
  const refused = new Map<string, Set<string>>();
  for (const { path, reason } of skipped) {
    const name = /^extended attribute (\S+) not (?:restored|archived): /.exec(reason)?.[1];
    if (name !== undefined) refused.set(path, (refused.get(path) ?? new Set()).add(name));
    else streams.set(path, reason);
  }
  return { streams, refused };
}

/** Each restored path holds the expected streams but those the host refused, and no other attribute. */
async function assertRestored(to: string, refused: Map<string, Set<string>>, how: string): Promise<void> {
  for (const path of NTFS_STREAMS_PATHS) {
    const want = new Map(expected.get(path));
    for (const name of refused.get(path) ?? []) {
      assert.ok(want.has(name), `${how} ${path}: ${name} refused, not in the guest`);
      assert.ok(want.get(name)!.length / 2 > 3000, `${how} ${path}: only a stream too big for the host's attribute block is refused (${name})`);
      want.delete(name);
    }
    assert.deepEqual(await getfattr(join(to, path)), want, `${how} ${path}: getfattr -d -m -`);
  }
}

test('files get --to sets each stream as user.NAME, no system.ntfs_* attribute, and names the streams it leaves out', async () => {
  const to = join(work, 'restored');
  const result = await coffer(['files', '-r', repo, 'windows:latest', 'get', 'disk:/', '--to', to, '--json'], { env });
  assertExit(result, 0);
  const report = JSON.parse(result.stdout.toString('utf8')) as { problems: unknown[]; skipped: { path: string; reason: string }[] };
  assert.deepEqual(report.problems, []);
  const { streams, refused } = skippedLines(report.skipped);
  assert.deepEqual([...streams.keys()].sort(), LEFT_OUT.map(([p]) => p).sort());
  for (const [path, name, why] of LEFT_OUT) assert.ok(streams.get(path)?.startsWith(`its alternate data stream ${JSON.stringify(name)} ${why}`), `${path}: ${streams.get(path)}`);
  await assertRestored(to, refused, 'get --to');
  assert.equal(await readFile(join(to, 'download.exe'), 'utf8'), (await ntfsCat(image, '/download.exe')).toString());
  assert.equal((await getfattr(join(to, 'download.exe'))).get('user.Zone.Identifier'), Buffer.from('[ZoneTransfer]\r\nZoneId=3\r\nHostUrl=https://example.com/download.exe\r\n').toString('hex'));
});

test('files get --tar holds every stream and system.ntfs_attrib_be as ntfs-3g gives them; tar --xattrs -x sets the streams', async () => {
  const tar = await coffer(['files', '-r', repo, 'windows:latest', 'get', 'disk:/', '--tar', '--json'], { env });
  assertExit(tar, 0);
  const file = join(work, 'windows.tar');
  await writeFile(file, tar.stdout);
  // The records as Python's tarfile reads them: path → SCHILY.xattr name → hex value.
  const dump = String.raw`import json, sys, tarfile
out = {}
with tarfile.open(sys.argv[1], encoding='utf-8', errors='surrogateescape') as t:
    for m in t:
        out['/' + m.name.rstrip('/')] = {k[13:]: v.encode('utf-8', 'surrogateescape').hex() for k, v in m.pax_headers.items() if k.startswith('SCHILY.xattr.')}
print(json.dumps(out))`;
  const records = JSON.parse((await run('python3', ['-c', dump, file])).stdout) as Record<string, Record<string, string>>;
  assert.deepEqual(Object.keys(records).sort(), [...NTFS_STREAMS_PATHS].sort());
  for (const path of NTFS_STREAMS_PATHS) {
    const attrib = Buffer.alloc(4);
    attrib.writeUInt32BE(ntfs3gAttrib(await ntfsInfo(image, path)));
    const want = new Map([...expected.get(path)!, ['system.ntfs_attrib_be', attrib.toString('hex')]]);
    assert.deepEqual(new Map(Object.entries(records[path]!)), want, `${path}: the tar's SCHILY.xattr records`);
  }
  const to = join(work, 'from-tar');
  await mkdir(to);
  // GNU tar sets user.* by default (the DOS attributes cost nothing on Linux) and warns of each the host refuses.
  const { stderr } = await run('tar', ['--xattrs', '-xf', file, '-C', to]);
  const refused = new Map<string, Set<string>>();
  for (const [, name, path] of stderr.matchAll(/Cannot set '([^']+)' extended attribute for file '([^']+)'/g)) refused.set(`/${path}`, (refused.get(`/${path}`) ?? new Set()).add(name!));
  await assertRestored(to, refused, 'tar --xattrs -x');
});

test('a damaged stream is a problem of its file (exit 14): the file is restored without its streams, with a line naming them', async () => {
  const damaged = join(work, 'damaged.img');
  // 60000 bytes claimed in the 5 clusters of a 20000-byte stream
  await damageNtfsStream(image, 'thumb', damaged, (view, at) => view.setBigUint64(at + 0x30, 60000n, true));
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'damaged', damaged], { env }), 0);
  const to = join(work, 'damaged-restored');
  const result = await coffer(['files', '-r', repo, 'damaged:latest', 'get', 'disk:/sizes.txt', '--to', to, '--json'], { env });
  assertExit(result, 14);
  const report = JSON.parse(result.stdout.toString('utf8')) as { problems: { path: string; code: string; message: string }[]; skipped: { path: string; reason: string }[] };
  assert.equal(report.problems.length, 1, JSON.stringify(report.problems));
  assert.equal(report.problems[0]?.path, '/sizes.txt');
  assert.equal(report.problems[0]?.code, 'E_FS_CORRUPT');
  assert.match(report.problems[0]?.message ?? '', /^\/sizes\.txt: its extended attributes do not read, restored without them: ntfs: MFT record \d+: stream thumb: 60000 bytes of data but 5 clusters mapped/);
  assert.deepEqual(await readFile(join(to, 'sizes.txt')), await ntfsCat(image, '/sizes.txt'));
  assert.deepEqual(await getfattr(join(to, 'sizes.txt')), new Map());
  assert.equal(report.skipped.length, 1, JSON.stringify(report.skipped));
  assert.match(report.skipped[0]?.reason ?? '', /^its 6 alternate data streams .*"big" \(65537 bytes: larger than .* not restored \(only the file's main content\)$/);
});
