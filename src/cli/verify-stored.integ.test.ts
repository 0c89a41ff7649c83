/**
 * `coffer verify --stored` through the binary, on a local repository: the storage side checks
 * every object against the key holder's signed digests with no passphrase at all (no
 * COFFER_PASSWORD in its environment, nothing on stdin), and names each damaged, missing or
 * tampered object; a wrong --trust is refused; a pruned snapshot's objects are not "missing";
 * objects written before digests existed are "not covered", never damaged.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { seededBytes } from '../testing/index.js';
import { assertExit, assertOneLineError, chunkIds, chunkPath, coffer, cofferJson, makeWorkDir, removeDir, type BackupJson } from './cli-harness.js';

const keyHolder = { env: { COFFER_PASSWORD: 'stored verify test' }, timeoutMs: 120_000 };
/** The storage side: no passphrase anywhere. */
const storage = { env: {}, timeoutMs: 120_000 };
const MiB = 1 << 20;
let work: string;
/** A repository with two snapshots, copied for each test that damages it. */
let pristine: string;
let fingerprint: string;
let snapshots: BackupJson[];

interface StoredJson {
  ok: boolean;
  fingerprint: string;
  trusted: boolean;
  records: number;
  objectsRead: number;
  objectsIntact: number;
  damaged: { key: string; problem: string; message: string }[];
  notCovered: { key: string; size: number }[];
}

async function disk(version: number): Promise<string> {
  const file = join(work, `disk-${version}.raw`);
  // 2 MiB of its own (8 chunks) and 2 MiB shared by every version.
  await fs.writeFile(file, Buffer.concat([seededBytes(100 + version, 2 * MiB), seededBytes(7, 2 * MiB)]));
  return file;
}

before(async () => {
  work = await makeWorkDir('stored');
  pristine = join(work, 'pristine');
  // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
  const init = await cofferJson<{ storedDigestKey: string }>(['init', '--format', '1', '-r', pristine], keyHolder);
  fingerprint = init.storedDigestKey;
  assert.match(fingerprint, /^[0-9a-f]{64}$/);
  snapshots = [];
  for (const v of [0, 1]) snapshots.push(await cofferJson<BackupJson>(['backup', '-r', pristine, '--vm', 'vm1', '--time', `2026-11-2${v}T00:00:00Z`, await disk(v)], keyHolder));
});
after(() => removeDir(work));

async function copyOf(name: string): Promise<string> {
  const repo = join(work, name);
  await fs.cp(pristine, repo, { recursive: true });
  return repo;
}

async function verifyStored(repo: string, code: number, extra: string[] = []): Promise<StoredJson> {
  const result = await coffer(['verify', '--stored', '-r', repo, '--trust', fingerprint, '--json', ...extra], storage);
  assertExit(result, code);
  return JSON.parse(result.stdout.toString('utf8')) as StoredJson;
}

test('with no passphrase anywhere, every object is read and found intact', async () => {
  const report = await verifyStored(pristine, 0);
  assert.equal(report.ok, true);
  assert.equal(report.trusted, true);
  assert.equal(report.fingerprint, fingerprint);
  assert.deepEqual(report.damaged, []);
  assert.deepEqual(report.notCovered, []);
  // 16 + 8 chunks, pages, 2 manifests, config, the key file: every object was read.
  const chunks = (await chunkIds(pristine)).length;
  assert.equal(chunks, 24);
  assert.ok(report.objectsIntact >= chunks + 2 + 2 + 2, `${report.objectsIntact} objects intact`);
  assert.equal(report.objectsRead, report.objectsIntact);
  // The text form names the key and says all is well; the fingerprint matches the key holder's.
  const text = await coffer(['verify', '--stored', '-r', pristine, '--trust', `sha256:${fingerprint.toUpperCase()}`], storage);
  assertExit(text, 0);
  assert.match(text.stdout.toString(), new RegExp(`stored-digest key ${fingerprint} \\(trusted\\)`));
  assert.match(text.stdout.toString(), /all \d+ covered object\(s\) are intact/);
  const keys = await coffer(['key', 'list', '-r', pristine], keyHolder);
  assertExit(keys, 0);
  assert.match(keys.stdout.toString(), new RegExp(`stored-digest key fingerprint ${fingerprint}`));
  const stored = await coffer(['verify', '--stored-key', '-r', pristine], storage);
  assertExit(stored, 0);
  assert.equal(stored.stdout.toString(), `${fingerprint}\n`);
});

test('without --trust it still checks, and warns that the key is unverified', async () => {
  const result = await coffer(['verify', '--stored', '-r', pristine], storage);
  assertExit(result, 0);
  assert.match(result.stderr, /warning: this key was not checked/);
});

test('a flipped byte in a chunk, a truncated index page and a deleted manifest are each named', async () => {
  const repo = await copyOf('damaged');
  const chunk = (await chunkIds(repo))[5] as string;
  const file = chunkPath(repo, chunk);
  const bytes = await fs.readFile(file);
  bytes.writeUInt8(bytes.readUInt8(bytes.length >> 1) ^ 0x40, bytes.length >> 1);
  await fs.writeFile(file, bytes);
  const fan = (await fs.readdir(join(repo, 'indexes')))[0] as string;
  const page = (await fs.readdir(join(repo, 'indexes', fan)))[0] as string;
  const pageFile = join(repo, 'indexes', fan, page);
  await fs.truncate(pageFile, (await fs.stat(pageFile)).size - 10);
  const manifest = `snapshots/${(snapshots[0] as BackupJson).id}`;
  await fs.rm(join(repo, manifest));

  const report = await verifyStored(repo, 13);
  assert.equal(report.ok, false);
  const byKey = new Map(report.damaged.map((d) => [d.key, d.problem]));
  assert.equal(byKey.get(`chunks/${chunk.slice(0, 2)}/${chunk}`), 'corrupt');
  assert.equal(byKey.get(`indexes/${fan}/${page}`), 'wrong-length');
  assert.equal(byKey.get(manifest), 'missing');
  assert.equal(report.damaged.length, 3, JSON.stringify(report.damaged));
  const text = await coffer(['verify', '--stored', '-r', repo, '--trust', fingerprint], storage);
  assertExit(text, 13);
  assert.match(text.stdout.toString(), new RegExp(`DAMAGED chunks/${chunk.slice(0, 2)}/${chunk} \\(corrupt\\)`));
  assert.match(text.stdout.toString(), new RegExp(`DAMAGED ${manifest} \\(missing\\)`));
});

test('a tampered digest record is named: re-hashed, its signature fails; left as is, its name does', async () => {
  const repo = await copyOf('tampered');
  const records = await fs.readdir(join(repo, 'digests'));
  // The biggest record holds the first backup's chunks.
  const sizes = await Promise.all(records.map(async (name) => ({ name, size: (await fs.stat(join(repo, 'digests', name))).size })));
  sizes.sort((a, b) => b.size - a.size);
  const big = sizes[0] as { name: string };
  const other = sizes[1] as { name: string };
  // The attacker replaces a chunk and fixes the record to match: a new hash, a new name.
  const bytes = await fs.readFile(join(repo, 'digests', big.name));
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 80) ^ 1, bytes.length - 80); // inside the last entry's SHA-256
  const renamed = createHash('sha256').update(bytes).digest('hex');
  await fs.rm(join(repo, 'digests', big.name));
  await fs.writeFile(join(repo, 'digests', renamed), bytes);
  // And damages another record in place.
  const second = await fs.readFile(join(repo, 'digests', other.name));
  second.writeUInt8(second.readUInt8(60) ^ 1, 60);
  await fs.writeFile(join(repo, 'digests', other.name), second);

  const report = await verifyStored(repo, 13);
  const byKey = new Map(report.damaged.map((d) => [d.key, d.problem]));
  assert.equal(byKey.get(`digests/${renamed}`), 'bad-signature');
  assert.equal(byKey.get(`digests/${other.name}`), 'corrupt-record');
  // Their objects are no longer vouched for: reported as not covered, not as intact.
  assert.ok(report.notCovered.length > 0);
});

test('a --trust fingerprint other than the stored key is refused; a malformed one is a usage error', async () => {
  const wrong = await coffer(['verify', '--stored', '-r', pristine, '--trust', 'ab'.repeat(32)], storage);
  assertExit(wrong, 13);
  assert.match(assertOneLineError(wrong), /not the trusted abab.*refusing/);
  // A storage-side attacker who swaps the key (and re-signs the records with their own) is refused too.
  const repo = await copyOf('swapped');
  await fs.writeFile(join(repo, 'stored-digest-key'), `${JSON.stringify({ version: 1, algorithm: 'ed25519', publicKey: 'cd'.repeat(32) })}\n`);
  const swapped = await coffer(['verify', '--stored', '-r', repo, '--trust', fingerprint], storage);
  assertExit(swapped, 13);
  assert.match(assertOneLineError(swapped), /refusing/);
  const malformed = await coffer(['verify', '--stored', '-r', pristine, '--trust', 'xyz'], storage);
  assertExit(malformed, 2);
  assert.match(assertOneLineError(malformed), /64 hex/);
  const misplaced = await coffer(['verify', '-r', pristine, '--trust', fingerprint], keyHolder);
  assertExit(misplaced, 2);
});

test('after forget and prune, the pruned objects are not reported missing', async () => {
  const repo = await copyOf('pruned');
  const before = (await chunkIds(repo)).length;
  const forgotten = await cofferJson<{ removed: unknown[] }>(['forget', '-r', repo, '--keep-last', '1', '--prune'], keyHolder);
  assert.equal(forgotten.removed.length, 1);
  assert.equal((await chunkIds(repo)).length, before - 8);
  const report = await verifyStored(repo, 0);
  assert.deepEqual(report.damaged, []);
  assert.deepEqual(report.notCovered, []);
});

test('objects written before digests existed are "not covered", never damaged; --strict counts them', async () => {
  // A repository as an older Coffer left it: no digest records, no key.
  const repo = await copyOf('older');
  await fs.rm(join(repo, 'digests'), { recursive: true });
  await fs.rm(join(repo, 'stored-digest-key'));
  const none = await coffer(['verify', '--stored', '-r', repo], storage);
  assertExit(none, 13);
  assert.match(assertOneLineError(none), /no stored-digest-key/);
  // The first backup by a key holder records its own objects (and stores the same key).
  await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'vm1', '--time', '2026-11-23T00:00:00Z', await disk(2)], keyHolder);
  const report = await verifyStored(repo, 0);
  assert.deepEqual(report.damaged, []);
  const uncovered = new Set(report.notCovered.map((o) => o.key));
  assert.ok(uncovered.has('config'));
  assert.ok(uncovered.has(`snapshots/${(snapshots[0] as BackupJson).id}`));
  // The third version's 8 new chunks are covered; the 24 older ones are not (reused, never rewritten).
  assert.equal((await chunkIds(repo)).length, 32);
  assert.equal([...uncovered].filter((key) => key.startsWith('chunks/')).length, 24);
  await verifyStored(repo, 13, ['--strict']);

  // The key holder covers them, after authenticating each: all but one damaged old chunk.
  const old = [...uncovered].filter((key) => key.startsWith('chunks/')).sort()[3] as string;
  const file = join(repo, old);
  const bytes = await fs.readFile(file);
  bytes.writeUInt8(bytes.readUInt8(40) ^ 1, 40);
  await fs.writeFile(file, bytes);
  const cover = await coffer(['verify', '--cover-stored', '-r', repo, '--json'], keyHolder);
  assertExit(cover, 13);
  const covered = JSON.parse(cover.stdout.toString()) as { objectsCovered: number; skipped: { key: string; reason: string }[] };
  assert.deepEqual(covered.skipped.map((s) => s.key), [old]);
  assert.match((covered.skipped[0] as { reason: string }).reason, /does not authenticate/);
  assert.equal(covered.objectsCovered, uncovered.size - 1);
  const after = await verifyStored(repo, 0);
  assert.deepEqual(after.damaged, []);
  assert.deepEqual(after.notCovered.map((o) => o.key), [old]);
  // Once repaired (the chunk set aside and stored again by a backup), --strict passes.
  await fs.rm(file);
  assertExit(await coffer(['verify', '--cover-stored', '-r', repo], keyHolder), 0);
  await verifyStored(repo, 0, ['--strict']);
});

test('an unencrypted repository has no signed digests: a one-line usage error', async () => {
  const repo = join(work, 'plain');
  assertExit(await coffer(['init', '--format', '1', '-r', repo, '--insecure-no-encryption'], storage), 0);
  const result = await coffer(['verify', '--stored', '-r', repo], storage);
  assertExit(result, 2);
  assert.match(assertOneLineError(result), /not encrypted/);
});

test('copies keep their digests: a sync destination and a tape imported into an empty folder verify whole', async () => {
  const dest = join(work, 'synced');
  const destInit = await cofferJson<{ storedDigestKey: string }>(['init', '--format', '1', '-r', dest], { ...keyHolder, env: { COFFER_PASSWORD: 'other' } });
  assert.notEqual(destInit.storedDigestKey, fingerprint);
  assertExit(await coffer(['sync', '-r', pristine, '--to', dest], { ...keyHolder, env: { ...keyHolder.env, COFFER_TO_PASSWORD: 'other' } }), 0);
  const synced = await coffer(['verify', '--stored', '-r', dest, '--trust', destInit.storedDigestKey, '--json', '--strict'], storage);
  assertExit(synced, 0);
  const syncedReport = JSON.parse(synced.stdout.toString()) as StoredJson;
  assert.ok(syncedReport.objectsIntact > 24, `${syncedReport.objectsIntact} objects intact`);

  const tape = join(work, 'tape.tar');
  assertExit(await coffer(['tape', 'export', '-r', pristine, 'vm1:latest', '--to', tape], keyHolder), 0);
  const imported = join(work, 'imported');
  assertExit(await coffer(['tape', 'import', '-r', imported, '--from', tape], keyHolder), 0);
  // The same master key, so the same signing key: the key holder's fingerprint still holds.
  const report = await verifyStored(imported, 0, ['--strict']);
  assert.deepEqual(report.notCovered, []);
  assert.ok(report.objectsIntact >= 16 + 1 + 2, `${report.objectsIntact} objects intact`);
});
