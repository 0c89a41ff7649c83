/**
 * A repository served by a real `coffer serve-repo` (HTTPS, self-signed certificate pinned
 * through COFFER_REPO_FINGERPRINT), used by the `coffer` binary with `-r https://…`: an agent
 * with an append-only token backs up, restores byte for byte and lists files; it cannot forget,
 * prune or retag (`coffer tag`, nor a raw put or delete under `tags/`: the server refuses it;
 * a `tags` note it writes changes nothing), so `forget --keep-tag` keeps what the
 * administrator tagged; it sees its own snapshots' effective tags, a second agent sees none of
 * its snapshots; the administrator's full token forgets and prunes. And the one-line
 * refusals: no token, a wrong token, a wrong fingerprint.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isCofferError } from '../errors/index.js';
import { addSnapshotNote, HttpBackend, openRepository, parseHttpLocation, writeTagRecord } from '../repo/index.js';
import { buildExt4Disk, requireTools, startTestRepoServer, type PartitionedDisk, type TestRepoServer } from '../testing/index.js';
import { assertExit, assertOneLineError, assertSameBytes, coffer, cofferJson, makeWorkDir, removeDir, type BackupJson, type ForgetPolicyJson } from './cli-harness.js';

const MiB = 1 << 20;
let work: string;
let disk: PartitionedDisk;
let server: TestRepoServer;
let url: string;
const tokenFile = (name: string) => join(work, `${name}.token`);

before(async () => {
  await requireTools('sfdisk', 'mke2fs');
  [work, disk] = await Promise.all([makeWorkDir('repo-server'), buildExt4Disk({ name: 'repo-server-gpt', size: 64 * MiB, label: 'gpt', partitionSizeMiB: 48, files: 'small' })]);
  const local = join(work, 'repo');
  const packed = join(work, 'repo-v2');
  assertExit(await coffer(['init', '-r', local], { env: { COFFER_PASSWORD: 'served' } }), 0);
  assertExit(await coffer(['init', '-r', packed, '--format', '2'], { env: { COFFER_PASSWORD: 'served' } }), 0);
  server = await startTestRepoServer({
    stateDir: join(work, 'state'),
    repos: { vms: local, packed },
    tokens: [{ name: 'admin' }, { name: 'web01', appendOnly: true }, { name: 'web02', appendOnly: true }],
  });
  url = `${server.origin}/vms`;
  for (const [name, secret] of Object.entries(server.tokens)) await writeFile(tokenFile(name), `${secret}\n`, { mode: 0o600 });
});
after(async () => {
  await server?.stop();
  if (work !== undefined) await removeDir(work);
});

const env = () => ({ COFFER_PASSWORD: 'served', COFFER_REPO_FINGERPRINT: server.fingerprint, XDG_CACHE_HOME: join(work, 'cache') });
const as = (name: string, args: string[], repo = url) => [...args, '-r', repo, '--repo-token-file', tokenFile(name)];

test('an append-only agent backs up, restores and lists files; it cannot forget, prune or retag (the server refuses it tag records), so forget --keep-tag keeps the hold an administrator set; another agent sees nothing; the administrator forgets and prunes', async () => {
  const backup = await cofferJson<BackupJson>(as('web01', ['backup', '--vm', 'web01', disk.path]), { env: env(), timeoutMs: 120_000 });
  const restored = join(work, 'restored.raw');
  assertExit(await coffer(as('web01', ['restore', 'web01:latest', '--to', restored]), { env: env(), timeoutMs: 120_000 }), 0);
  await assertSameBytes(restored, disk.path);
  const listing = await coffer(as('web01', ['files', 'web01:latest', 'ls', 'p1:/etc']), { env: env() });
  assertExit(listing, 0);
  assert.match(listing.stdout.toString('utf8'), /file-1\.txt/);
  // A second backup through the same token finds its parent (its own snapshots are listed).
  const second = await cofferJson<BackupJson>(as('web01', ['backup', '--vm', 'web01', disk.path]), { env: env(), timeoutMs: 120_000 });
  assert.equal(second.bytesNew, 0);

  const mine = await cofferJson<{ id: string }[]>(as('web01', ['snapshots']), { env: env() });
  assert.deepEqual(mine.map((s) => s.id).sort(), [backup.id, second.id].sort());
  const theirs = await cofferJson<unknown[]>(as('web02', ['snapshots']), { env: env() });
  assert.deepEqual(theirs, [], 'a second agent sees none of the first agent\'s snapshots');
  const notFound = await coffer(as('web02', ['restore', backup.id, '--to', join(work, 'nope.raw')]), { env: env() });
  assertExit(notFound, 2);

  // Tags after the fact (coffer tag) need the full token: an agent could otherwise remove a
  // tag the administrator set for retention, and forget would remove the snapshot.
  assertExit(await coffer(as('admin', ['tag', backup.id, '--add', 'legal-hold']), { env: env() }), 0);
  const retag = await coffer(as('web01', ['tag', backup.id, '--set', 'routine']), { env: env() });
  assertExit(retag, 21);
  assert.match(assertOneLineError(retag), /append-only.*full-access token/);
  const seen = await cofferJson<{ id: string; tags: string[] }[]>(as('web01', ['snapshots']), { env: env() });
  assert.deepEqual(seen.find((s) => s.id === backup.id)?.tags, ['legal-hold'], 'the agent sees the effective tags of its own snapshot');
  // A compromised agent, which holds the key, bypasses the client: the server refuses its raw put
  // and delete under tags/; a note of kind `tags` (what tags were before they had a prefix) is
  // its to write, and changes nothing.
  const client = (name: string) => new HttpBackend(parseHttpLocation(url), { token: server.tokens[name] as string, fingerprint: server.fingerprint, attempts: 1 });
  const [adminClient, agentClient, otherClient] = [client('admin'), client('web01'), client('web02')];
  try {
    const records: string[] = [];
    for await (const entry of adminClient.list('tags/')) records.push(entry.key);
    assert.equal(records.length, 1);
    const held = records[0] as string;
    const listedByAgent: string[] = [];
    for await (const entry of agentClient.list('tags/')) listedByAgent.push(entry.key);
    assert.deepEqual(listedByAgent, [held], 'the agent lists the tag record of its own snapshot');
    const listedByOther: string[] = [];
    for await (const entry of otherClient.list('tags/')) listedByOther.push(entry.key);
    assert.deepEqual(listedByOther, [], 'another agent does not');
    await assert.rejects(otherClient.get(held), (e) => isCofferError(e, 'E_MISSING_OBJECT'));
    const agentRepo = await openRepository(agentClient, { passphrase: 'served', threads: 1 });
    try {
      await assert.rejects(writeTagRecord(agentRepo, backup.id, ['routine'], new Date('2099-01-01T00:00:00Z')), (e) => isCofferError(e, 'E_ACCESS_DENIED'));
      await assert.rejects(agentClient.delete(held), (e) => isCofferError(e, 'E_ACCESS_DENIED'));
      await addSnapshotNote(agentRepo, backup.id, 'tags', { tags: ['routine'] }, new Date('2099-01-01T00:00:00Z'));
    } finally {
      await agentRepo.close();
    }
    const after: string[] = [];
    for await (const entry of adminClient.list('tags/')) after.push(entry.key);
    assert.deepEqual(after, [held], 'the administrator\'s record stands alone');
  } finally {
    adminClient.destroy();
    agentClient.destroy();
    otherClient.destroy();
  }
  const held = await cofferJson<{ id: string; tags: string[] }[]>(as('admin', ['snapshots']), { env: env() });
  assert.deepEqual(held.find((s) => s.id === backup.id)?.tags, ['legal-hold']);
  // The retention the hold is for: the older snapshot is kept by its tag, not removed.
  const kept = await cofferJson<ForgetPolicyJson>(as('admin', ['forget', '--vm', 'web01', '--keep-last', '1', '--keep-tag', 'legal-hold']), { env: env() });
  assert.deepEqual(kept.removed, []);
  assert.deepEqual(kept.vms[0]?.snapshots.find((s) => s.id === backup.id)?.reasons, ['tag legal-hold']);

  const forget = await coffer(as('web01', ['forget', backup.id]), { env: env() });
  assertExit(forget, 21);
  assert.match(assertOneLineError(forget), /does not allow this token to delete snapshots\//);
  const prune = await coffer(as('web01', ['prune', '--wait', '0']), { env: env() });
  assertExit(prune, 21);
  assert.match(assertOneLineError(prune), /may not list/);

  assertExit(await coffer(as('admin', ['forget', backup.id, second.id, '--prune']), { env: env(), timeoutMs: 120_000 }), 0);
  assert.deepEqual(await cofferJson<unknown[]>(as('admin', ['snapshots']), { env: env() }), []);
  const stats = await cofferJson<{ chunks: number; bytesStoredChunks: number }>(as('admin', ['stats']), { env: env() });
  assert.deepEqual([stats.chunks, stats.bytesStoredChunks], [0, 0], 'prune removed every chunk');
});

test('format 2 through the server: an append-only agent backs up (packs and segments) and restores byte for byte; it cannot delete or overwrite a pack, nor write a pack-removal record', async () => {
  const packedUrl = `${server.origin}/packed`;
  const backup = await cofferJson<BackupJson>(as('web01', ['backup', '--vm', 'web01', disk.path], packedUrl), { env: env(), timeoutMs: 120_000 });
  assert.ok(backup.bytesNew > 0);
  const restored = join(work, 'restored-v2.raw');
  assertExit(await coffer(as('web01', ['restore', 'web01:latest', '--to', restored], packedUrl), { env: env(), timeoutMs: 120_000 }), 0);
  await assertSameBytes(restored, disk.path);
  const second = await cofferJson<BackupJson>(as('web01', ['backup', '--vm', 'web01', disk.path], packedUrl), { env: env(), timeoutMs: 120_000 });
  assert.equal(second.bytesNew, 0, 'the second backup finds its parent\'s blocks');
  assertExit(await coffer(as('admin', ['verify', '--read-data'], packedUrl), { env: env(), timeoutMs: 120_000 }), 0);

  const client = (name: string) => new HttpBackend(parseHttpLocation(packedUrl), { token: server.tokens[name] as string, fingerprint: server.fingerprint, attempts: 1 });
  const [admin, agent] = [client('admin'), client('web01')];
  try {
    const packs: string[] = [];
    for await (const entry of admin.list('packs/')) packs.push(entry.key);
    assert.ok(packs.length > 0, 'the backup stored packs');
    const pack = packs[0] as string;
    const bytes = await admin.get(pack);
    await assert.rejects(agent.delete(pack), (e) => isCofferError(e, 'E_ACCESS_DENIED'));
    const altered = Buffer.from(bytes);
    altered[100] = (altered[100] as number) ^ 1;
    await assert.rejects(agent.put(pack, altered), /do not hash to its id/);
    assert.deepEqual(await admin.get(pack), bytes, 'the pack is unchanged');
    // The prune generation (repository-format §19.11): an agent lists the records, only prune writes one.
    const records: string[] = [];
    for await (const entry of agent.list('removed-packs/')) records.push(entry.key);
    assert.deepEqual(records, [], 'no prune removed a pack yet');
    await assert.rejects(agent.put(`removed-packs/000000000001.${'ab'.repeat(16)}`, Buffer.from('x')), (e) => isCofferError(e, 'E_ACCESS_DENIED'));
  } finally {
    admin.destroy();
    agent.destroy();
  }
});

test('refusals are one line with an exit code: no token (2), an unknown token (21), a wrong fingerprint (21), no pin at all (21)', async () => {
  const noToken = await coffer(['snapshots', '-r', url], { env: env() });
  assertExit(noToken, 2);
  assert.match(assertOneLineError(noToken), /no token for https:\/\/127\.0\.0\.1:\d+\/vms/);
  await writeFile(join(work, 'bad.token'), 'cfr_wrong\n');
  const wrongToken = await coffer(['snapshots', '-r', url, '--repo-token-file', join(work, 'bad.token')], { env: env() });
  assertExit(wrongToken, 21);
  assert.match(assertOneLineError(wrongToken), /refused the token to read config: the token is not known/);
  const flipped = server.fingerprint.startsWith('00') ? `11${server.fingerprint.slice(2)}` : `00${server.fingerprint.slice(2)}`;
  const wrongPin = await coffer(as('admin', ['snapshots']), { env: { ...env(), COFFER_REPO_FINGERPRINT: flipped } });
  assertExit(wrongPin, 21);
  assert.match(assertOneLineError(wrongPin), /is not the one pinned/);
  const unpinned = await coffer(as('admin', ['snapshots']), { env: { ...env(), COFFER_REPO_FINGERPRINT: undefined } });
  assertExit(unpinned, 21);
  assert.match(assertOneLineError(unpinned), /is not trusted/);
});

test('a guest agent backs up its files (trees, content-defined chunks) through an append-only token and restores them', async () => {
  const tree = join(work, 'guest-files');
  await mkdir(join(tree, 'etc', 'app'), { recursive: true });
  await writeFile(join(tree, 'etc', 'app', 'app.conf'), 'listen 8080\n');
  await writeFile(join(tree, 'data.bin'), Buffer.alloc(3 * MiB, 7));
  assertExit(await coffer(as('web01', ['backup', '--files', tree, '--host', 'guest01']), { env: env(), timeoutMs: 120_000 }), 0);
  // Again: every tree and chunk is already there (re-puts of content-addressed objects succeed).
  assertExit(await coffer(as('web01', ['backup', '--files', tree, '--host', 'guest01', '--force']), { env: env(), timeoutMs: 120_000 }), 0);
  const back = join(work, 'guest-restored');
  assertExit(await coffer(as('web01', ['restore', 'guest01:latest', '--to', back, '--verify']), { env: env(), timeoutMs: 120_000 }), 0);
  const restoredRoot = join(back, tree);
  assert.equal(await readFile(join(restoredRoot, 'etc', 'app', 'app.conf'), 'utf8'), 'listen 8080\n');
  assert.deepEqual(await readFile(join(restoredRoot, 'data.bin')), Buffer.alloc(3 * MiB, 7));
  const theirs = await cofferJson<unknown[]>(as('web02', ['snapshots', '--vm', 'guest01']), { env: env() });
  assert.deepEqual(theirs, [], 'another agent does not see the file snapshot');
});
