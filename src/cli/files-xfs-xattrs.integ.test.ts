/**
 * A RHEL-style guest on XFS keeps its SELinux labels, POSIX ACLs and user.* attributes through
 * a file-level restore: the XFS image with attributes in every form (testing/
 * xfs-xattrs-image.ts) is backed up, and `files get --to` sets on what it writes what Linux
 * reads on the guest (getfattr -d -m -): labels, trusted.* and user.* values, and ACLs (XFS's
 * trusted.SGI_ACL_* given back as system.posix_acl_*, so getfacl shows them). An attribute
 * the host's filesystem has no room for is a warning line, never a failed restore.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { buildXattrsXfsImage, expectedXattrs, requireTools, XFS_XATTRS_TREE } from '../testing/index.js';
import { assertExit, coffer, makeWorkDir, removeDir } from './cli-harness.js';

const run = promisify(execFile);
const env = { COFFER_PASSWORD: 'xfs-xattrs' };
let work: string;
let repo: string;

before(async () => {
  await requireTools('mkfs.xfs', 'xfs_db', 'xfs_repair', 'setfacl', 'getfacl', 'getfattr');
  work = await makeWorkDir('files-xfs-xattrs');
  repo = join(work, 'repo');
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'rhel', await buildXattrsXfsImage()], { env }), 0);
});
after(() => removeDir(work));

/** `getfattr -h -d -m - -e hex` of one path, as name → hex value. */
async function getfattr(file: string): Promise<Map<string, string>> {
  const { stdout } = await run('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', file]);
  return new Map([...stdout.matchAll(/^([^#=\n][^=\n]*)=0x([0-9a-f]*)$/gm)].map((m) => [m[1] as string, m[2] as string]));
}

test('files get --to sets the labels, ACLs and attributes of an XFS guest', async () => {
  const to = join(work, 'restored');
  const result = await coffer(['files', '-r', repo, 'rhel:latest', 'get', 'disk:/', '--to', to, '--json'], { env });
  assertExit(result, 0);
  const report = JSON.parse(result.stdout.toString('utf8')) as { problems: unknown[]; skipped: { path: string; reason: string }[] };
  assert.deepEqual(report.problems, []);
  // The host's ext4 holds one attribute block per file: what does not fit there is skipped, by name.
  const skipped = new Map<string, Set<string>>();
  for (const { path, reason } of report.skipped) {
    const name = /^extended attribute (\S+) not restored: /.exec(reason)?.[1];
    assert.ok(name !== undefined, `${path}: ${reason}`);
    skipped.set(path, (skipped.get(path) ?? new Set()).add(name));
  }
  for (const entry of XFS_XATTRS_TREE) {
    const expected = await expectedXattrs(entry);
    const restored = await getfattr(join(to, entry.path));
    for (const name of skipped.get(entry.path) ?? []) {
      assert.ok(expected.has(name), `${entry.path}: ${name} skipped, not in the guest`);
      assert.ok(!restored.has(name), `${entry.path}: ${name} both skipped and restored`);
      expected.delete(name);
    }
    assert.deepEqual(restored, expected, `${entry.path}: getfattr -d -m -`);
  }
  for (const path of skipped.keys()) assert.ok(['/node.txt', '/remote.txt'].includes(path), `${path}: only the files with more than a block of attributes lose some`);
  assert.ok(!skipped.get('/remote.txt')?.has('system.posix_acl_access'), 'the ACL of 304 entries (remote blocks on XFS) is restored');
  const acl = (await run('getfacl', ['-n', '-P', '--omit-header', join(to, 'shared')])).stdout;
  assert.match(acl, /^group:55:r--$/m);
  assert.match(acl, /^default:user:1234:r-x$/m);
  assert.match((await run('getfacl', ['-n', '--omit-header', join(to, 'shortform.txt')])).stdout, /^user:1234:rw-$/m);
});
