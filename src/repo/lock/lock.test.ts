/**
 * The pure parts of Object Lock: the policy in the config, its arithmetic, the cache of known
 * retentions (its file, and that it never lowers a date), and the refusals where no lock is
 * possible. What S3 does with them is pinned against Ceph RGW in src/cli/s3-lock.integ.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { LocalBackend } from '../backend/local-backend.js';
import { decodeConfig, encodeConfig, type RepositoryConfig } from '../format/config.js';
import { chunkKey, indexKey, packKey, segmentKey } from '../layout.js';
import { initRepository } from '../repository.js';
import { isLockedKey, LockedBackend } from './locked-backend.js';
import { snapshotLockUntil, writeRetention } from './lock-policy.js';
import { RetentionCache } from './retention-cache.js';

const config: RepositoryConfig = {
  format: 'coffer-repository',
  version: 1,
  id: '0123456789abcdef0123456789abcdef',
  created: '2026-11-25T00:00:00.000Z',
  encryption: 'aes-256-gcm',
  objectId: 'hmac-sha256',
  compression: { algorithm: 'zstd', level: 3 },
  blockSize: 262144,
  entriesPerPage: 4096,
};
const hex = (n: number) => n.toString(16).padStart(2, '0').repeat(32);

test('the lock policy is an optional config field: round trip, absent means no lock, nonsense is damage', () => {
  const locked = { ...config, objectLock: { mode: 'governance' as const, days: 0.5 } };
  assert.deepEqual(decodeConfig(encodeConfig(locked), 'r'), locked);
  const lockedV2 = { ...locked, version: 2 as const };
  assert.deepEqual(decodeConfig(encodeConfig(lockedV2), 'r'), lockedV2, 'format 2 takes a lock too');
  assert.equal('objectLock' in decodeConfig(encodeConfig(config), 'r'), false);
  for (const objectLock of [{ mode: 'strict', days: 1 }, { mode: 'compliance', days: 0 }, { mode: 'compliance', days: -1 }, { mode: 'compliance', days: '30' }, { mode: 'compliance', days: 40_000 }, 'compliance', null]) {
    assert.throws(() => decodeConfig(Buffer.from(JSON.stringify({ ...config, objectLock })), 'r'), (e) => isCofferError(e, 'E_REPO_DAMAGED'), JSON.stringify(objectLock));
  }
});

test('a snapshot is locked `days` from its manifest; objects are written and extended with half as much again', () => {
  const now = new Date('2026-11-26T00:00:00.000Z');
  const cases: [mode: 'compliance' | 'governance', days: number, snapshot: string, write: string, s3Mode: string][] = [
    ['compliance', 30, '2026-12-26T00:00:00.000Z', '2027-01-10T00:00:00.000Z', 'COMPLIANCE'],
    ['governance', 1, '2026-11-27T00:00:00.000Z', '2026-11-27T12:00:00.000Z', 'GOVERNANCE'],
    ['governance', 10 / 86_400, '2026-11-26T00:00:10.000Z', '2026-11-26T00:00:15.000Z', 'GOVERNANCE'],
  ];
  for (const [mode, days, snapshot, write, s3Mode] of cases) {
    assert.equal(snapshotLockUntil({ mode, days }, now).toISOString(), snapshot);
    const retention = writeRetention({ mode, days }, now);
    assert.deepEqual([retention.mode, retention.until.toISOString()], [s3Mode, write]);
  }
});

test('what is locked: what a restore needs; bookkeeping is not', () => {
  for (const key of ['config', 'keys/0011223344556677', chunkKey(hex(1)), indexKey(hex(2)), `snapshots/${hex(3)}`, packKey(hex(4)), segmentKey(hex(5))]) assert.equal(isLockedKey(key), true, key);
  for (const key of ['deletions', `leases/${hex(1)}`, `notes/${hex(1)}.${hex(2)}`, `protected/${hex(1)}.${hex(2)}`, `verifications/${hex(1)}`, `quarantine/${hex(1)}.5`, `removed-packs/000000000001.${hex(6).slice(0, 32)}`]) {
    assert.equal(isLockedKey(key), false, key);
  }
});

test('the retention cache never lowers a date, keeps only chunks, index pages and packs, and survives in its file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-retention-cache-'));
  try {
    const now = new Date('2026-11-26T00:00:00.000Z');
    const cache = new RetentionCache(config.id, dir);
    cache.learn(chunkKey(hex(1)), new Date('2026-12-10T00:00:00.000Z'));
    cache.learn(chunkKey(hex(1)), new Date('2026-12-01T00:00:00.000Z')); // earlier: ignored
    cache.learn(indexKey(hex(2)), new Date('2026-12-05T00:00:00.000Z'));
    cache.learn(packKey(hex(4)), new Date('2026-12-07T00:00:00.000Z'));
    cache.learn(segmentKey(hex(5)), new Date('2026-12-07T00:00:00.000Z')); // written locked, never extended: not cached
    cache.learn(chunkKey(hex(3)), new Date('2026-11-25T00:00:00.000Z')); // already past when saved
    cache.learn('config', new Date('2027-01-01T00:00:00.000Z')); // not cached: asked each time
    assert.equal(await cache.known(chunkKey(hex(1))), Date.parse('2026-12-10T00:00:00.000Z'));
    assert.equal(await cache.known('config'), undefined);
    await cache.save(now);

    const reloaded = new RetentionCache(config.id, dir);
    assert.equal(await reloaded.known(chunkKey(hex(1))), Date.parse('2026-12-10T00:00:00.000Z'));
    assert.equal(await reloaded.known(indexKey(hex(2))), Date.parse('2026-12-05T00:00:00.000Z'));
    assert.equal(await reloaded.known(chunkKey(hex(3))), undefined, 'a past date vouches for nothing');
    assert.equal(await reloaded.known(packKey(hex(4))), Date.parse('2026-12-07T00:00:00.000Z'), 'a pack (format 2)');
    assert.equal(await reloaded.known(segmentKey(hex(5))), undefined);

    assert.equal(await new RetentionCache('f'.repeat(32), dir).known(chunkKey(hex(1))), undefined, 'another repository');
    const file = join(dir, config.id, 'retention');
    const bytes = await readFile(file);
    bytes.writeUInt8((bytes.at(-1) ?? 0) ^ 1, bytes.length - 1);
    await writeFile(file, bytes);
    assert.equal(await new RetentionCache(config.id, dir).known(chunkKey(hex(1))), undefined, 'a damaged file is an empty cache');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a retention cache file of version 1 (chunks and index pages only) is still read', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-retention-cache-v1-'));
  try {
    const record = Buffer.alloc(41);
    record[0] = 1; // an index page
    record.write(hex(6), 1, 'hex');
    record.writeDoubleLE(Date.parse('2026-12-24T00:00:00.000Z'), 33);
    const header = { format: 'coffer-retention-cache', version: 1, repository: config.id, count: 1, sha256: createHash('sha256').update(record).digest('hex') };
    await mkdir(join(dir, config.id));
    await writeFile(join(dir, config.id, 'retention'), Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), record]));
    assert.equal(await new RetentionCache(config.id, dir).known(indexKey(hex(6))), Date.parse('2026-12-24T00:00:00.000Z'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('storage without Object Lock (a local directory) refuses a lock: at init, and when opening a locked config', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'coffer-lock-local-'));
  try {
    const backend = new LocalBackend(dir);
    await assert.rejects(
      initRepository(backend, { passphrase: null, objectLock: { mode: 'compliance', days: 30 } }),
      (e) => isCofferError(e, 'E_USAGE') && /cannot lock objects: --lock-days needs an S3 bucket with Object Lock/.test(e.message),
    );
    await assert.rejects(
      initRepository(backend, { passphrase: null, objectLock: { mode: 'compliance', days: 0 } }),
      (e) => isCofferError(e, 'E_USAGE') && /0 < days/.test(e.message),
    );
    assert.throws(() => new LockedBackend(backend, { mode: 'governance', days: 1 }, new RetentionCache(config.id, undefined)), (e) => isCofferError(e, 'E_USAGE') && /offers no Object Lock/.test(e.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
