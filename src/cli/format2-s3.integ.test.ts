/**
 * Repository format 2 (packs) end to end through the `coffer` binary, on a local directory
 * and on S3 (a real Ceph RADOS Gateway, src/testing/ceph-s3.ts), with independent readers as
 * the oracles: a VM of two real disks (ext4 by mke2fs, NTFS by mkntfs + wimlib), a full and an
 * incremental backup, restore byte for byte (qemu-img compare), `verify --read-data`,
 * file-level restore checked against debugfs and ntfscat, instant recovery (`coffer serve`)
 * read by qemu-img and nbdcopy. On S3 every request goes through a counting proxy
 * (src/testing/s3-request-counter.ts): a format 2 backup and its incremental are compared
 * with format 1 on the same disk, request by request. Object Lock on format 2, with the
 * gateway's own API (the AWS SDK) as the oracle: packs, segments, index pages and manifests
 * are locked, deleting them is refused, and a pack a later snapshot reuses is extended.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { PutObjectRetentionCommand, S3Client } from '@aws-sdk/client-s3';
import { lockedUntil, openRepository, parseS3Location, S3Backend } from '../repo/index.js';
import { buildExtImage, buildNtfsImage, countByKind, requireTools, seededBytes, startCephS3, startS3RequestCounter, type CephS3, type S3Request, type S3RequestCounter } from '../testing/index.js';
import * as probe from './s3-lock-probe.js';
import { assertExit, coffer, cofferJson, makeWorkDir, removeDir, runTool, startCofferUntil, type BackupJson } from './cli-harness.js';

const execFileAsync = promisify(execFile);
const MiB = 1 << 20;
let s3: CephS3;
let counter: S3RequestCounter;
let work: string;
let ext4: string;
let ntfs: string;
/** `ext4` with seeded bytes in its last MiB (free space of the filesystem). */
let ext4Changed: string;
let env: Record<string, string>;
let client: S3Client;
/** ~24 s (as s3-lock.integ.test.ts): long enough for a few CLI runs on a loaded machine. */
const LOCK_DAYS = '0.00028';
const LOCK_MS = 0.00028 * 86_400_000;

before(async () => {
  await requireTools('qemu-img', 'debugfs', 'ntfscat', 'nbdcopy', 'mke2fs', 'mkntfs', 'wimlib-imagex');
  [s3, work, ext4, ntfs] = await Promise.all([
    startCephS3(),
    makeWorkDir('format2-s3'),
    buildExtImage({ sizeMiB: 96, bigFileBytes: 3_000_000 }),
    buildNtfsImage({ sizeMiB: 96, bigFileBytes: 3_000_000 }),
  ]);
  counter = await startS3RequestCounter(s3.endpoint);
  client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: s3.credentials, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
  env = { ...s3.env, COFFER_PASSWORD: 'format 2 on s3', XDG_CACHE_HOME: join(work, 'cache') };
  ext4Changed = await ext4Variant(77);
});

/** A copy of `ext4` with seeded bytes in its last MiB (free space of the filesystem). */
async function ext4Variant(seed: number): Promise<string> {
  const file = join(work, `ext4-changed-${seed}.raw`);
  await fs.copyFile(ext4, file);
  const handle = await fs.open(file, 'r+');
  await handle.write(seededBytes(seed, MiB), 0, MiB, 95 * MiB);
  await handle.close();
  return file;
}
after(async () => {
  client?.destroy();
  await counter?.close();
  await s3?.stop();
  if (work !== undefined) await removeDir(work);
});

const opts = () => ({ env, timeoutMs: 180_000 });

/** `qemu-img compare` of two raw images (or a raw image and an NBD URI): exit 0 when equal. */
async function assertSameDisk(expected: string, actual: string, what: string): Promise<void> {
  const compared = await runTool('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', expected, actual]);
  assert.equal(compared.code, 0, `${what}: ${compared.stdout}${compared.stderr}`);
}

/** stdout of a tool as bytes. */
async function toolBytes(tool: string, args: string[]): Promise<Buffer> {
  return (await execFileAsync(tool, args, { encoding: 'buffer', maxBuffer: 64 * MiB })).stdout;
}

/**
 * Everything a user does with a format 2 repository at `repo`: backups, restore, verify,
 * file-level restore and instant recovery, each checked by an independent reader.
 */
async function endToEnd(repo: string): Promise<void> {
  const init = await cofferJson<{ format: number }>(['init', '-r', repo, '--format', '2'], opts());
  assert.equal(init.format, 2);
  const full = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'web', '--time', '2026-11-20T00:00:00Z', ext4, ntfs], opts());
  const incremental = await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'web', '--time', '2026-11-21T00:00:00Z', ext4Changed, ntfs], opts());
  assert.ok(incremental.bytesNew <= 2 * MiB, `the incremental stored only the changed MiB (${incremental.bytesNew} bytes new)`);

  // Restore, byte for byte.
  const restored = join(work, 'restored');
  const answer = await cofferJson<{ disks: { disk: string; path: string }[] }>(['restore', '-r', repo, 'web:latest', '--to', restored], opts());
  assert.equal(answer.disks.length, 2);
  await assertSameDisk(ext4Changed, answer.disks[0]?.path as string, 'disk0 restored');
  await assertSameDisk(ntfs, answer.disks[1]?.path as string, 'disk1 restored');
  await removeDir(restored);

  assertExit(await coffer(['verify', '-r', repo, '--read-data'], opts()), 0);

  // File-level restore: the same bytes as debugfs and ntfscat read from the source images.
  const volumes = await cofferJson<{ disk: string; volume: string; filesystem: string | null }[]>(['files', '-r', repo, full.id], opts());
  const volumeOf = (type: string) => {
    const found = volumes.find((v) => v.filesystem === type);
    assert.ok(found !== undefined, `a ${type} volume among ${JSON.stringify(volumes)}`);
    return found;
  };
  const oracles = [
    { ...volumeOf('ext4'), read: (path: string) => toolBytes('debugfs', ['-R', `cat ${path}`, ext4]) },
    { ...volumeOf('ntfs'), read: (path: string) => toolBytes('ntfscat', [ntfs, path]) },
  ];
  for (const { disk, volume, read } of oracles) {
    for (const path of ['/docs/readme.txt', '/big.bin']) {
      const cat = await coffer(['files', '-r', repo, full.id, '--disk', disk, 'cat', `${volume}:${path}`], opts());
      assertExit(cat, 0);
      const expected = await read(path);
      assert.ok(expected.length > 0, `${volume}:${path} is not empty`);
      assert.ok(cat.stdout.equals(expected), `${volume}:${path}: ${cat.stdout.length} bytes, the oracle read ${expected.length}`);
    }
  }

  // Instant recovery of the full: qemu-img and nbdcopy read it over NBD.
  const socket = join(work, 'nbd.sock');
  const serving = await startCofferUntil(['serve', '-r', repo, full.id, '--socket', socket], 'nbd', opts());
  try {
    await assertSameDisk(ext4, `nbd+unix:///disk0?socket=${socket}`, 'disk0 served');
    const copied = join(work, 'nbdcopy.raw');
    const copy = await runTool('nbdcopy', [`nbd+unix:///disk1?socket=${socket}`, copied]);
    assert.equal(copy.code, 0, copy.stderr);
    await assertSameDisk(ntfs, copied, 'disk1 copied by nbdcopy');
    await fs.rm(copied);
  } finally {
    serving.child.kill('SIGTERM');
    assertExit(await serving.done, 0);
  }
}

test('format 2 on a local directory: backup, restore, verify --read-data, files, serve', async () => {
  await endToEnd(join(work, 'local-repo'));
});

test('format 2 on S3: backup, restore, verify --read-data, files, serve; no data object is read whole', async () => {
  const bucket = await s3.createBucket('format2');
  counter.take();
  await endToEnd(`s3:${counter.endpoint}/${bucket}/vms`);
  const requests = counter.take();
  const packReads = requests.filter((r) => r.key.includes('/packs/') && (r.kind === 'GET' || r.kind === 'RANGE'));
  assert.ok(packReads.length > 0);
  assert.deepEqual(countByKind(packReads), { RANGE: packReads.length }, 'packs are read by ranged GETs only');
  assert.equal(requests.filter((r) => r.key.includes('/chunks/') && r.kind === 'PUT').length, 0, 'no chunk objects');
  // The storage side's check, without the passphrase (it reads packs whole, so after the count
  // above): every pack's digest record, its writer's SHA-256 reused rather than recomputed
  // (known-sha256.ts), matches the bytes the gateway stored.
  const storageSide = Object.fromEntries(Object.entries(env).filter(([name]) => name !== 'COFFER_PASSWORD'));
  assertExit(await coffer(['verify', '--stored', '--strict', '-r', `s3:${s3.endpoint}/${bucket}/vms`], { env: storageSide, timeoutMs: 180_000 }), 0);
});

test('S3 requests of a full and an incremental backup: format 2 against format 1 on the same disks', async () => {
  const bucket = await s3.createBucket('requests');
  const rows: { format: number; run: string; counts: ReturnType<typeof countByKind>; seconds: number }[] = [];
  const perFormat = new Map<number, S3Request[][]>();
  for (const format of [1, 2]) {
    const repo = `s3:${counter.endpoint}/${bucket}/v${format}`;
    assertExit(await coffer(['init', '-r', repo, '--format', String(format)], opts()), 0);
    const runs: S3Request[][] = [];
    for (const [run, disks] of [['full', [ext4, ntfs]], ['incremental', [ext4Changed, ntfs]], ['unchanged', [ext4Changed, ntfs]]] as const) {
      counter.take();
      const started = Date.now();
      await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'web', ...disks], opts());
      const requests = counter.take();
      runs.push(requests);
      rows.push({ format, run, counts: countByKind(requests), seconds: (Date.now() - started) / 1000 });
    }
    perFormat.set(format, runs);
  }
  for (const row of rows) console.log(`# format ${row.format} ${row.run}: ${JSON.stringify(row.counts)} in ${row.seconds.toFixed(1)} s`);
  const [v1Full, v1Incremental] = perFormat.get(1) as S3Request[][];
  const [v2Full, v2Incremental, v2Unchanged] = perFormat.get(2) as S3Request[][];
  const puts = (requests: S3Request[] | undefined) => (requests ?? []).filter((r) => r.kind === 'PUT').length;
  const heads = (requests: S3Request[] | undefined) => (requests ?? []).filter((r) => r.kind === 'HEAD').length;
  // Format 1 puts one object per new chunk; format 2 one per pack (≤ 16 MiB) plus index pages and a segment.
  assert.ok(puts(v2Full) * 3 < puts(v1Full), `v2 full: ${puts(v2Full)} PUTs, v1 full: ${puts(v1Full)}`);
  assert.ok(puts(v2Incremental) <= puts(v1Incremental), `v2 incremental: ${puts(v2Incremental)} PUTs, v1: ${puts(v1Incremental)}`);
  // No backup asks the bucket about each chunk: HEADs stay a handful (index pages, config, leases).
  for (const [name, requests] of [['v2 full', v2Full], ['v2 incremental', v2Incremental], ['v2 unchanged', v2Unchanged]] as const) {
    assert.ok(heads(requests) <= 12, `${name}: ${heads(requests)} HEADs`);
    assert.equal((requests ?? []).filter((r) => r.key.includes('/chunks/')).length, 0, `${name}: nothing under chunks/`);
  }

  // The incremental met new blocks, so it loaded the chunk index: every segment came from the
  // local cache (the full wrote its own through). Lost, the cache is rebuilt by the next backup.
  const segmentGets = (requests: S3Request[]) => requests.filter((r) => r.kind === 'GET' && r.key.includes('/segments/')).length;
  assert.equal(segmentGets(v2Incremental ?? []), 0, 'no segment downloaded with the cache');
  const repo = `s3:${counter.endpoint}/${bucket}/v2`;
  const segments = (await keysUnder(bucket, 'v2/segments/')).length;
  assert.equal(segments, 2, 'the full and the incremental each wrote one');
  await fs.rm(join(work, 'cache'), { recursive: true });
  for (const [seed, downloads] of [[78, segments], [79, 0]] as const) {
    counter.take();
    await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'web', await ext4Variant(seed), ntfs], opts());
    assert.equal(segmentGets(counter.take()), downloads, `backup of variant ${seed}: ${downloads} segment(s) downloaded`);
  }
});

interface LockedBackupJson extends BackupJson {
  lock: { lockedUntil: string; checked: number; lookedUp: number; extended: number };
}

const keysUnder = (bucket: string, prefix: string) => probe.keysUnder(client, bucket, prefix);
const retainUntil = (bucket: string, key: string) => probe.retainUntil(client, bucket, key);
const assertUndeletable = (bucket: string, key: string, bypass: boolean) => probe.assertUndeletable(client, bucket, key, bypass);

test('Object Lock on format 2, COMPLIANCE: a pack, a segment, an index page and a manifest cannot be deleted through the S3 API, bypass or not', async () => {
  const bucket = await s3.createBucket('lock-v2-compliance', undefined, { objectLock: true });
  const repo = `s3:${s3.endpoint}/${bucket}/vault`;
  assertExit(await coffer(['init', '-r', repo, '--format', '2', '--lock-days', '1'], opts()), 0);
  const image = join(work, 'lock-v0.raw');
  await fs.writeFile(image, seededBytes(1, 4 * MiB));
  const backup = await cofferJson<LockedBackupJson>(['backup', '-r', repo, '--vm', 'db01', image], opts());
  const lockedUntilMs = Date.parse(backup.lock.lockedUntil);
  const [pack] = await keysUnder(bucket, 'vault/packs/');
  const [segment] = await keysUnder(bucket, 'vault/segments/');
  const [page] = await keysUnder(bucket, 'vault/indexes/');
  assert.deepEqual(await keysUnder(bucket, 'vault/chunks/'), []);
  for (const key of [pack, segment, page, `vault/snapshots/${backup.id}`]) {
    assert.ok(key !== undefined);
    const retention = await retainUntil(bucket, key);
    assert.equal(retention.mode, 'COMPLIANCE', key);
    assert.ok(retention.until >= lockedUntilMs, `${key} is locked at least as long as the snapshot`);
    for (const bypass of [false, true]) await assertUndeletable(bucket, key, bypass);
  }
  const restored = join(work, 'lock-compliance.raw');
  assertExit(await coffer(['restore', '-r', repo, backup.id, '--to', restored], opts()), 0);
  await assertSameDisk(image, restored, 'restored after the refused deletes');

  // Prune meets garbage packs (no segment or snapshot names them): the one written locked
  // stays and is counted, nothing fails; the one without a retention goes.
  const lockedJunk = `packs/ab/${'ab'.padEnd(64, '1')}`;
  const plainJunk = `packs/cd/${'cd'.padEnd(64, '2')}`;
  const backend = new S3Backend(parseS3Location(repo), { credentials: s3.credentials });
  try {
    const opened = await openRepository(backend, { passphrase: env.COFFER_PASSWORD as string });
    await opened.backend.put(lockedJunk, seededBytes(9, 4096)); // through the repository: locked
    await backend.put(plainJunk, seededBytes(10, 4096)); // straight to the bucket: no retention
    await opened.close();
  } finally {
    backend.destroy();
  }
  const pruned = await cofferJson<{ stillLocked: number; packs: { packsDeleted: number; packsRepacked: number } }>(['prune', '-r', repo], opts());
  assert.equal(pruned.stillLocked, 1, 'the locked garbage pack is left for a later prune');
  assert.deepEqual([pruned.packs.packsDeleted, pruned.packs.packsRepacked], [1, 0]);
  // The backup's own pack may share either prefix (its name is random to us): only the junk is asserted on.
  assert.ok((await keysUnder(bucket, 'vault/packs/ab/')).includes(`vault/${lockedJunk}`), 'the locked garbage pack stays');
  assert.ok(!(await keysUnder(bucket, 'vault/packs/cd/')).includes(`vault/${plainJunk}`), 'the unlocked garbage pack is gone');
  assert.ok((await keysUnder(bucket, 'vault/packs/')).includes(pack as string), 'the snapshot\'s pack stays');
  await fs.rm(restored);
  assertExit(await coffer(['restore', '-r', repo, backup.id, '--to', restored], opts()), 0);
  await assertSameDisk(image, restored, 'restored after the prune');
  await fs.rm(restored);
});

test('Object Lock on format 2, GOVERNANCE with a lock of seconds: a pack written long before is extended when a snapshot reuses it, stays undeletable, and lock extend repairs a bypass', async () => {
  const bucket = await s3.createBucket('lock-v2-governance', undefined, { objectLock: true });
  const location = `s3:${counter.endpoint}/${bucket}/gov`;
  assertExit(await coffer(['init', '-r', location, '--format', '2', '--lock-days', LOCK_DAYS, '--lock-mode', 'governance'], opts()), 0);
  // v1 differs from v0 in its first MiB only: B stores 1 MiB and reuses A's pack for the rest.
  const v0 = seededBytes(2, 4 * MiB);
  await fs.writeFile(join(work, 'gov-v0.raw'), v0);
  await fs.writeFile(join(work, 'gov-v1.raw'), Buffer.concat([seededBytes(3, MiB), v0.subarray(MiB)]));

  const a = await cofferJson<LockedBackupJson>(['backup', '-r', location, '--vm', 'web', join(work, 'gov-v0.raw')], opts());
  const aDone = Date.now();
  assert.equal(a.lock.extended, 0, 'a first backup extends nothing: what it wrote is locked long enough');
  const [packA] = await keysUnder(bucket, 'gov/packs/');
  assert.ok(packA !== undefined);
  assert.ok((await retainUntil(bucket, packA)).until < aDone + 1.5 * LOCK_MS + 1000);

  // B, past half the lock: A's pack would end before B's lock-until; B reuses 3 MiB of it.
  await probe.sleepUntil(aDone + LOCK_MS / 2 + 500);
  counter.take();
  const b = await cofferJson<LockedBackupJson>(['backup', '-r', location, '--vm', 'web', join(work, 'gov-v1.raw')], opts());
  const bRequests = counter.take();
  const extensions = bRequests.filter((r) => r.kind === 'RETENTION').map((r) => r.key);
  assert.equal(bRequests.filter((r) => r.kind === 'GET' && r.key.includes('/segments/')).length, 0, 'A\'s segment, put locked, was cached as it was written');
  const bUntil = Date.parse(b.lock.lockedUntil);
  assert.ok(extensions.includes(packA), `A's pack was extended (extended: ${extensions.join(', ')})`);
  assert.equal(extensions.filter((key) => key.includes('/packs/')).length, 1, 'only A\'s pack: B\'s own was written locked long enough');
  const packs = await keysUnder(bucket, 'gov/packs/');
  assert.equal(packs.length, 2);
  for (const key of packs) assert.ok((await retainUntil(bucket, key)).until >= bUntil, `${key} is locked at least as long as B`);
  await assertUndeletable(bucket, packA, false);

  // What prune asks before deleting: the date, read from the store; null for bookkeeping.
  const backend = new S3Backend(parseS3Location(location), { credentials: s3.credentials });
  try {
    const repo = await openRepository(backend, { passphrase: env.COFFER_PASSWORD as string });
    const packKeyA = packA.slice('gov/'.length);
    assert.ok(((await lockedUntil(repo, packKeyA))?.getTime() ?? 0) >= bUntil);
    assert.equal(await lockedUntil(repo, 'notes/none'), null);
    assert.equal(await lockedUntil(repo, packKeyA, { now: new Date(bUntil + 2 * LOCK_MS) }), null, 'past its retention nothing stops a delete');
    await repo.close();
  } finally {
    backend.destroy();
  }

  // Someone with the bypass right shortens A's pack, which B needs; lock extend repairs it.
  await client.send(new PutObjectRetentionCommand({ Bucket: bucket, Key: packA, BypassGovernanceRetention: true, Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(Date.now() + 3000) } }));
  const extend = await cofferJson<{ lockedSnapshots: number; extended: number }>(['lock', 'extend', '-r', location], opts());
  assert.ok(extend.lockedSnapshots >= 1);
  assert.equal(extend.extended, 1, 'only the shortened pack falls short');
  assert.ok((await retainUntil(bucket, packA)).until >= bUntil, 'repaired: locked at least as long as B, which needs it');

  const restored = join(work, 'lock-governance.raw');
  assertExit(await coffer(['restore', '-r', location, b.id, '--to', restored], opts()), 0);
  await assertSameDisk(join(work, 'gov-v1.raw'), restored, 'B restored');
  await fs.rm(restored);
});
