import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { decodeConfig, encodeConfig, type RepositoryConfig } from './config.js';
import { decodeIndexPage, encodeIndexPage, isZeroEntry, ZERO_ENTRY } from './index-page.js';
import { decodeManifest, encodeManifest, pageCount, type SnapshotManifest } from './manifest.js';

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

test('config round trip', () => {
  assert.deepEqual(decodeConfig(encodeConfig(config), 'r'), config);
});

test('damaged configs are E_REPO_DAMAGED, newer ones E_REPO_VERSION', () => {
  const damaged: unknown[] = ['garbage', { ...config, format: 'restic' }, { ...config, blockSize: 1000 }, { ...config, objectId: 'sha256' }, { ...config, id: 'short' }];
  for (const value of damaged) {
    const bytes = Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
    assert.throws(() => decodeConfig(bytes, 'r'), (e) => isCofferError(e, 'E_REPO_DAMAGED'));
  }
  assert.throws(() => decodeConfig(encodeConfig({ ...config, version: 3 as 2 }), 'r'), (e) => isCofferError(e, 'E_REPO_VERSION'));
  assert.equal(decodeConfig(encodeConfig({ ...config, version: 2 }), 'r').version, 2);
  assert.deepEqual(decodeConfig(encodeConfig({ ...config, version: 2, objectLock: { mode: 'governance', days: 1 } }), 'r').objectLock, { mode: 'governance', days: 1 });
});

test('index page round trip keeps entries and zero markers', () => {
  const entries = [randomBytes(32), ZERO_ENTRY, randomBytes(32)];
  const decoded = decodeIndexPage(encodeIndexPage(entries), 'p');
  assert.deepEqual(decoded, entries);
  assert.equal(isZeroEntry(decoded[1] as Buffer), true);
  assert.equal(isZeroEntry(decoded[0] as Buffer), false);
});

test('malformed index pages are refused', () => {
  const page = encodeIndexPage([randomBytes(32), randomBytes(32)]);
  for (const bad of [page.subarray(0, 20), Buffer.concat([page, Buffer.alloc(1)]), Buffer.alloc(page.length)]) {
    assert.throws(() => decodeIndexPage(bad, 'p'), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
  }
});

const manifest: SnapshotManifest = {
  version: 1,
  vm: 'web01',
  time: '2026-11-25T01:00:00.000Z',
  hostname: 'hv1',
  tags: ['nightly'],
  parent: null,
  definition: null,
  disks: [{ name: 'disk0', size: 5 * 2 ** 30 + 1, sourceFormat: 'raw', source: '/x', blockSize: 262144, entriesPerPage: 4096, pages: [] }],
  stats: { bytesLogical: 1, bytesRead: 1, bytesNew: 1, bytesStored: 1, durationMs: 1 },
};
manifest.disks[0]!.pages = Array.from({ length: pageCount(5 * 2 ** 30 + 1, 262144, 4096) }, () => randomBytes(32).toString('hex'));

test('manifest round trip, and the page count follows the disk size', () => {
  assert.equal(manifest.disks[0]!.pages.length, 6); // 20481 blocks over 4096-entry pages
  assert.deepEqual(decodeManifest(encodeManifest(manifest), 'm'), manifest);
});

test('the consistency record is optional and round-trips', () => {
  const consistent: SnapshotManifest = { ...manifest, consistency: { level: 'application', frozenFilesystems: 2, frozenMs: 35 } };
  assert.deepEqual(decodeManifest(encodeManifest(consistent), 'm'), consistent);
  const crash: SnapshotManifest = { ...manifest, consistency: { level: 'crash', reason: 'no guest agent channel' } };
  assert.deepEqual(decodeManifest(encodeManifest(crash), 'm').consistency, crash.consistency);
  assert.equal(decodeManifest(encodeManifest(manifest), 'm').consistency, undefined);
});

test('malformed manifests are refused', () => {
  const variants: unknown[] = [
    { ...manifest, vm: '' },
    { ...manifest, vm: 'a\nb' },
    { ...manifest, time: 'yesterday' },
    { ...manifest, parent: 'abc' },
    { ...manifest, disks: [] },
    { ...manifest, disks: [{ ...manifest.disks[0], pages: [] }] },
    { ...manifest, disks: [{ ...manifest.disks[0], size: -1 }] },
    { ...manifest, stats: { ...manifest.stats, bytesNew: -1 } },
    { ...manifest, consistency: { level: 'filesystem' } },
    { ...manifest, consistency: { level: 'application', frozenFilesystems: -1 } },
    { ...manifest, consistency: { level: 'crash', reason: 5 } },
    { ...manifest, consistency: null },
  ];
  for (const value of variants) {
    assert.throws(() => decodeManifest(Buffer.from(JSON.stringify(value)), 'm'), (e) => isCofferError(e, 'E_CORRUPT_OBJECT'));
  }
});
