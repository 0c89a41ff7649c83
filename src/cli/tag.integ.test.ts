/**
 * `coffer tag` through the `coffer` binary, on a format 2 and a format 1 repository: tags
 * added, removed, set and cleared on several snapshots after the fact, as tag records under
 * `tags/` (one per snapshot: superseded ones removed; no note); `snapshots --json`
 * shows the effective tags (and the manifest's as `originalTags`); `forget --keep-tag` keeps a
 * snapshot tagged after the fact and would remove it once the tag is gone; a bad tag, a bad
 * combination and an unknown snapshot are one-line usage errors that change nothing.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { seededBytes } from '../testing/index.js';
import { assertExit, assertOneLineError, coffer, cofferJson, makeWorkDir, removeDir, type BackupJson, type ForgetPolicyJson, type SnapshotJson } from './cli-harness.js';

const ENV = { env: { COFFER_PASSWORD: 'tags' } };

type Tagged = SnapshotJson & { originalTags?: string[]; tagsSetAt?: string };
interface TagJson {
  snapshots: { id: string; tags: string[]; previousTags: string[]; changed: boolean; originalTags?: string[] }[];
}

let work: string;
before(async () => {
  work = await makeWorkDir('tag');
});
after(() => removeDir(work));

/** A repository of `format` with three snapshots of VM web (the first two tagged nightly), oldest first. */
async function history(name: string, format: 1 | 2): Promise<{ repo: string; ids: [string, string, string] }> {
  const repo = join(work, name);
  await cofferJson(['init', '-r', repo, '--format', String(format), '--block-size', '64K'], ENV);
  const ids: string[] = [];
  for (const [i, day] of ['20', '21', '22'].entries()) {
    const image = join(work, `${name}-${i}.raw`);
    await writeFile(image, seededBytes(10 * format + i, 64 * 1024));
    const tags = i < 2 ? ['--tag', 'nightly'] : [];
    ids.push((await cofferJson<BackupJson>(['backup', '-r', repo, '--vm', 'web', '--time', `2026-11-${day}T01:00:00Z`, ...tags, image], ENV)).id);
  }
  return { repo, ids: ids as [string, string, string] };
}

const listed = async (repo: string) => new Map((await cofferJson<Tagged[]>(['snapshots', '-r', repo], ENV)).map((s) => [s.id, s]));
const keepTag = async (repo: string) =>
  new Map((await cofferJson<ForgetPolicyJson>(['forget', '-r', repo, '--keep-last', '1', '--keep-tag', 'legal-hold', '--dry-run'], ENV)).vms.flatMap((g) => g.snapshots).map((s) => [s.id, s]));

for (const format of [2, 1] as const) {
  test(`format ${format}: tags added, removed, set and cleared after the fact are what snapshots and forget --keep-tag see`, async () => {
    const { repo, ids } = await history(`format${format}`, format);
    const [first, second, third] = ids;

    const added = await cofferJson<TagJson>(['tag', '-r', repo, first.slice(0, 8), second, '--add', 'legal-hold', '--add', 'incident-4711'], ENV);
    assert.deepEqual(added.snapshots.map((s) => [s.id, s.tags, s.previousTags, s.changed, s.originalTags]), [
      [first, ['nightly', 'legal-hold', 'incident-4711'], ['nightly'], true, ['nightly']],
      [second, ['nightly', 'legal-hold', 'incident-4711'], ['nightly'], true, ['nightly']],
    ]);
    // One tag record per snapshot tagged, under tags/, named by the snapshot; no note.
    const stored = async (folder: string) => (await readdir(join(repo, folder)).catch(() => [] as string[])).filter((name) => !name.startsWith('.'));
    assert.deepEqual((await stored('tags')).map((name) => name.slice(0, 64)).sort(), [first, second].sort());
    assert.deepEqual(await stored('notes'), []);
    let now = await listed(repo);
    assert.deepEqual(now.get(first)?.tags, ['nightly', 'legal-hold', 'incident-4711']);
    assert.deepEqual(now.get(first)?.originalTags, ['nightly'], 'the manifest\'s own tags stay visible');
    assert.ok(now.get(first)?.tagsSetAt !== undefined);
    assert.deepEqual([now.get(third)?.tags, now.get(third)?.originalTags, now.get(third)?.tagsSetAt], [[], undefined, undefined], 'an untagged snapshot is as backed up');
    // Kept by its tag (the newest by --keep-last 1); the untagged middle one would go.
    let kept = await keepTag(repo);
    assert.deepEqual(kept.get(first)?.reasons, ['tag legal-hold']);

    assertExit(await coffer(['tag', '-r', repo, first, '--remove', 'incident-4711'], ENV), 0);
    assertExit(await coffer(['tag', '-r', repo, second, '--set', 'before-upgrade,audit'], ENV), 0);
    assertExit(await coffer(['tag', '-r', repo, 'web:latest', '--add', 'nightly'], ENV), 0);
    now = await listed(repo);
    assert.deepEqual([now.get(first)?.tags, now.get(second)?.tags, now.get(third)?.tags], [['nightly', 'legal-hold'], ['before-upgrade', 'audit'], ['nightly']]);
    assert.equal((await stored('tags')).length, 3, 'each snapshot\'s superseded records are gone');
    kept = await keepTag(repo);
    assert.deepEqual([first, second, third].map((id) => [kept.get(id)?.keep, kept.get(id)?.reasons]), [[true, ['tag legal-hold']], [false, []], [true, ['newest', 'last 1']]]);

    // The hold removed: the next forget would remove it.
    assertExit(await coffer(['tag', '-r', repo, first, '--remove', 'legal-hold'], ENV), 0);
    assert.equal((await keepTag(repo)).get(first)?.keep, false);

    // --set '' and --clear empty the list; the manifest still says what the backup was tagged.
    const cleared = await cofferJson<TagJson>(['tag', '-r', repo, first, '--set', ''], ENV);
    assert.deepEqual(cleared.snapshots[0]?.tags, []);
    assertExit(await coffer(['tag', '-r', repo, second, '--clear'], ENV), 0);
    now = await listed(repo);
    assert.deepEqual([now.get(first)?.tags, now.get(first)?.originalTags, now.get(second)?.tags], [[], ['nightly'], []]);
    // Asking for what is already so writes nothing.
    assert.equal((await cofferJson<TagJson>(['tag', '-r', repo, second, '--remove', 'audit'], ENV)).snapshots[0]?.changed, false);
  });
}

test('a tag record that does not open keeps its snapshot under a tag rule (its hold may be in it), with a warning; without a tag rule it decides nothing', async () => {
  const { repo, ids } = await history('damaged', 2);
  const [first] = ids;
  assertExit(await coffer(['tag', '-r', repo, first, '--add', 'legal-hold'], ENV), 0);
  const [record] = (await readdir(join(repo, 'tags'))).filter((name) => name.startsWith(first));
  assert.ok(record !== undefined);
  const bytes = await readFile(join(repo, 'tags', record));
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff; // its AEAD tag
  await writeFile(join(repo, 'tags', record), bytes);
  const forget = await coffer(['forget', '-r', repo, '--keep-last', '1', '--keep-tag', 'legal-hold', '--dry-run', '--json'], ENV);
  assertExit(forget, 0);
  const decided = new Map((JSON.parse(forget.stdout.toString('utf8')) as ForgetPolicyJson).vms.flatMap((g) => g.snapshots).map((s) => [s.id, s]));
  assert.deepEqual([decided.get(first)?.keep, decided.get(first)?.reasons], [true, ['tags unreadable']], 'kept: the damaged record may hold its legal hold');
  assert.match(forget.stderr.toString(), new RegExp(`warning: a tag record of snapshot ${first.slice(0, 8)} does not open: its tags are unknown, so a tag rule keeps it`));
  const noTagRule = await cofferJson<ForgetPolicyJson>(['forget', '-r', repo, '--keep-last', '1', '--dry-run'], ENV);
  assert.equal(noTagRule.vms.flatMap((g) => g.snapshots).find((s) => s.id === first)?.keep, false, 'no tag rule: its tags decide nothing');
});

test('a bad tag, a bad combination and an unknown snapshot are one-line usage errors (exit 2) that change nothing', async () => {
  const { repo, ids } = await history('errors', 2);
  const cases: [string[], RegExp][] = [
    [['--add', 'bad\ttag'], /tag "bad\\ttag" is not 1 to 200 printable characters/],
    [['--add', 'x'.repeat(201)], /is not 1 to 200 printable characters/],
    [['--set', 'a,,b'], /an empty tag between commas/],
    [['--add', 'a', '--remove', 'a'], /both added and removed/],
    [['--set', 'a', '--add', 'b'], /do not go with --add or --remove/],
    [[], /say how to change the tags/],
  ];
  for (const [options, message] of cases) {
    const result = await coffer(['tag', '-r', repo, ids[0], ...options], ENV);
    assertExit(result, 2);
    assert.match(assertOneLineError(result), message);
  }
  // The unknown one is the second: the first is not changed either.
  const unknown = await coffer(['tag', '-r', repo, ids[0], 'feedface', '--add', 'x'], ENV);
  assertExit(unknown, 2);
  assert.match(assertOneLineError(unknown), /no snapshot feedface/);
  assert.deepEqual((await listed(repo)).get(ids[0])?.tags, ['nightly']);
});
