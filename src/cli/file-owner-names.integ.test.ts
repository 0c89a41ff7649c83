/**
 * Owners of a file snapshot restored on another host, whose accounts have other ids: `restore`
 * and `files get --to` give the same owners, by name (a recorded name known there gets its id
 * there, an unknown name or none the recorded id), as GNU tar extracts the `files get --tar`
 * stream there; `--numeric-owner` gives the recorded ids to all three. `get --to` applied the
 * recorded ids while `restore` mapped the names, and `--tar` headers held no names. The
 * snapshot is made as root on this host; the other host is this one in a private mount
 * namespace with other /etc/passwd and /etc/group (cli-harness.ts onHostWith).
 */
import assert from 'node:assert/strict';
import { lchown, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { requireTools } from '../testing/index.js';
import { assertExit, assertOneLineError, coffer, makeWorkDir, onHostWith, removeDir, runTool, type HostAccounts } from './cli-harness.js';

const env = { COFFER_PASSWORD: 'owners' };
/** Debian's (base-passwd) fixed ids of the accounts the source's files belong to. */
const DAEMON = 1;
const BIN = 2;
/** The other host: `daemon` is 4242 there, `bin` unknown. */
const DAEMON_THERE = 4242;
/** An id no name has, here or there. */
const NAMELESS = 4343;

/** Each entry of the source, its owner here, and the owner it gets there by name and by id. */
const ENTRIES: { path: string; here: [number, number]; byName: string; numeric: string }[] = [
  { path: 'd', here: [DAEMON, DAEMON], byName: '4242:4242', numeric: '1:1' },
  { path: 'd/daemon.txt', here: [DAEMON, DAEMON], byName: '4242:4242', numeric: '1:1' },
  { path: 'd/link', here: [DAEMON, DAEMON], byName: '4242:4242', numeric: '1:1' },
  { path: 'bin.txt', here: [BIN, BIN], byName: '2:2', numeric: '2:2' },
  { path: 'nameless.txt', here: [NAMELESS, NAMELESS], byName: '4343:4343', numeric: '4343:4343' },
  { path: 'mixed.txt', here: [DAEMON, NAMELESS], byName: '4242:4343', numeric: '1:4343' },
];

let work: string;
let repo: string;
let source: string;
let id: string;
let there: HostAccounts;
/** Why the tests cannot run (not root, no mount namespace, accounts not Debian's), or undefined. */
let cannot: string | undefined;

before(async () => {
  await requireTools('unshare', 'mount', 'tar', 'python3');
  if (process.getuid?.() !== 0) return void (cannot = 'owners are set as root only');
  if ((await runTool('unshare', ['--mount', 'true'])).code !== 0) return void (cannot = 'no private mount namespace here (unshare --mount)');
  const passwd = await readFile('/etc/passwd', 'utf8');
  const group = await readFile('/etc/group', 'utf8');
  const debian = [/^daemon:x:1:1:/m, /^bin:x:2:2:/m].every((line) => line.test(passwd)) && [/^daemon:x:1:/m, /^bin:x:2:/m].every((line) => line.test(group));
  if (!debian) return void (cannot = 'this host has no Debian daemon (1) and bin (2) accounts');
  work = await makeWorkDir('owner-names');
  repo = join(work, 'repo');
  source = join(work, 'source');
  await mkdir(join(source, 'd'), { recursive: true });
  for (const { path } of ENTRIES) if (path.endsWith('.txt')) await writeFile(join(source, path), `${path}\n`);
  await symlink('daemon.txt', join(source, 'd/link'));
  for (const { path, here } of ENTRIES) await lchown(join(source, path), ...here);
  // The other host's accounts: daemon with another id, bin absent, the rest as here.
  const elsewhere = (text: string, from: RegExp, to: string): string =>
    text
      .split('\n')
      .filter((line) => !line.startsWith('bin:'))
      .map((line) => line.replace(from, to))
      .join('\n');
  there = { passwd: join(work, 'passwd'), group: join(work, 'group') };
  await writeFile(there.passwd, elsewhere(passwd, /^daemon:x:1:1:/, `daemon:x:${DAEMON_THERE}:${DAEMON_THERE}:`));
  await writeFile(there.group, elsewhere(group, /^daemon:x:1:/, `daemon:x:${DAEMON_THERE}:`));
  assertExit(await coffer(['init', '-r', repo], { env }), 0);
  const backup = await coffer(['backup', '-r', repo, '--files', source, '--host', 'owners', '--json'], { env });
  assertExit(backup, 0);
  id = (JSON.parse(backup.stdout.toString('utf8')) as { id: string }).id;
});
after(() => removeDir(work));

/** `uid:gid` of each entry below `root`, by path. */
async function owners(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const stat = await runTool('stat', ['-c', '%u:%g', ...ENTRIES.map(({ path }) => join(root, path))]);
  assert.equal(stat.code, 0, stat.stderr);
  stat.stdout.trim().split('\n').forEach((line, i) => (out[ENTRIES[i]?.path as string] = line));
  return out;
}

/** What each entry should get there. */
const expected = (how: 'byName' | 'numeric'): Record<string, string> => Object.fromEntries(ENTRIES.map((e) => [e.path, e[how]]));

/** `coffer args…` run on the other host. */
const onOtherHost = (args: string[]) => coffer(args, { env, accounts: there });

test('restore and files get --to of a file snapshot give owners by name on another host, the same', async (t) => {
  if (cannot !== undefined) return t.skip(cannot);
  const restored = join(work, 'restored');
  assertExit(await onOtherHost(['restore', '-r', repo, id, '--to', restored]), 0);
  assert.deepEqual(await owners(join(restored, source)), expected('byName'), 'restore');
  const got = join(work, 'got');
  assertExit(await onOtherHost(['files', '-r', repo, id, 'get', source, '--to', got]), 0);
  assert.deepEqual(await owners(join(got, 'source')), expected('byName'), 'files get --to');
});

test('--numeric-owner: restore and files get --to give the recorded ids', async (t) => {
  if (cannot !== undefined) return t.skip(cannot);
  const restored = join(work, 'restored-numeric');
  assertExit(await onOtherHost(['restore', '-r', repo, id, '--to', restored, '--numeric-owner']), 0);
  assert.deepEqual(await owners(join(restored, source)), expected('numeric'), 'restore --numeric-owner');
  const got = join(work, 'got-numeric');
  assertExit(await onOtherHost(['files', '-r', repo, id, 'get', source, '--to', got, '--numeric-owner']), 0);
  assert.deepEqual(await owners(join(got, 'source')), expected('numeric'), 'files get --to --numeric-owner');
  const cat = await coffer(['files', '-r', repo, id, 'cat', join(source, 'bin.txt'), '--numeric-owner'], { env });
  assertExit(cat, 2);
  assert.match(assertOneLineError(cat), /--numeric-owner goes with ls and get/);
});

test('files ls -l shows the names a file snapshot recorded (ids where none), --numeric-owner the ids; --json carries both', async (t) => {
  if (cannot !== undefined) return t.skip(cannot);
  const columns = async (extra: string[]): Promise<string[]> => {
    const ls = await coffer(['files', '-r', repo, id, 'ls', '-l', join(source, 'd'), ...extra], { env });
    assertExit(ls, 0);
    return ls.stdout.toString('utf8').trim().split('\n').map((row) => row.split(/\s+/).slice(2, 4).join(':'));
  };
  assert.deepEqual(await columns([]), ['daemon:daemon', 'daemon:daemon'], 'daemon.txt and link, by their recorded names');
  assert.deepEqual(await columns(['--numeric-owner']), ['1:1', '1:1']);
  const json = await coffer(['files', '-r', repo, id, 'ls', '--json', source], { env });
  assertExit(json, 0);
  const rows = JSON.parse(json.stdout.toString('utf8')) as { name: string; uid: number; gid: number; user?: string; group?: string }[];
  assert.deepEqual(rows.map((r) => [r.name, r.uid, r.gid, r.user, r.group]), [
    ['bin.txt', BIN, BIN, 'bin', 'bin'],
    ['d', DAEMON, DAEMON, 'daemon', 'daemon'],
    ['mixed.txt', DAEMON, NAMELESS, 'daemon', undefined],
    ['nameless.txt', NAMELESS, NAMELESS, undefined, undefined],
  ]);
});

/** Each member of a tar file as Python's tarfile reads it: path, ids, names. */
async function tarOwners(archive: string): Promise<string[]> {
  const script = 'import sys, tarfile\nfor m in tarfile.open(sys.argv[1]): print(m.name, m.uid, m.gid, repr(m.uname), repr(m.gname))';
  const listed = await runTool('python3', ['-c', script, archive]);
  assert.equal(listed.code, 0, listed.stderr);
  return listed.stdout.trim().split('\n');
}

test('files get --tar: headers carry the names and the ids; GNU tar extracts them on another host as restore does', async (t) => {
  if (cannot !== undefined) return t.skip(cannot);
  const archive = join(work, 'owners.tar');
  const streamed = await coffer(['files', '-r', repo, id, 'get', source, '--tar'], { env });
  assertExit(streamed, 0);
  await writeFile(archive, streamed.stdout);
  assert.deepEqual(await tarOwners(archive), [
    "source 0 0 'root' 'root'",
    "source/bin.txt 2 2 'bin' 'bin'",
    "source/d 1 1 'daemon' 'daemon'",
    "source/d/daemon.txt 1 1 'daemon' 'daemon'",
    "source/d/link 1 1 'daemon' 'daemon'",
    "source/mixed.txt 1 4343 'daemon' ''",
    "source/nameless.txt 4343 4343 '' ''",
  ]);
  for (const [how, extra] of [['byName', []], ['numeric', ['--numeric-owner']]] as const) { // tar's own switch
    const into = join(work, `tar-${how}`);
    await mkdir(into);
    const extracted = await runTool(...onHostWith(there, 'tar', ['-xpf', archive, '-C', into, ...extra]));
    assert.equal(extracted.code, 0, extracted.stderr);
    assert.deepEqual(await owners(join(into, 'source')), expected(how), `tar -x ${extra.join(' ')}`);
  }

  const numeric = await coffer(['files', '-r', repo, id, 'get', source, '--tar', '--numeric-owner'], { env });
  assertExit(numeric, 0);
  await writeFile(archive, numeric.stdout);
  assert.deepEqual((await tarOwners(archive)).filter((line) => !line.endsWith("'' ''")), [], '--numeric-owner: no names in the headers');
});
