/**
 * The conformance suite every {@link Backend} must pass (restic's backend/test habit): the
 * local directory now, S3 when it comes. Call it from the backend's own test file with a
 * factory that gives an empty backend.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import type { Backend } from './backend.js';
import { readRange } from './read-range.js';

async function collect(backend: Backend, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const entry of backend.list(prefix)) out.set(entry.key, entry.size);
  return out;
}

/** Registers the conformance tests for one backend implementation. */
export function runBackendConformance(name: string, makeBackend: () => Promise<Backend>): void {
  test(`${name}: put then get returns the same bytes; has and size agree`, async () => {
    const backend = await makeBackend();
    const data = randomBytes(100_000);
    await backend.put('chunks/ab/abcd', data);
    assert.deepEqual(await backend.get('chunks/ab/abcd'), data);
    assert.equal(await backend.has('chunks/ab/abcd'), true);
    assert.equal(await backend.has('chunks/ab/abce'), false);
    assert.deepEqual([...(await collect(backend, 'chunks/'))], [['chunks/ab/abcd', 100_000]]);
  });

  test(`${name}: a ranged read returns exactly the bytes asked for; past the end is E_CORRUPT_OBJECT, absent E_MISSING_OBJECT`, async () => {
    const backend = await makeBackend();
    const data = randomBytes(300_000);
    await backend.put('packs/ab/abcd', data);
    for (const [offset, length] of [[0, 1], [8, 65_536], [123_457, 100_001], [299_999, 1], [0, 300_000]] as const) {
      assert.deepEqual(await readRange(backend, 'packs/ab/abcd', offset, length), data.subarray(offset, offset + length), `${offset}+${length}`);
    }
    // Into a caller's (shared) buffer: the answer is a view of it, whatever the backend does.
    const into = new Uint8Array(new SharedArrayBuffer(200_000)).subarray(16);
    const view = await readRange(backend, 'packs/ab/abcd', 123_457, 100_001, into);
    assert.equal(view.buffer, into.buffer);
    assert.equal(view.byteOffset, 16);
    assert.deepEqual(view, data.subarray(123_457, 223_458));
    assert.deepEqual(Buffer.from(into.subarray(0, 100_001)), data.subarray(123_457, 223_458));
    await assert.rejects(readRange(backend, 'packs/ab/abcd', 0, 200_000, into), RangeError);
    await assert.rejects(readRange(backend, 'packs/ab/abcd', 299_990, 11), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
    await assert.rejects(readRange(backend, 'packs/ab/none', 0, 10), (e) => isCofferError(e, 'E_MISSING_OBJECT'));
  });

  test(`${name}: get of an absent key is E_MISSING_OBJECT`, async () => {
    const backend = await makeBackend();
    await assert.rejects(backend.get('snapshots/nothing'), (e) => isCofferError(e, 'E_MISSING_OBJECT'));
  });

  test(`${name}: put replaces atomically and is idempotent`, async () => {
    const backend = await makeBackend();
    await backend.put('config', Buffer.from('one'));
    await backend.put('config', Buffer.from('two'));
    await backend.put('config', Buffer.from('two'));
    assert.equal((await backend.get('config')).toString(), 'two');
  });

  test(`${name}: concurrent puts of the same key leave one whole object`, async () => {
    const backend = await makeBackend();
    const data = randomBytes(1 << 20);
    await Promise.all(Array.from({ length: 8 }, () => backend.put('chunks/00/same', data)));
    assert.deepEqual(await backend.get('chunks/00/same'), data);
    assert.equal((await collect(backend, 'chunks/')).size, 1);
  });

  test(`${name}: create writes only an absent key; of concurrent creates one wins and the others change nothing`, async () => {
    const backend = await makeBackend();
    const first = randomBytes(3000);
    assert.equal(await backend.create('config', first), true);
    assert.equal(await backend.create('config', first), true, 'the same bytes again: a retry of a create that landed');
    assert.equal(await backend.create('config', randomBytes(3000)), false);
    assert.deepEqual(await backend.get('config'), first);
    const rivals = Array.from({ length: 8 }, () => randomBytes(2000));
    const answers = await Promise.all(rivals.map((data) => backend.create('keys/race', data)));
    assert.equal(answers.filter(Boolean).length, 1, `exactly one create wins: ${answers.join(',')}`);
    assert.deepEqual(await backend.get('keys/race'), rivals[answers.indexOf(true)], 'what readers get is the winner\'s object');
    assert.deepEqual([...(await collect(backend, 'keys/'))], [['keys/race', 2000]]);
  });

  test(`${name}: sync resolves and keeps every object readable`, async () => {
    const backend = await makeBackend();
    await backend.put('chunks/aa/x', Buffer.from('x'));
    await backend.sync();
    assert.equal((await backend.get('chunks/aa/x')).toString(), 'x');
  });

  test(`${name}: delete is idempotent`, async () => {
    const backend = await makeBackend();
    await backend.put('snapshots/a', Buffer.from('x'));
    await backend.delete('snapshots/a');
    await backend.delete('snapshots/a');
    assert.equal(await backend.has('snapshots/a'), false);
  });

  test(`${name}: list filters by prefix, sees nested keys, and an empty prefix lists all`, async () => {
    const backend = await makeBackend();
    const keys = ['chunks/00/a', 'chunks/ff/b', 'indexes/00/c', 'snapshots/d', 'config'];
    await Promise.all(keys.map((key) => backend.put(key, Buffer.from(key))));
    assert.deepEqual([...(await collect(backend, 'chunks/')).keys()].sort(), ['chunks/00/a', 'chunks/ff/b']);
    assert.deepEqual([...(await collect(backend, 'chunks/ff/')).keys()], ['chunks/ff/b']);
    assert.deepEqual([...(await collect(backend, 'snap')).keys()], ['snapshots/d']);
    assert.deepEqual([...(await collect(backend, '')).keys()].sort(), [...keys].sort());
    assert.equal((await collect(backend, 'nothing/')).size, 0);
  });

  test(`${name}: keys that could escape the repository are refused`, async () => {
    const backend = await makeBackend();
    for (const key of ['../x', 'a/../../x', '/etc/passwd', 'a//b', 'A', '']) {
      await assert.rejects(backend.put(key, Buffer.from('x')), RangeError, key);
    }
  });
}
