/**
 * `npm start` as a newcomer runs it: the real entry point as a process on a fresh data
 * directory builds the demo (real ext4, qcow2, FAT and NTFS images, an encrypted repository),
 * starts the server, runs the demo job once to success, and answers the API with the printed
 * one-time login; a second start reuses everything and starts no new run.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('./start-demo.js', import.meta.url));
const dir = await mkdtemp(join(tmpdir(), 'coffer-demo-'));
const children = new Set<ChildProcess>();
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

/** Starts the demo and resolves once `until` appears in its output (or rejects at the deadline). */
async function startDemo(until: RegExp, timeoutMs = 90_000): Promise<{ child: ChildProcess; out(): string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [ENTRY, '--data', dir, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => { children.delete(child); resolve(code); }));
  const deadline = Date.now() + timeoutMs;
  while (!until.test(out)) {
    assert.ok(Date.now() < deadline && child.exitCode === null, `the demo did not print ${until}:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, out: () => out, exited };
}

test('npm start builds the demo, runs its job once to success, and answers with the printed login; a restart reuses it', async () => {
  const first = await startDemo(/first run of nightly ended: (\w+)/);
  const out = first.out();
  assert.match(out, /first run of nightly ended: succeeded \(4 succeeded\)/, out);
  const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1] as string;
  const password = /one-time password (\S+)/.exec(out)?.[1] as string;
  assert.ok(url !== undefined && password !== undefined, out);

  const login = await fetch(`${url}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'admin', password }) });
  assert.equal(login.status, 200);
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string;
  const { csrfToken } = (await login.json()) as { csrfToken: string };
  const changed = await fetch(`${url}/api/v1/auth/password`, { method: 'POST', headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': csrfToken }, body: JSON.stringify({ current: password, new: 'a demo password of mine' }) });
  assert.equal(changed.status, 204);
  const get = async (path: string) => (await fetch(`${url}/api/v1${path}`, { headers: { cookie } })).json() as Promise<any>;
  const runs = await get('/runs');
  assert.deepEqual(runs.items.map((r: { job: string; status: string }) => [r.job, r.status]), [['nightly', 'succeeded']]);
  const snapshots = await get('/repositories/demo/snapshots');
  assert.deepEqual(snapshots.items.map((s: { vm: string }) => s.vm).sort(), ['db1', 'files1', 'web1', 'win1']);
  const hosts = await get('/hosts');
  assert.deepEqual(hosts.items.map((h: { name: string; vms: string[] }) => [h.name, h.vms.length]), [['hv1', 2], ['hv2', 2]]);

  first.child.kill('SIGTERM');
  assert.equal(await first.exited, 0);

  const second = await startDemo(/demo: log in/, 30_000);
  assert.doesNotMatch(second.out(), /building the demo|runs once now|created user admin/);
  second.child.kill('SIGTERM');
  assert.equal(await second.exited, 0);
});
