/**
 * `coffer sync --check` makes a damaged destination whole again, through the real CLI, for both
 * repository formats (other keys on each side): a chunk object (format 1) or a pack
 * (format 2) deleted in the destination is sent again by `sync --check` (a plain sync does
 * not look), a flipped byte by
 * `sync --read-data`; then `coffer verify --read-data` on the destination passes and the
 * copies restore byte for byte. A copy whose index page is gone fails (exit 11) saying to
 * forget it there, after which a sync copies it anew. A file snapshot's copy is mended the
 * same way (verify says so): a content chunk damaged there by `sync --read-data`, a tree by
 * `sync --check`; when the source has lost the data too, the sync fails with exit 11.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { seededBytes } from '../testing/index.js';
import { assertExit, assertSameBytes, coffer, cofferJson, makeWorkDir, removeDir, runTool } from './cli-harness.js';

const MiB = 1 << 20;
const SRC_PASS = 'heal source passphrase';
const DST_PASS = 'heal destination passphrase';
const opts = { env: { COFFER_PASSWORD: SRC_PASS, COFFER_TO_PASSWORD: DST_PASS }, timeoutMs: 120_000 };
const asSource = { env: { COFFER_PASSWORD: SRC_PASS }, timeoutMs: 120_000 };
const asDestination = { env: { COFFER_PASSWORD: DST_PASS }, timeoutMs: 120_000 };

/** `coffer sync --json`, the fields this file reads. */
interface SyncJson {
  copied: number;
  present: number;
  healed: number;
  failed: number;
  snapshots: { source: string; destination: string | null; status: string; chunksHealed?: number; treesHealed?: number; error?: { code: string; message: string } }[];
  chunksChecked: number;
  chunksHealed: number;
  treesHealed: number;
  chunksRead: number;
  bytesRead: number;
}

let work: string;
before(async () => {
  work = await makeWorkDir('sync-heal');
});
after(() => removeDir(work));

/** The files of `dir/prefix` (chunks/, packs/ or indexes/), sorted. */
async function objects(dir: string, prefix: string): Promise<string[]> {
  const files: string[] = [];
  for (const fan of await fs.readdir(join(dir, prefix)).catch(() => [])) for (const name of await fs.readdir(join(dir, prefix, fan))) files.push(join(dir, prefix, fan, name));
  return files.sort();
}

/** Restores every copy in `dst` and compares it with the disk image it was made from. */
async function restoresByteForByte(dst: string, images: Map<string, string>, copies: Map<string, string>): Promise<void> {
  for (const [source, copy] of copies) {
    const out = join(work, `restored-${copy.slice(0, 8)}.raw`);
    assertExit(await coffer(['restore', '-r', dst, copy, '--to', out], asDestination), 0);
    await assertSameBytes(out, images.get(source) as string, `copy ${copy.slice(0, 8)}`);
    await fs.rm(out);
  }
}

for (const format of [1, 2] as const) {
  test(`format ${format}: a ${format === 1 ? 'chunk' : 'pack'} deleted in the destination is sent again by sync --check, a flipped byte by sync --read-data; verify --read-data passes and the copies restore byte for byte`, async () => {
    const src = join(work, `src${format}`);
    const dst = join(work, `dst${format}`);
    assertExit(await coffer(['init', '--format', String(format), '-r', src, '--block-size', '256K'], asSource), 0);
    assertExit(await coffer(['init', '--format', String(format), '-r', dst, '--block-size', '256K'], asDestination), 0);
    const images = new Map<string, string>();
    for (const [i, time] of ['2026-11-20T00:00:00Z', '2026-11-21T00:00:00Z'].entries()) {
      const image = join(work, `disk${format}-${i}.raw`);
      await fs.writeFile(image, Buffer.concat([seededBytes(100 + i, 2 * MiB), seededBytes(7, 4 * MiB), Buffer.alloc(2 * MiB)]));
      const made = await cofferJson<{ id: string }>(['backup', '-r', src, '--vm', 'web', '--time', time, image], asSource);
      images.set(made.id, image);
    }
    const first = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst], opts);
    assert.equal(first.copied, 2);
    const copies = new Map(first.snapshots.map((s) => [s.source, s.destination as string]));

    // Deleted by hand (or lost by the storage): the listing shows it gone, the next sync sends it again.
    await fs.rm((await objects(dst, format === 1 ? 'chunks' : 'packs'))[0] as string);
    const broken = await coffer(['verify', '-r', dst], asDestination);
    assertExit(broken, 13);
    assert.ok(broken.stdout.toString().includes(`are copies made by coffer sync from ${src}: 'coffer sync -r ${src} --to ${dst} --check' sends what is missing here again`), broken.stdout.toString());
    const unchecked = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst], opts);
    assert.deepEqual([unchecked.present, unchecked.chunksChecked], [2, 0], 'a plain sync does not read the copies there');
    const healed = await coffer(['sync', '-r', src, '--to', dst, '--check'], opts);
    assertExit(healed, 0);
    const text = healed.stdout.toString('utf8');
    assert.match(text, /^0 snapshot\(s\) copied, \d already there, [12] healed, 0 failed$/m);
    assert.match(text, /^healed  [0-9a-f]{8} → [0-9a-f]{8}  web  \S+: \d+ chunk\(s\) missing or damaged in the destination, sent again$/m);
    assertExit(await coffer(['verify', '-r', dst, '--read-data'], asDestination), 0);
    await restoresByteForByte(dst, images, copies);

    // Whole again: the next sync reads nothing from the source.
    const whole = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst, '--read-data'], opts);
    assert.deepEqual([whole.present, whole.healed, whole.chunksHealed, whole.chunksRead, whole.bytesRead], [2, 0, 0, 0, 0]);
    assert.ok(whole.chunksChecked > 0);

    // A flipped byte: only --read-data sees it (or verify --read-data, which in format 1 sets
    // the chunk aside, so that it is missing for the listing too).
    const file = (await objects(dst, format === 1 ? 'chunks' : 'packs')).at(-1) as string;
    const bytes = await fs.readFile(file);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0x40;
    await fs.writeFile(file, bytes);
    const listed = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst, '--check'], opts);
    assert.deepEqual([listed.present, listed.chunksHealed], [2, 0], 'a listing does not read bytes');
    assertExit(await coffer(['verify', '-r', dst, '--read-data'], asDestination), 13);
    const read = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst, '--read-data'], opts);
    assert.deepEqual([read.failed, read.copied], [0, 0]);
    assert.ok(read.healed >= 1 && read.chunksHealed >= 1, `${read.healed} copies and ${read.chunksHealed} chunks healed`);
    assert.ok(read.snapshots.every((s) => s.status === 'present' || (s.status === 'healed' && (s.chunksHealed ?? 0) > 0)));
    assertExit(await coffer(['verify', '-r', dst, '--read-data'], asDestination), 0);
    await restoresByteForByte(dst, images, copies);

    // An index page of a copy gone: not rebuilt here; forget the copy there and sync again.
    await fs.rm((await objects(dst, 'indexes'))[0] as string);
    const pageGone = await coffer(['sync', '-r', src, '--to', dst, '--check', '--json'], opts);
    assertExit(pageGone, 11);
    const gone = JSON.parse(pageGone.stdout.toString('utf8')) as SyncJson;
    const failed = gone.snapshots.filter((s) => s.status === 'failed');
    assert.ok(failed.length >= 1);
    assert.match(failed[0]?.error?.message ?? '', /sync does not rebuild a copy's index pages: forget the copy there \('coffer forget -r .* [0-9a-f]{64}'\) and sync again/);
    const pageGoneText = await coffer(['sync', '-r', src, '--to', dst, '--check'], opts);
    assertExit(pageGoneText, 11);
    assert.match(pageGoneText.stdout.toString('utf8'), /^checked \d+ chunk\(s\) of the copies already there: \d cop(y|ies) could not be made whole \(FAILED below\)$/m, 'not "all held"');
    // verify says the same: not 'sync --check' (it cannot mend this), but forget and sync again.
    const pageVerify = await coffer(['verify', '-r', dst], asDestination);
    assertExit(pageVerify, 13);
    const advice = pageVerify.stdout.toString('utf8');
    assert.ok(advice.includes(`copies made by coffer sync from ${src} that sync cannot mend (an index page lost): forget them here ('coffer forget -r ${dst} ${failed.map((f) => f.destination).join(' ')}'), then 'coffer sync -r ${src} --to ${dst}' copies them anew`), advice);
    assert.ok(!advice.includes('--check'), advice);
    for (const s of failed) assertExit(await coffer(['forget', '-r', dst, s.destination as string], asDestination), 0);
    const recopied = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst], opts);
    assert.deepEqual([recopied.copied, recopied.failed], [failed.length, 0]);
    assertExit(await coffer(['verify', '-r', dst, '--read-data'], asDestination), 0);
    await restoresByteForByte(dst, images, new Map(recopied.snapshots.map((s) => [s.source, s.destination as string])));
  });
}

/** The files of `dir`'s tree by path, largest first (a format 2 repository: its biggest pack holds file chunks, its smallest trees). */
async function bySize(dir: string, prefix: string): Promise<string[]> {
  const files = await objects(dir, prefix);
  const sizes = new Map(await Promise.all(files.map(async (file) => [file, (await fs.stat(file)).size] as const)));
  return files.sort((a, b) => (sizes.get(b) as number) - (sizes.get(a) as number));
}

async function flipMiddle(file: string): Promise<void> {
  const bytes = await fs.readFile(file);
  bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0x40;
  await fs.writeFile(file, bytes);
}

/** Restores file snapshot `copy` from `dst` and compares it with `tree` (diff -r). */
async function filesRestore(dst: string, copy: string, tree: string): Promise<void> {
  const out = join(work, `files-${copy.slice(0, 8)}`);
  await fs.rm(out, { recursive: true, force: true });
  assertExit(await coffer(['restore', '-r', dst, copy, '--to', out], asDestination), 0);
  const diff = await runTool('diff', ['-r', tree, join(out, tree)]);
  assert.equal(diff.code, 0, diff.stdout + diff.stderr);
  await fs.rm(out, { recursive: true });
}

// Through the binary for format 2, the default; repo/sync/sync-heal-files.test.ts mends file
// snapshot copies between every pair of formats (a second run here cost ~15 s of the suite).
for (const format of [2] as (1 | 2)[]) {
  test(`format ${format}: a file snapshot's copy is mended too: a damaged content chunk by sync --read-data, a damaged tree by sync --check (verify says so); a source that lost the data too fails with exit 11`, async () => {
    const src = join(work, `files-src${format}`);
    const dst = join(work, `files-dst${format}`);
    assertExit(await coffer(['init', '--format', String(format), '-r', src], asSource), 0);
    assertExit(await coffer(['init', '--format', String(format), '-r', dst], asDestination), 0);
    const tree = join(work, `files-tree${format}`);
    await fs.mkdir(join(tree, 'etc', 'app'), { recursive: true });
    await fs.writeFile(join(tree, 'big.bin'), seededBytes(300 + format, 3 * MiB));
    await fs.writeFile(join(tree, 'etc', 'app', 'conf'), 'key = value\n');
    await fs.writeFile(join(tree, 'etc', 'hosts'), '127.0.0.1 localhost\n');
    await cofferJson<{ id: string }>(['backup', '-r', src, '--files', tree, '--host', 'files'], asSource);
    const first = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst], opts);
    assert.equal(first.copied, 1);
    const copy = first.snapshots[0]?.destination as string;

    // A content chunk damaged (format 1: the biggest chunk object; format 2: the biggest pack, of file chunks).
    await flipMiddle((await bySize(dst, format === 1 ? 'chunks' : 'packs'))[0] as string);
    const rotten = await coffer(['verify', '-r', dst, '--read-data'], asDestination);
    assertExit(rotten, 13);
    assert.ok(rotten.stdout.toString().includes(`'coffer sync -r ${src} --to ${dst} --check' sends what is missing here again`), rotten.stdout.toString());
    assert.ok(!rotten.stdout.toString().includes('cannot mend'), rotten.stdout.toString());
    const healed = await coffer(['sync', '-r', src, '--to', dst, '--read-data'], opts);
    assertExit(healed, 0);
    assert.match(healed.stdout.toString('utf8'), /^healed  [0-9a-f]{8} → [0-9a-f]{8}  files  \S+: \d+ chunk\(s\) missing or damaged in the destination, sent again$/m);
    assertExit(await coffer(['verify', '-r', dst, '--read-data'], asDestination), 0);
    await filesRestore(dst, copy, tree);

    // A tree damaged (format 1: a tree object; format 2: the smallest pack, of trees): every check reads the trees.
    await flipMiddle((await bySize(dst, format === 1 ? 'trees' : 'packs')).at(-1) as string);
    const treeBroken = await coffer(['verify', '-r', dst], asDestination);
    assertExit(treeBroken, 13);
    assert.ok(treeBroken.stdout.toString().includes(`'coffer sync -r ${src} --to ${dst} --check' sends what is missing here again`), treeBroken.stdout.toString());
    const mended = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst, '--check'], opts);
    assert.deepEqual([mended.healed, mended.failed, mended.snapshots[0]?.status], [1, 0, 'healed'], JSON.stringify(mended));
    assert.ok(mended.treesHealed >= 1 && (mended.snapshots[0]?.treesHealed ?? 0) >= 1, JSON.stringify(mended));
    assertExit(await coffer(['verify', '-r', dst, '--read-data'], asDestination), 0);
    await filesRestore(dst, copy, tree);
    const whole = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst, '--read-data'], opts);
    assert.deepEqual([whole.present, whole.chunksHealed, whole.treesHealed, whole.bytesRead], [1, 0, 0, 0]);

    // The source has lost the data too: the copy stays broken, exit 11 (the source's damage).
    await flipMiddle((await bySize(src, format === 1 ? 'chunks' : 'packs'))[0] as string);
    for (const file of await objects(dst, format === 1 ? 'chunks' : 'packs')) await fs.rm(file);
    const lost = await coffer(['sync', '-r', src, '--to', dst, '--check'], opts);
    assertExit(lost, 11);
    assert.match(lost.stdout.toString('utf8'), /^FAILED  [0-9a-f]{8} → [0-9a-f]{8}  files  /m);
  });
}
