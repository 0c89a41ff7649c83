/**
 * `coffer sync --check` makes a damaged destination whole again, through the real CLI, for both
 * repository formats (other keys on each side): a chunk object (format 1) or a pack
 * (format 2) deleted in the destination is sent again by `sync --check` (a plain sync does
 * not look), a flipped byte by
 * `sync --read-data`; then `coffer verify --read-data` on the destination passes and the
 * copies restore byte for byte. A copy whose index page is gone fails (exit 11) saying to
 * forget it there, after which a sync copies it anew.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { seededBytes } from '../testing/index.js';
import { assertExit, assertSameBytes, coffer, cofferJson, makeWorkDir, removeDir } from './cli-harness.js';

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
  snapshots: { source: string; destination: string | null; status: string; chunksHealed?: number; error?: { code: string; message: string } }[];
  chunksChecked: number;
  chunksHealed: number;
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
    assert.ok(advice.includes(`copies made by coffer sync from ${src} that sync cannot mend (an index page lost, or a file snapshot): forget them here ('coffer forget -r ${dst} ${failed.map((f) => f.destination).join(' ')}'), then 'coffer sync -r ${src} --to ${dst}' copies them anew`), advice);
    assert.ok(!advice.includes('--check'), advice);
    for (const s of failed) assertExit(await coffer(['forget', '-r', dst, s.destination as string], asDestination), 0);
    const recopied = await cofferJson<SyncJson>(['sync', '-r', src, '--to', dst], opts);
    assert.deepEqual([recopied.copied, recopied.failed], [failed.length, 0]);
    assertExit(await coffer(['verify', '-r', dst, '--read-data'], asDestination), 0);
    await restoresByteForByte(dst, images, new Map(recopied.snapshots.map((s) => [s.source, s.destination as string])));
  });
}
