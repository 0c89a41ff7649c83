/**
 * The snapshot index against a real repository (one real backup by the `coffer` CLI, its
 * manifest cloned under other VMs, times and tags) on SQLite and on a real PostgreSQL: built
 * from the repository it answers what the catalog answered when it read every manifest;
 * manifests the CLI adds or forgets behind its back appear and disappear after a refresh;
 * tags changed with `coffer tag` (a tag record) reach the rows and the tag filter after a refresh;
 * a tag record the server writes itself is indexed at once (one snapshot again), also when a
 * refresh is under way; keyset pages return every row exactly once while rows are added; an
 * emptied table is rebuilt; concurrent refreshes collapse.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { applyRetention, listSnapshots, LocalBackend, openRepository, saveSnapshot, setSnapshotTags, TAGS_PREFIX, type Backend, type Repository, type Snapshot } from '../../repo/index.js';
import { makeTempDir, startPostgres, type TestPostgres } from '../../testing/index.js';
import { openStateDatabase, type StateDatabase } from '../state/index.js';
import { makeRepository } from '../tasks/task-fixtures.js';
import { SnapshotIndex, type IndexedSnapshot } from './snapshot-index.js';

const COFFER_BIN = fileURLToPath(new URL('../../../../bin/coffer.js', import.meta.url));
const dir = await makeTempDir('coffer-snapshot-index');
const opened: { close(): Promise<void> }[] = [];
let pg: TestPostgres;
let repoUrl: string;
let passFile: string;
let repo: Repository;
let template: Snapshot;

function coffer(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [COFFER_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`coffer ${args.join(' ')}: exit ${code}: ${err}`));
    });
  });
}

/** Clones the template manifest: `n` snapshots of 7 VMs, one an hour from `start`, every third tagged `weekly`. */
async function addClones(n: number, start: number, label: string): Promise<void> {
  const { id: _id, ...manifest } = template;
  for (let i = 0; i < n; i++) {
    await saveSnapshot(repo, { ...manifest, vm: `vm${i % 7}`, hostname: label, time: new Date(start + i * 3_600_000).toISOString(), tags: i % 3 === 0 ? ['weekly', label] : [label] });
  }
}

before(async () => {
  pg = await startPostgres();
  await mkdir(join(dir.path, 'r'));
  ({ url: repoUrl, passphraseFile: passFile } = await makeRepository(join(dir.path, 'r')));
  const image = join(dir.path, 'disk.raw');
  await writeFile(image, Buffer.alloc(256 * 1024, 5));
  await coffer(['backup', '-r', repoUrl, '--password-file', passFile, '--vm', 'cli-vm', '--tag', 'first', image]);
  repo = await openRepository(new LocalBackend(repoUrl), { passphrase: 'pw' });
  opened.push(repo);
  [template] = await listSnapshots(repo) as [Snapshot];
  await addClones(90, Date.UTC(2026, 0, 1), 'base');
});
after(async () => {
  for (const o of opened.reverse()) await o.close().catch(() => undefined);
  await pg?.stop();
  await dir.remove();
});

async function engines(): Promise<{ name: string; state: StateDatabase }[]> {
  const sqlite = await openStateDatabase({ file: join(dir.path, `${Math.random().toString(36).slice(2)}.db`) });
  const postgres = await openStateDatabase({ url: await pg.createDatabase() });
  opened.push(sqlite, postgres);
  return [{ name: 'sqlite', state: sqlite }, { name: 'postgres', state: postgres }];
}

/** What GET /repositories/R/snapshots answered when the catalog listed every manifest (newest first). */
function oldAnswer(all: readonly Snapshot[]): object[] {
  return [...all].reverse().map((s) => ({
    id: s.id, vm: s.vm, time: s.time, hostname: s.hostname, tags: s.tags, parent: s.parent, disks: s.disks.length,
    bytesLogical: s.disks.reduce((n, d) => n + d.size, 0), ...(s.consistency === undefined ? {} : { consistency: s.consistency.level }),
  }));
}
const asOld = (s: IndexedSnapshot) => {
  const { kind: _k, bytesNew: _n, bytesStored: _s, ...rest } = s;
  return rest;
};

async function everyPage(index: SnapshotIndex, query: { vm?: string; tag?: string; since?: number; until?: number }, limit: number): Promise<IndexedSnapshot[]> {
  const out: IndexedSnapshot[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await index.page('main', { ...query, limit, ...(cursor === undefined ? {} : { cursor }) });
    out.push(...page.items);
    if (page.next === null) return out;
    cursor = page.next;
  }
  throw new Error('paging did not end');
}

test('built from the repository, the index answers what reading every manifest answered (every filter, both engines)', async () => {
  const truth = await listSnapshots(repo);
  for (const { name, state } of await engines()) {
    const index = new SnapshotIndex(state.db);
    const report = await index.refresh('main', repoUrl, async () => repo);
    assert.equal(report.added, truth.length, name);
    assert.deepEqual((await everyPage(index, {}, 13)).map(asOld), oldAnswer(truth), `${name}: the whole list`);
    assert.deepEqual((await everyPage(index, { vm: 'vm3' }, 5)).map(asOld), oldAnswer(truth.filter((s) => s.vm === 'vm3')), `${name}: vm`);
    assert.deepEqual((await everyPage(index, { tag: 'weekly' }, 4)).map(asOld), oldAnswer(truth.filter((s) => s.tags.includes('weekly'))), `${name}: tag`);
    const since = Date.UTC(2026, 0, 2);
    const until = Date.UTC(2026, 0, 3, 5);
    assert.deepEqual((await everyPage(index, { since, until }, 6)).map(asOld), oldAnswer(truth.filter((s) => Date.parse(s.time) >= since && Date.parse(s.time) < until)), `${name}: time range`);
    const page = await index.page('main', { limit: 10, vm: 'vm1' });
    assert.equal(page.total, truth.filter((s) => s.vm === 'vm1').length, `${name}: total`);
    assert.deepEqual((await index.all('main')).map((s) => s.id), truth.map((s) => s.id), `${name}: oldest first`);
    assert.equal((await index.latest('main', 'cli-vm'))?.id, template.id);
    assert.deepEqual(await index.idsStartingWith('main', template.id.slice(0, 8)), [template.id]);
  }
});

test('a snapshot the CLI adds or forgets behind the index\'s back appears and disappears after a refresh; an emptied table is rebuilt', async () => {
  const { state } = (await engines())[0] as { state: StateDatabase };
  const index = new SnapshotIndex(state.db);
  const open = async () => repo;
  await index.refresh('main', repoUrl, open);
  const before = (await index.page('main', { limit: 1 })).total;
  const image = join(dir.path, 'other.raw');
  await writeFile(image, Buffer.alloc(128 * 1024, 9));
  await coffer(['backup', '-r', repoUrl, '--password-file', passFile, '--vm', 'behind-back', image]);
  assert.equal((await index.page('main', { limit: 1, vm: 'behind-back' })).total, 0, 'not seen before a refresh');
  const added = await index.refresh('main', repoUrl, open);
  assert.deepEqual([added.added, added.removed], [1, 0]);
  const [fresh] = (await index.page('main', { limit: 5, vm: 'behind-back' })).items;
  assert.ok(fresh !== undefined);
  await coffer(['forget', '-r', repoUrl, '--password-file', passFile, fresh.id]);
  const removed = await index.refresh('main', repoUrl, open);
  assert.deepEqual([removed.added, removed.removed], [0, 1]);
  assert.equal((await index.page('main', { limit: 1, vm: 'behind-back' })).total, 0);
  assert.equal((await index.page('main', { limit: 1 })).total, before);

  // Rows lost (a table emptied by hand): the next refresh reads every manifest again.
  await state.db.deleteFrom('snapshot_index').execute();
  const rebuilt = await index.refresh('main', repoUrl, open);
  assert.equal(rebuilt.rebuilt, true);
  assert.equal((await index.page('main', { limit: 1 })).total, before);
  // Another location under the same name: rebuilt too.
  assert.equal((await index.refresh('main', `${repoUrl}/.`, open)).rebuilt, true);
});

test('tags the CLI changes behind the index\'s back (coffer tag) reach its rows and its tag filter after a refresh (both engines)', async () => {
  for (const { name, state } of await engines()) {
    const index = new SnapshotIndex(state.db);
    const open = async () => repo;
    await index.refresh('main', repoUrl, open);
    const hold = `hold-${name}`;
    await coffer(['tag', '-r', repoUrl, '--password-file', passFile, template.id.slice(0, 12), '--add', hold]);
    assert.equal((await index.page('main', { limit: 5, tag: hold })).total, 0, `${name}: not seen before a refresh`);
    const tagged = await index.refresh('main', repoUrl, open);
    assert.deepEqual([tagged.added, tagged.removed, tagged.retagged], [0, 0, 1], name);
    const found = await index.page('main', { limit: 5, tag: hold });
    assert.deepEqual(found.items.map((s) => [s.id, s.tags]), [[template.id, ['first', hold]]], `${name}: the tag filter and the row`);
    assert.equal((await index.refresh('main', repoUrl, open)).retagged, 0, `${name}: a record is read once`);
    await coffer(['tag', '-r', repoUrl, '--password-file', passFile, template.id, '--remove', hold]);
    assert.equal((await index.refresh('main', repoUrl, open)).retagged, 1, name);
    assert.equal((await index.page('main', { limit: 5, tag: hold })).total, 0, `${name}: the tag removed`);
    assert.deepEqual((await index.latest('main', 'cli-vm'))?.tags, ['first'], name);
    // A new index (an emptied database) reads the tag records with the manifests.
    await coffer(['tag', '-r', repoUrl, '--password-file', passFile, template.id, '--set', `first,${hold}-again`]);
    await state.db.deleteFrom('snapshot_index').execute();
    await state.db.deleteFrom('snapshot_index_tag_records').execute();
    assert.equal((await index.refresh('main', repoUrl, open)).rebuilt, true);
    assert.deepEqual((await index.latest('main', 'cli-vm'))?.tags, ['first', `${hold}-again`], `${name}: rebuilt`);
    await coffer(['tag', '-r', repoUrl, '--password-file', passFile, template.id, '--set', 'first']);
  }
});

test('a tag record the server writes is indexed at once (one snapshot read again), also when written while a refresh is between its listing of tags/ and its rows (both engines)', async () => {
  for (const { name, state } of await engines()) {
    const index = new SnapshotIndex(state.db);
    await index.refresh('main', repoUrl, async () => repo);
    const hold = `legal-hold-${name}`;
    const current = async () => (await listSnapshots(repo)).find((s) => s.id === template.id) as Snapshot;
    await setSnapshotTags(repo, await current(), { add: [hold] }, { now: new Date() });
    await index.reindexSnapshot('main', repo, template.id);
    assert.deepEqual((await index.page('main', { limit: 5, tag: hold })).items.map((s) => [s.id, s.tags]), [[template.id, ['first', hold]]], `${name}: at once`);
    assert.equal((await index.refresh('main', repoUrl, async () => repo)).retagged, 0, `${name}: the next refresh has nothing to read again`);

    // A refresh lists tags/ (the record above), then waits; meanwhile the tags change again
    // (that record superseded and deleted) and the snapshot is indexed again. The refresh must
    // not then undo it with what it listed before.
    let reached: () => void = () => {};
    const atGate = new Promise<void>((resolve) => (reached = resolve));
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    const backend = Object.create(repo.backend, {
      list: {
        value: async function* (prefix: string) {
          yield* repo.backend.list(prefix);
          if (prefix === TAGS_PREFIX) {
            reached();
            await gate;
          }
        },
      },
    }) as Backend;
    const slow = Object.create(repo, { backend: { value: backend } }) as Repository;
    const refreshing = index.refresh('main', repoUrl, async () => slow);
    await atGate;
    await setSnapshotTags(repo, await current(), { remove: [hold], add: [`${hold}-2`] }, { now: new Date() });
    const reindexed = index.reindexSnapshot('main', repo, template.id);
    open();
    await Promise.all([refreshing, reindexed]);
    assert.deepEqual((await index.latest('main', 'cli-vm'))?.tags, ['first', `${hold}-2`], `${name}: the row has the newest record's tags`);
    assert.deepEqual((await index.page('main', { limit: 5, tag: `${hold}-2` })).items.map((s) => s.id), [template.id], name);
    assert.equal((await index.page('main', { limit: 5, tag: hold })).total, 0, name);
    await setSnapshotTags(repo, await current(), { set: ['first'] }, { now: new Date() });
  }
});

test('keyset pages return every row exactly once while newer rows are added between pages', async () => {
  const { state } = (await engines())[0] as { state: StateDatabase };
  const index = new SnapshotIndex(state.db);
  const open = async () => repo;
  await index.refresh('main', repoUrl, open);
  const original = new Set((await index.all('main')).map((s) => s.id));
  const seen: string[] = [];
  let cursor: string | undefined;
  let round = 0;
  for (;;) {
    const page = await index.page('main', { limit: 9, ...(cursor === undefined ? {} : { cursor }) });
    seen.push(...page.items.map((s) => s.id));
    if (page.next === null) break;
    cursor = page.next;
    // Newer snapshots land on top while the client pages (a night's backups).
    await addClones(3, Date.UTC(2026, 5, 1) + round++ * 86_400_000, `during${round}`);
    await index.refresh('main', repoUrl, open);
  }
  assert.equal(new Set(seen).size, seen.length, 'no row twice');
  for (const id of original) assert.ok(seen.includes(id), `row ${id.slice(0, 8)} on no page`);
  assert.ok(round > 5);
});

test('concurrent refreshes of one repository collapse into the running one and one follow-up', async () => {
  const { state } = (await engines())[0] as { state: StateDatabase };
  const index = new SnapshotIndex(state.db);
  let opens = 0;
  const open = async () => {
    opens++;
    return repo;
  };
  const all = Array.from({ length: 8 }, () => index.refresh('main', repoUrl, open));
  const reports = await Promise.all(all);
  assert.equal(opens, 2, 'the running refresh and one follow-up');
  assert.equal(new Set(all).size, 2);
  assert.equal(reports[7]?.added, 0, 'the follow-up found nothing new');
});

test('a cursor that this code did not make is refused with E_USAGE', async () => {
  const { state } = (await engines())[0] as { state: StateDatabase };
  const index = new SnapshotIndex(state.db);
  await assert.rejects(index.page('main', { limit: 5, cursor: 'bm90IGEgY3Vyc29y' }), { code: 'E_USAGE' });
});

test('a file snapshot\'s paths are in its row (migration 18), so the retention preview groups a VM\'s disk and file snapshots apart, as forget does (both engines)', async () => {
  const tree = join(dir.path, 'etc-of-cli-vm');
  await mkdir(tree, { recursive: true });
  await writeFile(join(tree, 'motd'), 'one\n');
  await coffer(['backup', '-r', repoUrl, '--password-file', passFile, '--files', tree, '--host', 'cli-vm']);
  await writeFile(join(tree, 'motd'), 'two\n');
  await coffer(['backup', '-r', repoUrl, '--password-file', passFile, '--files', tree, '--host', 'cli-vm']);
  for (const { name, state } of await engines()) {
    const index = new SnapshotIndex(state.db);
    await index.refresh('main', repoUrl, async () => repo);
    const rows = await index.all('main', { vm: 'cli-vm' });
    assert.deepEqual(rows.map((s) => [s.kind, s.files]), [['disk', undefined], ['files', { paths: [tree] }], ['files', { paths: [tree] }]], name);
    // What editor-preview-routes.ts hands applyRetention: keep-last 1 keeps the disk snapshot and the newer file snapshot.
    const groups = applyRetention(rows.map((s) => ({ id: s.id, vm: s.vm, time: s.time, tags: s.tags, protected: false, ...(s.files === undefined ? {} : { files: s.files }) })), { last: 1 });
    assert.deepEqual(groups.map((g) => g.decisions.filter((d) => d.keep).map((d) => d.snapshot.id)), [[rows[0]?.id], [rows[2]?.id]], name);
  }
});
