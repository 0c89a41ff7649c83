/**
 * HttpBackend against a real `coffer serve-repo` child process (HTTPS on a loopback port, its
 * self-signed certificate pinned): the backend conformance suite with a full token, then what
 * an append-only token may and may not do, isolation between two agents, the TLS trust
 * choices, refused and expired tokens, pagination, and the rate limit on refused tokens.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isCofferError } from '../../errors/index.js';
import { freePort, makeTempDir, startTestRepoServer, type TestRepoServer } from '../../testing/index.js';
import type { Backend } from './backend.js';
import { runBackendConformance } from './backend-conformance.js';
import { HttpBackend, type HttpBackendOptions } from './http-backend.js';
import { parseHttpLocation } from './http-location.js';

/** Served repositories for the conformance suite: one per test (it has 9), with room for new ones. */
const CONFORMANCE_REPOS = 16;
let server: TestRepoServer;
let work: { path: string; remove(): Promise<void> };
const opened: HttpBackend[] = [];

before(async () => {
  work = await makeTempDir('coffer-http-backend');
  const repos: Record<string, string> = { agents: join(work.path, 'agents') };
  for (let i = 0; i < CONFORMANCE_REPOS; i++) repos[`c${i}`] = join(work.path, `c${i}`);
  server = await startTestRepoServer({
    stateDir: join(work.path, 'state'),
    repos,
    tokens: [{ name: 'admin' }, { name: 'web01', appendOnly: true }, { name: 'web02', appendOnly: true }, { name: 'brief', appendOnly: true, expires: '1s' }],
  });
});
after(async () => {
  for (const backend of opened) backend.destroy();
  await server?.stop();
  await work?.remove();
});

function backend(repo: string, token: string, options: Partial<HttpBackendOptions> = {}): HttpBackend {
  const made = new HttpBackend(parseHttpLocation(`${server.origin}/${repo}`), { token, fingerprint: server.fingerprint, attempts: 2, ...options });
  opened.push(made);
  return made;
}
const as = (name: string, repo = 'agents') => backend(repo, server.tokens[name] as string);
const denied = (e: unknown) => isCofferError(e, 'E_ACCESS_DENIED');

async function keys(b: Backend, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of b.list(prefix)) out.push(entry.key);
  return out.sort();
}

let nextRepo = 0;
runBackendConformance('http (full token)', async () => {
  assert.ok(nextRepo < CONFORMANCE_REPOS, 'one served repository per conformance test');
  return as('admin', `c${nextRepo++}`);
});

const hex = () => randomBytes(32).toString('hex');

test('append-only: delete is refused (403) and the object stays', async () => {
  const key = `snapshots/${hex()}`;
  await as('web01').put(key, Buffer.from('manifest'));
  await assert.rejects(as('web01').delete(key), (e) => denied(e) && /never deletes/.test((e as Error).message));
  await assert.rejects(as('web01').delete(`chunks/aa/${hex()}`), denied);
  assert.equal((await as('admin').get(key)).toString(), 'manifest');
});

test('append-only: a manifest is never overwritten; re-sending the same bytes succeeds', async () => {
  const key = `snapshots/${hex()}`;
  await as('web01').put(key, Buffer.from('first'));
  await as('web01').put(key, Buffer.from('first')); // a retry after a lost answer
  await assert.rejects(as('web01').put(key, Buffer.from('second')), (e) => denied(e) && /exists with other content/.test((e as Error).message));
  assert.equal((await as('admin').get(key)).toString(), 'first');
});

test('append-only: a chunk re-put with identical bytes is accepted; other bytes never replace it', async () => {
  const key = `chunks/ab/${hex()}`;
  const data = randomBytes(300_000);
  await as('web01').put(key, data);
  await as('web01').put(key, data);
  await as('web02').put(key, randomBytes(1000)); // another guest's copy of the same block: kept as stored
  assert.deepEqual(await as('admin').get(key), data);
  assert.deepEqual(await as('web02').get(key), data, 'chunks are read by id by any agent');
});

test('append-only: its own lease can be refreshed and removed, another agent\'s cannot', async () => {
  const key = `leases/${hex()}`;
  await as('web01').put(key, Buffer.from('lease v1'));
  await as('web01').put(key, Buffer.from('lease v2')); // the refresh every 2 minutes
  assert.deepEqual(await keys(as('web02'), 'leases/'), [key], 'every agent sees the leases (a backup looks for a prune)');
  await assert.rejects(as('web02').put(key, Buffer.from('hijack')), denied);
  await assert.rejects(as('web02').delete(key), denied);
  await as('web01').delete(key);
  assert.equal(await as('admin').has(key), false);
});

test('append-only: config, keys, deletions and quarantine are not written; chunks and everything cannot be listed', async () => {
  const web01 = as('web01');
  await assert.rejects(web01.put('config', Buffer.from('{}')), denied);
  await assert.rejects(web01.put(`keys/${hex().slice(0, 16)}`, Buffer.from('{}')), denied);
  await assert.rejects(web01.put('deletions', Buffer.from('x\n')), denied);
  await assert.rejects(web01.put(`quarantine/${hex()}.1`, Buffer.from('x')), denied);
  await assert.rejects(web01.put('other/thing', Buffer.from('x')), denied);
  await assert.rejects(keys(web01, 'chunks/'), (e) => denied(e) && /may not list chunks\//.test((e as Error).message));
  await assert.rejects(keys(web01, 'indexes/'), denied);
  await assert.rejects(keys(web01, ''), denied);
  assert.deepEqual(await keys(web01, 'keys/'), []);
});

test('append-only, format 2: a pack is created once and read by range, never overwritten, deleted or listed; segments are listed by their writer only; the administrator may delete a pack', async () => {
  const web01 = as('web01');
  const bytes = randomBytes(200_000);
  const id = createHash('sha256').update(bytes).digest('hex');
  const key = `packs/${id.slice(0, 2)}/${id}`;
  await web01.put(key, bytes);
  await web01.put(key, bytes); // a retry after a lost answer
  await assert.rejects(web01.put(key, randomBytes(200_000)), (e) => isCofferError(e) && /do not hash to its id/.test((e as Error).message), 'other bytes under a pack id');
  const forged = hex();
  await assert.rejects(web01.put(`packs/${forged.slice(0, 2)}/${forged}`, bytes), (e) => isCofferError(e) && /do not hash to its id/.test((e as Error).message), 'bytes under another id');
  await assert.rejects(web01.delete(key), (e) => denied(e) && /never deletes/.test((e as Error).message));
  assert.deepEqual(await as('web02').getRange(key, 1000, 5000), bytes.subarray(1000, 6000), 'another agent reads it by id and range');
  await assert.rejects(keys(web01, 'packs/'), denied);
  const segment = `segments/${hex()}`;
  await web01.put(segment, Buffer.from('segment'));
  await web01.put(segment, Buffer.from('other bytes')); // keyed-MAC id: kept as stored
  assert.equal((await as('admin').get(segment)).toString(), 'segment');
  await assert.rejects(web01.delete(segment), denied);
  assert.deepEqual(await keys(web01, 'segments/'), [segment], 'its own segments (its backups load them)');
  assert.deepEqual(await keys(as('web02'), 'segments/'), [], 'never another agent\'s');
  assert.deepEqual(await as('admin').get(key), bytes, 'the pack is intact');
  await as('admin').delete(key); // a prune with the administrator's token
  assert.equal(await as('admin').has(key), false);
});

test('a Range that is not one closed range is refused (400); a range past the end is 416', async () => {
  const key = `snapshots/${hex()}`;
  await as('admin').put(key, Buffer.from('0123456789'));
  const auth = { authorization: `Bearer ${server.tokens.admin}` };
  for (const range of ['bytes=5-', 'bytes=-3', 'bytes=0-1,4-5', 'bytes=4-2', 'items=0-1']) {
    assert.equal((await raw('GET', `/agents/objects/${key}`, { ...auth, range })).status, 400, range);
  }
  const ok = await raw('GET', `/agents/objects/${key}`, { ...auth, range: 'bytes=2-4' });
  assert.equal(ok.status, 206);
  assert.equal(ok.body, '234');
  assert.equal(ok.headers['content-range'], 'bytes 2-4/*');
  assert.equal((await raw('GET', `/agents/objects/${key}`, { ...auth, range: 'bytes=8-12' })).status, 416);
});

test('has is batched: many checks at once come back right, a refused key fails alone', async () => {
  const web01 = as('web01');
  const stored = Array.from({ length: 40 }, () => `chunks/cd/${hex()}`);
  await Promise.all(stored.map((key) => web01.put(key, Buffer.from(key))));
  const absent = Array.from({ length: 40 }, () => `chunks/ef/${hex()}`);
  const checks = [...stored, ...absent].map((key) => web01.has(key));
  const refused = web01.has(`quarantine/${hex()}.1`);
  assert.deepEqual(await Promise.all(checks), [...stored.map(() => true), ...absent.map(() => false)]);
  await assert.rejects(refused, denied);
  assert.equal(await web01.has('config'), false, 'one alone still works');
});

test('isolation: an agent never sees another agent\'s snapshots or notes', async () => {
  const snapshot = `snapshots/${hex()}`;
  const note = `notes/${hex()}.${hex()}`;
  await as('web01').put(snapshot, Buffer.from('one'));
  await as('web01').put(note, Buffer.from('note'));
  const web02 = as('web02');
  assert.equal(await web02.has(snapshot), false);
  await assert.rejects(web02.get(snapshot), (e) => isCofferError(e, 'E_MISSING_OBJECT'));
  assert.equal((await keys(web02, 'snapshots/')).includes(snapshot), false);
  assert.deepEqual(await keys(web02, 'notes/'), []);
  assert.ok((await keys(as('web01'), 'snapshots/')).includes(snapshot));
  assert.deepEqual(await keys(as('web01'), 'notes/'), [note]);
  assert.ok((await keys(as('admin'), 'snapshots/')).includes(snapshot), 'the administrator sees everything');
  // Writing over it with other bytes is refused; it reveals nothing more than a 403.
  await assert.rejects(web02.put(snapshot, Buffer.from('two')), denied);
});

test('listing is paginated: 25 keys in pages of 7 come back whole', async () => {
  const admin = backend('agents', server.tokens.admin as string, { listPageSize: 7 });
  const made = Array.from({ length: 25 }, () => `verifications/${hex()}`);
  await Promise.all(made.map((key) => admin.put(key, Buffer.from(key))));
  assert.deepEqual(await keys(admin, 'verifications/'), made.sort());
});

test('TLS: no pin and no CA, or a wrong pin, is E_SERVER_UNTRUSTED; the certificate as --cacert is trusted', async () => {
  const location = parseHttpLocation(`${server.origin}/agents`);
  const token = server.tokens.admin as string;
  const unpinned = new HttpBackend(location, { token });
  opened.push(unpinned);
  await assert.rejects(unpinned.has('config'), (e) => isCofferError(e, 'E_SERVER_UNTRUSTED') && /not trusted/.test((e as Error).message));
  const wrong = new HttpBackend(location, { token, fingerprint: server.fingerprint.replace(/^../, server.fingerprint.startsWith('00') ? '11' : '00') });
  opened.push(wrong);
  await assert.rejects(wrong.has('config'), (e) => isCofferError(e, 'E_SERVER_UNTRUSTED') && /not the one pinned/.test((e as Error).message));
  const withCa = new HttpBackend(location, { token, ca: await readFile(join(server.stateDir, 'tls', 'cert.pem')) });
  opened.push(withCa);
  assert.equal(await withCa.has('config'), false);
});

test('tokens: an unknown one and an expired one are refused (401); an unknown repository is E_REPO_NOT_FOUND', async () => {
  await assert.rejects(backend('agents', 'cfr_not-a-real-token').has('config'), (e) => denied(e) && /not known/.test((e as Error).message));
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await assert.rejects(as('brief').has('config'), (e) => denied(e) && /expired/.test((e as Error).message));
  await assert.rejects(as('admin', 'nosuchrepo').get('config'), (e) => isCofferError(e, 'E_REPO_NOT_FOUND'));
});

/** One raw request (certificate checked by pin), for what HttpBackend never sends. */
function raw(method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const url = new URL(server.origin);
  return new Promise((resolve, reject) => {
    const req = request({ hostname: url.hostname, port: url.port, method, path, headers, rejectUnauthorized: false, agent: false }, (res) => {
      const fingerprint = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256;
      if (fingerprint !== server.fingerprint) return reject(new Error('not our server'));
      let body = '';
      res.setEncoding('utf8').on('data', (part: string) => (body += part));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

test('no token: 401 with WWW-Authenticate and an RFC 9457 problem document', async () => {
  const answer = await raw('GET', '/agents/objects/config');
  assert.equal(answer.status, 401);
  assert.match(String(answer.headers['www-authenticate']), /^Bearer/);
  assert.match(String(answer.headers['content-type']), /^application\/problem\+json/);
  const problem = JSON.parse(answer.body) as Record<string, unknown>;
  assert.equal(problem.status, 401);
  assert.equal(problem.code, 'E_UNAUTHENTICATED');
  assert.equal(typeof problem.type, 'string');
  assert.equal(typeof problem.detail, 'string');
});

test('a put without Content-Length is refused (411); an upload cut short stores nothing', async () => {
  const key = `snapshots/${hex()}`;
  const chunked = await new Promise<number>((resolve, reject) => {
    const url = new URL(server.origin);
    const req = request({ hostname: url.hostname, port: url.port, method: 'PUT', path: `/agents/objects/${key}`, rejectUnauthorized: false, agent: false,
      headers: { authorization: `Bearer ${server.tokens.admin}`, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', reject);
    req.write('part');
    req.end();
  });
  assert.equal(chunked, 411);
  await new Promise<void>((resolve) => {
    const url = new URL(server.origin);
    const req = request({ hostname: url.hostname, port: url.port, method: 'PUT', path: `/agents/objects/${key}`, rejectUnauthorized: false, agent: false,
      headers: { authorization: `Bearer ${server.tokens.admin}`, 'content-type': 'application/octet-stream', 'content-length': '100000' } });
    req.once('error', () => resolve());
    req.write(randomBytes(50_000), () => setTimeout(() => {
      req.destroy();
      resolve();
    }, 200));
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(await as('admin').has(key), false, 'half an object is never published');
});

test('a server that cannot be reached is retried with backoff, then one E_BACKEND_IO naming the attempts', async () => {
  const port = await freePort();
  const dead = new HttpBackend(parseHttpLocation(`https://127.0.0.1:${port}/agents`), { token: 'cfr_x', fingerprint: server.fingerprint, attempts: 3, backoffBaseMs: 50 });
  opened.push(dead);
  const started = Date.now();
  await assert.rejects(dead.get('config'), (e) => isCofferError(e, 'E_BACKEND_IO') && /ECONNREFUSED.*\(3 attempts\)/.test((e as Error).message));
  assert.ok(Date.now() - started < 5000);
});

test('a token added while the server runs: an agent\'s first requests, 32 at once, are all answered', async () => {
  const refusedBefore = server.log().split('refused a token').length;
  const secret = await server.addToken({ name: 'fresh', appendOnly: true });
  const fresh = backend('agents', secret);
  const key = `snapshots/${hex()}`;
  // Reads of config and keys beside puts and checks, as an agent's openRepository and first backup send them.
  const results = await Promise.allSettled(Array.from({ length: 32 }, (_, i) =>
    i % 4 === 0 ? fresh.has('config') : i % 4 === 1 ? keys(fresh, 'keys/') : i % 4 === 2 ? fresh.put(`chunks/aa/${hex()}`, Buffer.from(`c${i}`)) : fresh.put(key, Buffer.from('manifest'))));
  const refused = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
  assert.deepEqual(refused, []);
  assert.equal(server.log().split('refused a token').length, refusedBefore, 'none refused, none counted by the limiter');
});

// Last: it blocks this address for a minute.
test('refused tokens are rate-limited per address: after 10, even a good token waits (429, Retry-After)', async () => {
  let refused = 0;
  for (let i = 0; i < 12; i++) {
    const answer = await raw('HEAD', '/agents/objects/config', { authorization: `Bearer cfr_guess${i}` });
    if (answer.status === 429) break;
    assert.equal(answer.status, 401);
    refused++;
  }
  assert.ok(refused <= 10, `${refused} refusals before the limit`);
  const good = await raw('HEAD', '/agents/objects/config', { authorization: `Bearer ${server.tokens.admin}` });
  assert.equal(good.status, 429);
  assert.ok(Number(good.headers['retry-after']) > 0);
  assert.match(server.log(), /refused a token \(unknown\) from 127\.0\.0\.1/);
});
