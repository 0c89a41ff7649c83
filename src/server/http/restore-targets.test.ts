/**
 * Restore targets confined to the allowed folders, on a real filesystem with real symlinks:
 * `..`, a link inside an allowed folder pointing out, and a link to an allowed folder.
 */
import assert from 'node:assert/strict';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { makeTempDir } from '../../testing/index.js';
import { ApiError } from './api-error.js';
import { confineRestoreTarget } from './restore-targets.js';

const dir = await makeTempDir('coffer-restore-targets');
after(() => dir.remove());
const allowed = join(dir.path, 'restores');
const outside = join(dir.path, 'elsewhere');
await mkdir(join(allowed, 'vm1'), { recursive: true });
await mkdir(outside);
await symlink(outside, join(allowed, 'escape'));
await symlink(join(allowed, 'vm1'), join(dir.path, 'shortcut'));

test('paths inside an allowed folder are accepted, symlinks resolved', async () => {
  const cases: [string, string][] = [
    [join(allowed, 'vm1', 'disk.qcow2'), join(allowed, 'vm1', 'disk.qcow2')],
    [join(allowed, 'new', 'deeper', 'disk.raw'), join(allowed, 'new', 'deeper', 'disk.raw')],
    [allowed, allowed],
    [join(dir.path, 'shortcut', 'disk.raw'), join(allowed, 'vm1', 'disk.raw')],
    [`${allowed}//vm1/./disk.raw`, join(allowed, 'vm1', 'disk.raw')],
  ];
  for (const [to, expected] of cases) assert.equal(await confineRestoreTarget(to, [outside + '-missing', allowed]), expected, to);
});

test('paths outside every allowed folder are refused with 403 E_RESTORE_TARGET_REFUSED', async () => {
  for (const to of [join(outside, 'disk.raw'), '/etc/passwd', join(allowed, 'escape', 'disk.raw'), `${allowed}-sibling/disk.raw`]) {
    await assert.rejects(confineRestoreTarget(to, [allowed]), (error: unknown) => error instanceof ApiError && error.code === 'E_RESTORE_TARGET_REFUSED' && error.status === 403 && /restore\.allowed-targets/.test(error.message), to);
  }
  await assert.rejects(confineRestoreTarget(join(allowed, 'disk.raw'), []), { code: 'E_RESTORE_TARGET_REFUSED' });
});

test('relative paths, ".." and "/" are refused as invalid (400)', async () => {
  for (const to of ['disk.raw', `${allowed}/../elsewhere/disk.raw`, `${allowed}/vm1/..`, '/', `${allowed}/a\0b`]) {
    await assert.rejects(confineRestoreTarget(to, [allowed, '/']), (error: unknown) => error instanceof ApiError && error.code === 'E_VALIDATION', JSON.stringify(to));
  }
});
