/**
 * Immutable backups on S3 Object Lock, through the `coffer` binary against a real Ceph RADOS
 * Gateway (src/testing/ceph-s3.ts), with the gateway's own API (the AWS SDK) as the oracle:
 * - init records the lock only on a bucket with Object Lock (refused on a plain bucket and
 *   on a local directory);
 * - COMPLIANCE: deleting a chunk, an index page or a manifest version through the S3 API is
 *   refused (bypass or not) and the data stays readable; forget of a locked snapshot refused;
 * - GOVERNANCE with a lock of ~14 s (fractional days): a backup that reuses chunks first
 *   written long before extends their retention (read back with GetObjectRetention) and only
 *   theirs; the next backup extends nothing (the slack); `lock extend` repairs a chunk whose
 *   retention was shortened with a governance bypass; prune leaves garbage that is still
 *   locked and removes it (every version, no delete marker) once unlocked.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutObjectRetentionCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { seededBytes, startCephS3, type CephS3 } from '../testing/index.js';
import { assertExit, assertOneLineError, assertSameBytes, coffer, cofferJson, makeWorkDir, removeDir, type BackupJson } from './cli-harness.js';
import * as probe from './s3-lock-probe.js';

let s3: CephS3;
let client: S3Client;
let work: string;
let env: Record<string, string>;
const MiB = 1 << 20;
/**
 * ~35 s: long enough for a few CLI runs on a loaded 2-core machine (13.8 s flaked there, and
 * 24 s did on 2026-11-29: backups B and C and a forget took over 24 s beside other tests, and
 * A's lock had ended), short enough to wait for its end.
 */
const LOCK_DAYS = '0.0004';
const LOCK_MS = 0.0004 * 86_400_000;

interface LockedBackupJson extends BackupJson {
  lock: { lockedUntil: string; checked: number; lookedUp: number; extended: number; durationMs: number };
}
interface PruneJson {
  chunksRemoved: number;
  indexPagesRemoved: number;
  stillLocked: number;
}

before(async () => {
  [s3, work] = await Promise.all([startCephS3(), makeWorkDir('s3-lock')]);
  client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: s3.credentials, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  env = { ...s3.env, COFFER_PASSWORD: 'lock test', XDG_CACHE_HOME: join(work, 'cache') };
  // Three 4 MiB disks (16 blocks of 256 KiB): v1 differs from v0 in its first MiB, v2 from v1 in its third.
  const v0 = seededBytes(1, 4 * MiB);
  const v1 = Buffer.concat([seededBytes(2, MiB), v0.subarray(MiB)]);
  const v2 = Buffer.concat([v1.subarray(0, 2 * MiB), seededBytes(3, MiB), v1.subarray(3 * MiB)]);
  await Promise.all([fs.writeFile(join(work, 'v0.raw'), v0), fs.writeFile(join(work, 'v1.raw'), v1), fs.writeFile(join(work, 'v2.raw'), v2)]);
});
after(async () => {
  client?.destroy();
  await s3?.stop();
  if (work !== undefined) await removeDir(work);
});

const opts = () => ({ env, timeoutMs: 120_000 });
const keysUnder = (bucket: string, prefix: string) => probe.keysUnder(client, bucket, prefix);
const retainUntil = (bucket: string, key: string) => probe.retainUntil(client, bucket, key);
async function versionsOf(bucket: string, key: string): Promise<{ versions: string[]; markers: number }> {
  const page = await client.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
  return {
    versions: (page.Versions ?? []).filter((v) => v.Key === key).map((v) => v.VersionId as string),
    markers: (page.DeleteMarkers ?? []).filter((m) => m.Key === key).length,
  };
}
async function read(bucket: string, key: string): Promise<Buffer> {
  const answer = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await (answer.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

test('init records a lock only on a bucket with Object Lock; a plain bucket, a local directory and a bad --lock-days are refused', async () => {
  const locked = await s3.createBucket('lock-init', undefined, { objectLock: true });
  // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
  const created = await cofferJson<{ objectLock?: { mode: string; days: number } }>(['init', '--format', '1', '-r', `s3:${s3.endpoint}/${locked}/repo`, '--lock-days', '30', '--lock-mode', 'governance'], opts());
  assert.deepEqual(created.objectLock, { mode: 'governance', days: 30 });
  // The config is locked too.
  assert.equal((await retainUntil(locked, 'repo/config')).mode, 'GOVERNANCE');

  const plain = await s3.createBucket('lock-plain');
  const refused = await coffer(['init', '--format', '1', '-r', `s3:${s3.endpoint}/${plain}/repo`, '--lock-days', '30'], opts());
  assertExit(refused, 2);
  assert.match(assertOneLineError(refused), /does not have Object Lock enabled/);
  assert.deepEqual(await keysUnder(plain, 'repo/'), []);

  const local = await coffer(['init', '--format', '1', '-r', join(work, 'local-repo'), '--lock-days', '30'], opts());
  assertExit(local, 2);
  assert.match(assertOneLineError(local), /cannot lock objects: --lock-days needs an S3 bucket with Object Lock/);

  for (const bad of ['0', '-1', 'soon', '40000']) {
    const result = await coffer(['init', '--format', '1', '-r', `s3:${s3.endpoint}/${locked}/bad`, '--lock-days', bad], opts());
    assertExit(result, 2);
    assert.match(assertOneLineError(result), /--lock-days/);
  }
  const mode = await coffer(['init', '--format', '1', '-r', `s3:${s3.endpoint}/${locked}/bad`, '--lock-days', '1', '--lock-mode', 'loose'], opts());
  assertExit(mode, 2);
  assert.match(assertOneLineError(mode), /--lock-mode loose: give compliance or governance/);
});

test('COMPLIANCE: a chunk, an index page and a manifest cannot be deleted through the S3 API (bypass or not), stay readable, and the snapshot cannot be forgotten', async () => {
  const bucket = await s3.createBucket('lock-compliance', undefined, { objectLock: true });
  const repo = `s3:${s3.endpoint}/${bucket}/vault`;
  assertExit(await coffer(['init', '--format', '1', '-r', repo, '--lock-days', '1'], opts()), 0);
  const before = Date.now();
  const backup = await cofferJson<LockedBackupJson>(['backup', '-r', repo, '--vm', 'db01', join(work, 'v0.raw')], opts());
  const lockedUntil = Date.parse(backup.lock.lockedUntil);
  assert.ok(Math.abs(lockedUntil - (before + 86_400_000)) < 60_000, `a snapshot is locked one day: ${backup.lock.lockedUntil}`);

  const targets = [(await keysUnder(bucket, 'vault/chunks/'))[0], (await keysUnder(bucket, 'vault/indexes/'))[0], `vault/snapshots/${backup.id}`];
  for (const key of targets) {
    assert.ok(key !== undefined);
    const retention = await retainUntil(bucket, key);
    assert.equal(retention.mode, 'COMPLIANCE', key);
    assert.ok(retention.until >= lockedUntil, `${key} is locked at least as long as the snapshot`);
    const bytes = await read(bucket, key);
    for (const bypass of [false, true]) await probe.assertUndeletable(client, bucket, key, bypass);
    assert.deepEqual(await read(bucket, key), bytes, `${key} is still readable, unchanged`);
  }
  const restored = join(work, 'compliance.raw');
  assertExit(await coffer(['restore', '-r', repo, backup.id, '--to', restored], opts()), 0);
  await assertSameBytes(restored, join(work, 'v0.raw'));
  await fs.rm(restored);

  const forget = await coffer(['forget', '-r', repo, backup.id.slice(0, 8)], opts());
  assertExit(forget, 2);
  assert.match(assertOneLineError(forget), new RegExp(`snapshot ${backup.id.slice(0, 8)} is locked until ${backup.lock.lockedUntil.replace(/[.]/g, '\\.')} .*nothing was removed`));
  assert.ok((await keysUnder(bucket, 'vault/snapshots/')).includes(`vault/snapshots/${backup.id}`));

  // The key file is locked with the config: passwd refuses before it adds anything, remove refuses with the date.
  const keys = async () => (await cofferJson<{ id: string }[]>(['key', 'list', '-r', repo, '--json'], opts())).map((k) => k.id);
  const [first] = await keys();
  const passwd = await coffer(['key', 'passwd', '-r', repo], { ...opts(), env: { ...env, COFFER_NEW_PASSWORD: 'another' } });
  assertExit(passwd, 2);
  assert.match(assertOneLineError(passwd), /is under Object Lock until .*: a new passphrase cannot replace it before then \(add one with 'coffer key add'/);
  assert.deepEqual(await keys(), [first], 'passwd added no key');
  assertExit(await coffer(['key', 'add', '-r', repo], { ...opts(), env: { ...env, COFFER_NEW_PASSWORD: 'another' } }), 0);
  const removal = await coffer(['key', 'remove', '-r', repo, first as string], { ...opts(), env: { ...env, COFFER_PASSWORD: 'another' } });
  assertExit(removal, 2);
  assert.match(assertOneLineError(removal), new RegExp(`key ${first} is under Object Lock until .*: it cannot be removed before then`));
  assert.equal((await keys()).length, 2);

  // A delete marker hides a locked chunk (its version stays): lock extend finds it missing and says so with exit 13.
  const hidden = (await keysUnder(bucket, 'vault/chunks/'))[0] as string;
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: hidden }));
  const extend = await coffer(['lock', 'extend', '-r', repo], opts());
  assertExit(extend, 13);
  assert.match(extend.stdout.toString(), /, 1 missing \(run 'coffer verify'\)/);
  // repair --forget cannot remove the damaged snapshot before its lock ends: it says so for
  // that snapshot and goes on (it stopped with exit 2 at the first such snapshot).
  const repair = await coffer(['repair', '-r', repo, '--forget'], opts());
  assertExit(repair, 13);
  assert.match(repair.stdout.toString(), new RegExp(`kept: snapshot ${backup.id.slice(0, 8)} is locked until`));
  assert.ok((await keysUnder(bucket, 'vault/snapshots/')).includes(`vault/snapshots/${backup.id}`));
});

test('GOVERNANCE, a lock of seconds: reuse extends old chunks, the slack spares the next backup, lock extend repairs a bypass, prune waits for the lock', async () => {
  const bucket = await s3.createBucket('lock-governance', undefined, { objectLock: true });
  const repo = `s3:${s3.endpoint}/${bucket}/gov`;
  assertExit(await coffer(['init', '--format', '1', '-r', repo, '--lock-days', LOCK_DAYS, '--lock-mode', 'governance'], opts()), 0);

  // A: 16 chunks, locked for 1.5 × LOCK_MS from when they were written.
  const a = await cofferJson<LockedBackupJson>(['backup', '-r', repo, '--vm', 'web', join(work, 'v0.raw')], opts());
  const aDone = Date.now();
  assert.equal(a.lock.extended, 0, 'a first backup extends nothing: what it wrote is locked long enough');
  const chunksA = await keysUnder(bucket, 'gov/chunks/');
  assert.equal(chunksA.length, 16);

  const forget = await coffer(['forget', '-r', repo, a.id], opts());
  assertExit(forget, 2);
  assert.match(assertOneLineError(forget), /is locked until .*governance.*nothing was removed/);
  const status = await cofferJson<{ policy: { mode: string }; snapshots: { id: string; locked: boolean; lockedUntil: string }[] }>(['lock', 'status', '-r', repo], opts());
  assert.equal(status.policy.mode, 'governance');
  assert.deepEqual(status.snapshots.map((s) => [s.id, s.locked, s.lockedUntil]), [[a.id, true, a.lock.lockedUntil]]);

  // B, past half the lock: A's chunks would now end before B's lock; the 12 B reuses (first
  // written long before, found through the parent) are extended, A's 4 others are not.
  await probe.sleepUntil(aDone + LOCK_MS / 2 + 500);
  const b = await cofferJson<LockedBackupJson>(['backup', '-r', repo, '--vm', 'web', join(work, 'v1.raw')], opts());
  const bUntil = Date.parse(b.lock.lockedUntil);
  const retentions = await Promise.all(chunksA.map(async (key) => ({ key, ...(await retainUntil(bucket, key)) })));
  const reaching = retentions.filter((r) => r.until >= bUntil);
  assert.equal(reaching.length, 12, 'exactly the chunks B reuses reach its lock-until');
  assert.ok(retentions.every((r) => r.mode === 'GOVERNANCE'));
  assert.ok(b.lock.extended >= 12, `B extended ${b.lock.extended}`);

  // C, right after: everything it reuses was extended with slack by B.
  const c = await cofferJson<LockedBackupJson>(['backup', '-r', repo, '--vm', 'web', join(work, 'v2.raw')], opts());
  assert.equal(c.lock.extended, 0, `C extended ${c.lock.extended}`);
  // A policy that would keep only C keeps A and B too: they are locked.
  const policy = await cofferJson<{ removed: unknown[]; vms: { snapshots: { id: string; keep: boolean; reasons: string[] }[] }[] }>(['forget', '-r', repo, '--keep-last', '1'], opts());
  assert.deepEqual(policy.removed, []);
  assert.deepEqual(policy.vms[0]?.snapshots.map((s) => [s.id, s.keep, s.reasons.includes('locked')]), [[a.id, true, true], [b.id, true, true], [c.id, true, false]]);
  console.log(`# extensions: A ${a.lock.extended}/${a.lock.checked} checked, B ${b.lock.extended}/${b.lock.checked} (${b.lock.lookedUp} HEADs, ${b.lock.durationMs} ms), C ${c.lock.extended}/${c.lock.checked} (${c.lock.lookedUp} HEADs, ${c.lock.durationMs} ms)`);

  // Someone with the bypass right shortens one of A's old chunks that C needs; lock extend repairs it.
  const victim = reaching[0]?.key as string;
  await client.send(new PutObjectRetentionCommand({ Bucket: bucket, Key: victim, BypassGovernanceRetention: true, Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(Date.now() + 3000) } }));
  assert.ok((await retainUntil(bucket, victim)).until < bUntil);
  const extend = await cofferJson<{ lockedSnapshots: number; unlockedSnapshots: number; extended: number; checked: number }>(['lock', 'extend', '-r', repo], opts());
  assert.equal(extend.lockedSnapshots + extend.unlockedSnapshots, 3);
  assert.ok(extend.lockedSnapshots >= 2, 'B and C are locked (A may have just ended)');
  assert.equal(extend.extended, 1, 'only the shortened chunk falls short');
  assert.ok((await retainUntil(bucket, victim)).until >= bUntil, 'repaired: locked at least as long as B, which needs it');

  // Once A's lock ended it can be forgotten; its 4 own chunks and its index page are garbage,
  // still locked (written with slack): prune leaves them, and removes them once unlocked.
  await probe.sleepUntil(Date.parse(a.lock.lockedUntil) + 300);
  assertExit(await coffer(['forget', '-r', repo, a.id], opts()), 0);
  const early = await cofferJson<PruneJson>(['prune', '-r', repo], opts());
  assert.deepEqual([early.chunksRemoved, early.indexPagesRemoved, early.stillLocked], [0, 0, 5]);
  const text = await coffer(['prune', '-r', repo], opts());
  assertExit(text, 0);
  assert.match(text.stdout.toString('utf8'), /5 object\(s\) no snapshot uses are still locked \(Object Lock\): a later prune removes them/);
  const garbage = retentions.filter((r) => r.until < bUntil).map((r) => r.key);
  assert.equal(garbage.length, 4);
  await probe.sleepUntil(aDone + 1.5 * LOCK_MS + 500);
  const late = await cofferJson<PruneJson>(['prune', '-r', repo], opts());
  assert.deepEqual([late.chunksRemoved, late.indexPagesRemoved, late.stillLocked], [4, 1, 0]);
  for (const key of garbage) assert.deepEqual(await versionsOf(bucket, key), { versions: [], markers: 0 }, `${key}: every version gone, no delete marker`);

  const restored = join(work, 'governance.raw');
  assertExit(await coffer(['restore', '-r', repo, c.id, '--to', restored], opts()), 0);
  await assertSameBytes(restored, join(work, 'v2.raw'));
  assertExit(await coffer(['verify', '-r', repo], opts()), 0);
});

test('COMPLIANCE: a file snapshot is locked too, its directory trees and their chunks as long as the snapshot', async () => {
  const bucket = await s3.createBucket('lock-files', undefined, { objectLock: true });
  const repo = `s3:${s3.endpoint}/${bucket}/vault`;
  assertExit(await coffer(['init', '--format', '1', '-r', repo, '--lock-days', '1'], opts()), 0);
  const tree = join(work, 'tree');
  await fs.mkdir(join(tree, 'etc'), { recursive: true });
  await fs.writeFile(join(tree, 'etc', 'app.conf'), seededBytes(7, 3 * MiB));
  const before = Date.now();
  assertExit(await coffer(['backup', '-r', repo, '--files', tree, '--host', 'web01'], opts()), 0);
  const [snapshot] = await keysUnder(bucket, 'vault/snapshots/');
  assert.ok(snapshot !== undefined);
  const lockedUntil = (await retainUntil(bucket, snapshot)).until;
  assert.ok(lockedUntil >= before + 86_400_000 - 60_000, 'the file snapshot is locked one day');
  const trees = await keysUnder(bucket, 'vault/trees/');
  const chunks = await keysUnder(bucket, 'vault/chunks/');
  assert.ok(trees.length >= 2, 'a tree per directory');
  for (const key of [...trees, ...chunks]) {
    const retention = await retainUntil(bucket, key);
    assert.equal(retention.mode, 'COMPLIANCE', key);
    assert.ok(retention.until >= lockedUntil, `${key} is locked at least as long as the snapshot`);
  }
  const [version] = (await versionsOf(bucket, trees[0] as string)).versions;
  await assert.rejects(
    client.send(new DeleteObjectCommand({ Bucket: bucket, Key: trees[0], VersionId: version })),
    (error: { name?: string }) => error.name === 'AccessDenied',
    'a tree of a locked file snapshot cannot be deleted',
  );
});
