import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { HostOwners, type RecordedOwner } from './host-owners.js';

test('owners by name: a name this host knows gets its id here, an unknown name or none the recorded id; numeric: the recorded ids', async () => {
  const etc = await mkdtemp(join(tmpdir(), 'coffer-host-owners-'));
  try {
    await writeFile(join(etc, 'passwd'), 'root:x:0:0::/root:/bin/sh\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nwww-data:x:99:99:second line of a name:/:/bin/false\n+nis\nbroken:x:notanid:1::/:/bin/sh\n');
    await writeFile(join(etc, 'group'), 'root:x:0:\nadm:x:4:alice\n');
    const byName = await HostOwners.byName(etc);
    const numeric = HostOwners.numeric();
    const table: [string, RecordedOwner, [number, number], [number, number]][] = [
      ['known names, other ids where backed up', { uid: 1033, gid: 1004, user: 'www-data', group: 'adm' }, [33, 4], [1033, 1004]],
      ['a name unknown here', { uid: 1500, gid: 1500, user: 'alice', group: 'alice' }, [1500, 1500], [1500, 1500]],
      ['no names (a guest filesystem)', { uid: 1000, gid: 100 }, [1000, 100], [1000, 100]],
      ['a line without a numeric id is no account', { uid: 7, gid: 7, user: 'broken' }, [7, 7], [7, 7]],
    ];
    for (const [what, owner, named, ids] of table) {
      assert.deepEqual(byName.idsOf(owner), { uid: named[0], gid: named[1] }, `${what}: by name`);
      assert.deepEqual(numeric.idsOf(owner), { uid: ids[0], gid: ids[1] }, `${what}: numeric`);
    }
    const none = await HostOwners.byName(join(etc, 'absent'));
    assert.deepEqual(none.idsOf({ uid: 5, gid: 6, user: 'root', group: 'root' }), { uid: 5, gid: 6 }, 'no account files: the recorded ids');
  } finally {
    await rm(etc, { recursive: true, force: true });
  }
});
