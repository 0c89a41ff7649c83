import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openStateDatabase } from '../state/index.js';
import { ConfigInvalidError, ConfigStore, FIRST_START_CONFIG, REDACTED } from './index.js';

const dir = await mkdtemp(join(tmpdir(), 'coffer-config-'));
after(() => rm(dir, { recursive: true, force: true }));

const WITH_SECRET = `${FIRST_START_CONFIG}
notifications:
  targets:
    chat:
      type: webhook
      url: https://hooks.example.com/coffer
      headers:
        X-Api-Token: hunter2   # the receiver's key
`;

test('the config store writes the first-start file, versions every change, keeps secrets out of its answers', async () => {
  const state = await openStateDatabase({ file: join(dir, 'state.db') });
  const file = join(dir, 'coffer.yaml');
  try {
    const { store, created } = await ConfigStore.open(state.db, file);
    assert.ok(created);
    assert.equal(await readFile(file, 'utf8'), FIRST_START_CONFIG);
    assert.equal(store.version, 1);

    assert.deepEqual(await store.update(WITH_SECRET, { author: 'user:alice', comment: 'mail' }), { version: 2, changed: true });
    const shown = store.current();
    const header = (config: typeof shown.config) => (config.notifications as { targets: { chat: { headers: Record<string, string> } } }).targets.chat.headers['X-Api-Token'];
    assert.ok(!shown.text.includes('hunter2') && shown.text.includes(REDACTED) && shown.text.includes("# the receiver's key"), shown.text);
    assert.equal(header(shown.config), REDACTED);
    assert.equal(header(store.config), 'hunter2', 'the server itself keeps the secret');
    assert.ok(!(await store.versionText(2))?.text.includes('hunter2'));

    // The redacted text sent back with another change keeps the stored secret.
    const edited = shown.text.replace('session-hours: 12', 'session-hours: 6');
    assert.deepEqual(await store.update(edited, { author: 'user:alice', comment: 'shorter sessions' }), { version: 3, changed: true });
    assert.match(await readFile(file, 'utf8'), /X-Api-Token: hunter2/);
    assert.equal(store.config.security?.['session-hours'], 6);

    assert.deepEqual(await store.update(edited, { author: 'user:bob', comment: 'same' }), { version: 3, changed: false });
    assert.deepEqual(await store.update(edited, { author: 'user:bob', comment: 'stale', expectedVersion: 2 }), { conflict: 3 });
    await assert.rejects(store.update(edited.replace('per-host: 1', 'per-host: 0'), { author: 'user:bob', comment: 'bad' }), (e) => e instanceof ConfigInvalidError && e.problems[0]?.key === 'limits.per-host');
    assert.match(await readFile(file, 'utf8'), /per-host: 1/, 'an invalid change writes nothing');

    const versions = await store.versions({ offset: 0, limit: 10 });
    assert.equal(versions.total, 3);
    assert.deepEqual(versions.items.map((v) => [v.version, v.author, v.comment]), [[3, 'user:alice', 'shorter sessions'], [2, 'user:alice', 'mail'], [1, 'system', 'first start']]);

    // Edited by hand while the server was down: recorded as a version at the next start.
    await writeFile(file, (await readFile(file, 'utf8')).replace('session-hours: 6', 'session-hours: 7'));
    const reopened = await ConfigStore.open(state.db, file);
    assert.equal(reopened.store.version, 4);
    assert.equal((await reopened.store.versions({ offset: 0, limit: 1 })).items[0]?.comment, 'the file was changed outside the server');
  } finally {
    await state.close();
  }
});
