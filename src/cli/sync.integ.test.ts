/**
 * `coffer sync` between real repositories through the real CLI: two encrypted repositories
 * with different passphrases (so different keys and different chunk ids), a copy that
 * restores byte for byte and passes `verify --read-data`, a second sync that sends nothing,
 * an incremental sync that sends only the new chunks, a sync killed with SIGKILL and resumed,
 * `--vm` and `--since`, the same-key fast path, a damaged source chunk, and the errors.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { seededBytes } from '../testing/index.js';
import { assertExit, assertOneLineError, assertSameBytes, chunkIds, chunkPath, coffer, cofferJson, makeWorkDir, removeDir, startCoffer, waitFor, type BackupJson } from './cli-harness.js';

const MiB = 1 << 20;
const SRC_PASS = 'sync source passphrase';
const DST_PASS = 'sync destination passphrase';
/** Both passphrases, as a sync needs them. */
const env = { COFFER_PASSWORD: SRC_PASS, COFFER_TO_PASSWORD: DST_PASS };
const opts = { env, timeoutMs: 120_000 };
const asDestination = { env: { COFFER_PASSWORD: DST_PASS }, timeoutMs: 120_000 };
let work: string;

/** `coffer sync --json`, as the CLI contract has it. */
interface SyncJson {
  sameKeys: boolean;
  copied: number;
  present: number;
  failed: number;
  snapshots: { source: string; destination: string | null; vm: string; status: string; error?: { code: string } }[];
  chunksRead: number;
  chunksSent: number;
  chunkBytesSent: number;
  chunksPresent: number;
  chunksReused: number;
  indexPagesSent: number;
  indexBytesSent: number;
  indexPagesReused: number;
  bytesRead: number;
  bytesWritten: number;
}

before(async () => {
  work = await makeWorkDir('sync');
});
after(() => removeDir(work));

/** An 8 MiB disk: 2 MiB of its own per version, 4 MiB shared by all, 2 MiB of zeros. */
async function diskVersion(name: string, version: number): Promise<string> {
  const file = `${work}/${name}-${version}.raw`;
  await fs.writeFile(file, Buffer.concat([seededBytes(1000 + version, 2 * MiB), seededBytes(7, 4 * MiB), Buffer.alloc(2 * MiB)]));
  return file;
}

async function backup(repo: string, vm: string, disk: string, time: string, password = SRC_PASS): Promise<BackupJson> {
  return cofferJson<BackupJson>(['backup', '-r', repo, '--vm', vm, '--time', time, disk], { env: { COFFER_PASSWORD: password }, timeoutMs: 120_000 });
}

async function init(repo: string, password: string): Promise<void> {
  // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
  assertExit(await coffer(['init', '--format', '1', '-r', repo], { env: { COFFER_PASSWORD: password } }), 0);
}

test('between different keys: copies restore byte for byte and verify; a second sync sends nothing; the next sends only the new chunks', async () => {
  const src = `${work}/src1`;
  const dst = `${work}/dst1`;
  await init(src, SRC_PASS);
  await init(dst, DST_PASS);
  const disks = [await diskVersion('web', 0), await diskVersion('web', 1), await diskVersion('web', 2)];
  await backup(src, 'web', disks[0] as string, '2026-11-20T00:00:00Z');
  await backup(src, 'web', disks[1] as string, '2026-11-21T00:00:00Z');

  const first = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst], opts);
  assert.equal(first.sameKeys, false);
  assert.deepEqual([first.copied, first.present, first.failed], [2, 0, 0]);
  // Version 0: 8 own + 16 shared chunks of 256 KiB; version 1: 8 own, its shared blocks reused unread.
  assert.equal(first.chunksSent, 32);
  assert.equal(first.chunksRead, 32, 'no chunk was read twice');
  assert.ok(first.chunksReused >= 16, `${first.chunksReused} entries reused`);
  const copies = first.snapshots.map((s) => s.destination as string);
  assert.ok(first.snapshots.every((s, i) => s.destination !== null && s.destination !== s.source && copies.indexOf(s.destination) === i), 'new ids in the destination');
  // Different keys: no chunk file has the same name in both repositories.
  const shared = new Set(await chunkIds(src));
  assert.equal((await chunkIds(dst)).filter((id) => shared.has(id)).length, 0);

  const oldest = `${work}/restored-oldest.raw`; // the newest is restored below
  assertExit(await coffer(['restore', '-r', dst, copies[0] as string, '--to', oldest], asDestination), 0);
  await assertSameBytes(oldest, disks[0] as string);
  assertExit(await coffer(['verify', '-r', dst, '--read-data'], asDestination), 0);

  const again = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst], opts);
  assert.deepEqual([again.copied, again.present, again.failed], [0, 2, 0]);
  assert.deepEqual([again.chunksSent, again.chunkBytesSent, again.chunksRead, again.bytesRead, again.bytesWritten], [0, 0, 0, 0, 0]);
  assert.deepEqual(again.snapshots.map((s) => s.destination), copies);

  const third = await backup(src, 'web', disks[2] as string, '2026-11-22T00:00:00Z');
  const incremental = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst], opts);
  assert.deepEqual([incremental.copied, incremental.present], [1, 2]);
  assert.equal(incremental.chunksSent, 8);
  assert.equal(incremental.chunksRead, 8, 'only the changed blocks were read from the source');
  const sent = incremental.chunkBytesSent + incremental.indexBytesSent;
  assert.ok(Math.abs(sent - third.bytesStored) / third.bytesStored < 0.05, `sent ${sent} bytes for ${third.bytesStored} new bytes stored in the source`);
  const out = `${work}/restored-latest.raw`;
  assertExit(await coffer(['restore', '-r', dst, 'web:latest', '--to', out], asDestination), 0);
  await assertSameBytes(out, disks[2] as string);
});

test('a sync killed with SIGKILL mid-way leaves no snapshot; run again, it sends only the rest and the copy verifies', async () => {
  const src = `${work}/src2`;
  const dst = `${work}/dst2`;
  await init(src, SRC_PASS);
  await init(dst, DST_PASS);
  const disk = `${work}/big.raw`;
  await fs.writeFile(disk, seededBytes(99, 8 * MiB)); // 32 incompressible chunks
  await backup(src, 'big', disk, '2026-11-20T00:00:00Z');

  const rate = 1 * MiB;
  const started = performance.now();
  const run = startCoffer(['sync', '-r', src, '--to', dst, '--limit-upload', '1M'], opts);
  const some = await waitFor(async () => (await chunkIds(dst)).length >= 6, { timeoutMs: 60_000, intervalMs: 20 });
  const elapsed = (performance.now() - started) / 1000;
  run.child.kill('SIGKILL');
  const killed = await run.done;
  assert.ok(some, 'the sync sent chunks');
  assert.equal(killed.signal, 'SIGKILL');
  const before = await chunkIds(dst);
  assert.ok(before.length < 32, `${before.length} chunks were there when it was killed`);
  // The limit held: these bytes cannot have arrived faster than 1 MiB/s after the first burst.
  let bytes = 0;
  for (const id of before) bytes += (await fs.stat(chunkPath(dst, id))).size;
  assert.ok(elapsed >= ((bytes - 256 * 1024) / rate) * 0.85, `${bytes} bytes arrived within ${elapsed.toFixed(2)} s under a 1 MiB/s limit`);
  assert.deepEqual(await fs.readdir(`${dst}/snapshots`).catch(() => []), [], 'no manifest before every chunk is there');

  const resumed = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst], opts);
  assert.equal(resumed.copied, 1);
  assert.ok(resumed.chunksPresent >= before.length - 1, `${resumed.chunksPresent} chunks found present`);
  assert.equal(resumed.chunksSent + resumed.chunksPresent, 32);
  assertExit(await coffer(['verify', '-r', dst, '--read-data'], asDestination), 0);
  const out = `${work}/big-restored.raw`;
  assertExit(await coffer(['restore', '-r', dst, 'big:latest', '--to', out], asDestination), 0);
  await assertSameBytes(out, disk);
});

test('--vm and --since select what is copied', async () => {
  const src = `${work}/src3`;
  const dst = `${work}/dst3`;
  await init(src, SRC_PASS);
  await init(dst, DST_PASS);
  const disk = await diskVersion('sel', 0);
  const recent = new Date(Date.now() - 3600_000).toISOString();
  await backup(src, 'a', disk, '2020-01-01T00:00:00Z');
  await backup(src, 'a', disk, recent);
  await backup(src, 'b', disk, recent);

  const onlyB = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst, '--vm', 'b'], opts);
  assert.deepEqual(onlyB.snapshots.map((s) => [s.vm, s.status]), [['b', 'copied']]);
  // A VM the source never backed up is a typo, not an empty sync (it exited 0 having copied nothing).
  const typo = await coffer(['sync', '-r', src, '--to', dst, '--vm', 'bb'], opts);
  assertExit(typo, 2);
  assert.match(assertOneLineError(typo), /no snapshot of VM bb in /);
  const lastDay = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst, '--since', '1d'], opts);
  assert.deepEqual(lastDay.snapshots.map((s) => [s.vm, s.status]).sort(), [['a', 'copied'], ['b', 'present']]);
  assert.equal(lastDay.chunksSent, 0, 'every chunk of a was already there (the same disk as b)');
  const rest = await coffer(['sync', '-r', src, '--to', dst], opts);
  assertExit(rest, 0);
  assert.match(rest.stdout.toString('utf8'), /^1 snapshot\(s\) copied, 2 already there, 0 failed$/m);
  const listed = await cofferJson<{ vm: string; time: string }[]>(['snapshots', '-r', dst], asDestination);
  assert.deepEqual(listed.map((s) => [s.vm, s.time]).sort(), [['a', '2020-01-01T00:00:00.000Z'], ['a', recent], ['b', recent]]);
});

test('same keys: objects are copied as stored, ids unchanged', async () => {
  const src = `${work}/src4`;
  const dst = `${work}/dst4`;
  await init(src, SRC_PASS);
  await fs.cp(src, dst, { recursive: true }); // the same key file: the same master key
  const disks = [await diskVersion('same', 0), await diskVersion('same', 1)];
  const snapshots = [await backup(src, 'same', disks[0] as string, '2026-11-20T00:00:00Z'), await backup(src, 'same', disks[1] as string, '2026-11-21T00:00:00Z')];
  const sameEnv = { env: { COFFER_PASSWORD: SRC_PASS, COFFER_TO_PASSWORD: SRC_PASS }, timeoutMs: 120_000 };
  const report = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst], sameEnv);
  assert.equal(report.sameKeys, true);
  assert.deepEqual(report.snapshots.map((s) => s.destination), snapshots.map((s) => s.id));
  assert.equal(report.chunksSent, 32);
  assert.deepEqual(await chunkIds(dst), await chunkIds(src));
  assertExit(await coffer(['verify', '-r', dst, '--read-data'], { env: { COFFER_PASSWORD: SRC_PASS } }), 0);
  const again = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst], sameEnv);
  assert.deepEqual([again.copied, again.present, again.chunksRead], [0, 2, 0]);
});

test('a damaged source chunk fails its snapshot (exit 11), copies the others, and sends nothing damaged', async () => {
  const src = `${work}/src5`;
  const dst = `${work}/dst5`;
  await init(src, SRC_PASS);
  await init(dst, DST_PASS);
  const good = `${work}/good.raw`;
  const bad = `${work}/bad.raw`;
  await fs.writeFile(good, seededBytes(501, 1 * MiB));
  await fs.writeFile(bad, seededBytes(502, 1 * MiB));
  await backup(src, 'good', good, '2026-11-20T00:00:00Z');
  const before = new Set(await chunkIds(src));
  await backup(src, 'bad', bad, '2026-11-21T00:00:00Z');
  const victim = (await chunkIds(src)).find((id) => !before.has(id)) as string;
  const file = chunkPath(src, victim);
  const bytes = await fs.readFile(file);
  bytes[bytes.length - 20] = (bytes[bytes.length - 20] as number) ^ 0xff;
  await fs.writeFile(file, bytes);

  const result = await coffer(['sync', '-r', src, '--to', dst, '--json'], opts);
  assertExit(result, 11);
  const report = JSON.parse(result.stdout.toString('utf8')) as SyncJson;
  assert.deepEqual(report.snapshots.map((s) => [s.vm, s.status, s.error?.code]), [['good', 'copied', undefined], ['bad', 'failed', 'E_CORRUPT_OBJECT']]);
  assert.deepEqual(await fs.readdir(`${dst}/snapshots`), [report.snapshots[0]?.destination], 'only the good snapshot is in the destination');
  assertExit(await coffer(['verify', '-r', dst, '--read-data'], asDestination), 0);
});

test('errors are one line with the documented exit code', async () => {
  const src = `${work}/src1`;
  const dst = `${work}/dst1`;
  const cases: { args: string[]; env: Record<string, string>; code: number; message: RegExp }[] = [
    { args: ['sync', '-r', src], env, code: 2, message: /no destination given/ },
    { args: ['sync', '-r', src, '--to', dst], env: { COFFER_PASSWORD: SRC_PASS, COFFER_TO_PASSWORD: 'wrong' }, code: 12, message: /opens none of the/ },
    { args: ['sync', '-r', src, '--to', `${work}/nowhere`], env, code: 10, message: /not a Coffer repository/ },
    { args: ['sync', '-r', src, '--to', dst, '--limit-upload', 'fast'], env, code: 2, message: /--limit-upload fast/ },
    { args: ['sync', '-r', src, '--to', src], env: { COFFER_PASSWORD: SRC_PASS, COFFER_TO_PASSWORD: SRC_PASS }, code: 2, message: /same repository/ },
    // Written another way: a trailing slash and a detour, or a symbolic link to it.
    { args: ['sync', '-r', src, '--to', `${work}/../${work.split('/').at(-1) ?? ''}/src1/`], env: { COFFER_PASSWORD: SRC_PASS, COFFER_TO_PASSWORD: SRC_PASS }, code: 2, message: /same repository/ },
    { args: ['sync', '-r', src, '--to', `${work}/src1-link`], env: { COFFER_PASSWORD: SRC_PASS, COFFER_TO_PASSWORD: SRC_PASS }, code: 2, message: /same repository/ },
  ];
  await fs.symlink(src, `${work}/src1-link`);
  for (const c of cases) {
    const result = await coffer(c.args, { env: c.env });
    assertExit(result, c.code);
    assert.match(assertOneLineError(result), c.message);
  }
});

test('backup --limit-upload and restore --limit-download hold the repository traffic to the rate', async () => {
  const repo = `${work}/limited`;
  await init(repo, SRC_PASS);
  const disk = `${work}/limited.raw`;
  await fs.writeFile(disk, seededBytes(300, 3 * MiB)); // incompressible: 3 MiB stored
  // Lower bounds only (the limiter's accuracy is pinned by its unit test): without the limit
  // each run takes well under a second here; with it, 3 MiB less the first burst at 1 MiB/s.
  const least = ((3 * MiB - 256 * 1024) / MiB) * 0.85;
  let started = performance.now();
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'limited', '--limit-upload', '1M', disk], { env: { COFFER_PASSWORD: SRC_PASS } }), 0);
  const up = (performance.now() - started) / 1000;
  assert.ok(up >= least, `backup of 3 MiB took ${up.toFixed(2)} s under a 1 MiB/s upload limit`);
  const out = `${work}/limited-restored.raw`;
  started = performance.now();
  assertExit(await coffer(['restore', '-r', repo, 'latest', '--to', out, '--limit-download', '1M'], { env: { COFFER_PASSWORD: SRC_PASS } }), 0);
  const down = (performance.now() - started) / 1000;
  assert.ok(down >= least, `restore of 3 MiB took ${down.toFixed(2)} s under a 1 MiB/s download limit`);
  await assertSameBytes(out, disk);
});
