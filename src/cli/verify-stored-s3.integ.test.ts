/**
 * `coffer verify --stored` on an S3 repository (a real Ceph RADOS Gateway,
 * src/testing/ceph-s3.ts): the storage side, with the bucket's credentials and no passphrase,
 * finds the repository intact, then names a chunk overwritten with other bytes and a manifest
 * deleted behind the key holder's back.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as fs from 'node:fs/promises';
import { parseS3Location, S3Backend } from '../repo/index.js';
import { seededBytes, startCephS3, type CephS3 } from '../testing/index.js';
import { assertExit, coffer, cofferJson, makeWorkDir, removeDir, type BackupJson } from './cli-harness.js';

let s3: CephS3;
let work: string;
const MiB = 1 << 20;

before(async () => {
  [s3, work] = await Promise.all([startCephS3(), makeWorkDir('stored-s3')]);
});
after(async () => {
  await s3?.stop();
  if (work !== undefined) await removeDir(work);
});

test('verify --stored on S3: intact, then a replaced chunk and a deleted manifest are named', async () => {
  const bucket = await s3.createBucket('stored');
  const location = `s3:${s3.endpoint}/${bucket}/vms`;
  const keyHolder = { env: { ...s3.env, COFFER_PASSWORD: 'stored s3', XDG_CACHE_HOME: join(work, 'cache') }, timeoutMs: 120_000 };
  const storage = { env: { ...s3.env }, timeoutMs: 120_000 };
  // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
  const { storedDigestKey } = await cofferJson<{ storedDigestKey: string }>(['init', '--format', '1', '-r', location], keyHolder);
  const disk = join(work, 'disk.raw');
  await fs.writeFile(disk, seededBytes(11, 3 * MiB));
  const snapshot = await cofferJson<BackupJson>(['backup', '-r', location, '--vm', 'web', disk], keyHolder);

  const intact = await coffer(['verify', '--stored', '-r', location, '--trust', storedDigestKey, '--json'], storage);
  assertExit(intact, 0);
  const report = JSON.parse(intact.stdout.toString()) as { objectsIntact: number; notCovered: unknown[] };
  assert.ok(report.objectsIntact >= 12 + 1 + 1, `${report.objectsIntact} objects intact`);
  assert.deepEqual(report.notCovered, []);

  const bucketView = new S3Backend(parseS3Location(location), { credentials: s3.credentials });
  try {
    let chunk: string | undefined;
    for await (const entry of bucketView.list('chunks/')) chunk ??= entry.key;
    assert.ok(chunk !== undefined);
    const bytes = await bucketView.get(chunk);
    bytes.writeUInt8(bytes.readUInt8(100) ^ 0xff, 100);
    await bucketView.put(chunk, bytes);
    await bucketView.delete(`snapshots/${snapshot.id}`);
    const damaged = await coffer(['verify', '--stored', '-r', location, '--trust', storedDigestKey, '--json'], storage);
    assertExit(damaged, 13);
    const found = (JSON.parse(damaged.stdout.toString()) as { damaged: { key: string; problem: string }[] }).damaged;
    assert.deepEqual(found.map((d) => [d.key, d.problem]).sort(), [[chunk, 'corrupt'], [`snapshots/${snapshot.id}`, 'missing']].sort());
  } finally {
    bucketView.destroy();
  }
});
