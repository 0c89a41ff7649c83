/**
 * The console's file serving, on a bare Fastify app with a console folder made here: caching
 * per kind of file, the SPA fallback, the security headers, gzip, no way out of the folder,
 * and /api/ left to the API (its 404 stays a problem detail).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { CONSOLE_CSP, consoleRoutes, IMMUTABLE } from './console-static.js';

const INDEX = '<!doctype html><title>Coffer</title><script type="module" src="/assets/index-abc123.js"></script>';
const SCRIPT = `console.log(${JSON.stringify('x'.repeat(4000))});`;
let dir: string;
let app: FastifyInstance;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coffer-console-'));
  await mkdir(join(dir, 'web', 'assets'), { recursive: true });
  await writeFile(join(dir, 'web', 'index.html'), INDEX);
  await writeFile(join(dir, 'web', 'assets', 'index-abc123.js'), SCRIPT);
  await writeFile(join(dir, 'secret.txt'), 'outside');
  await symlink(join(dir, 'secret.txt'), join(dir, 'web', 'assets', 'link.txt'));
  app = Fastify();
  app.setNotFoundHandler(async (_request, reply) => reply.code(404).type('application/problem+json').send({ code: 'E_NOT_FOUND' }));
  consoleRoutes(app, { root: join(dir, 'web') });
  await app.ready();
});

after(async () => {
  await app?.close();
  await rm(dir, { recursive: true, force: true });
});

test('a console page is index.html, not cached, under a strict CSP', async () => {
  for (const url of ['/', '/vms/web1', '/jobs/nightly?x=1', '/repositories/main/snapshots/abc']) {
    const r = await app.inject({ url });
    assert.equal(r.statusCode, 200, url);
    assert.equal(r.body, INDEX, url);
    assert.equal(r.headers['cache-control'], 'no-cache');
    assert.equal(r.headers['content-security-policy'], CONSOLE_CSP);
    assert.match(String(r.headers['content-security-policy']), /script-src 'self'(;|$)/);
    assert.doesNotMatch(String(r.headers['content-security-policy']), /script-src[^;]*unsafe-inline/);
    assert.equal(r.headers['x-frame-options'], 'DENY');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
  }
});

test('hashed assets are immutable for a year, and gzip-compressed when accepted', async () => {
  const plain = await app.inject({ url: '/assets/index-abc123.js' });
  assert.equal(plain.statusCode, 200);
  assert.equal(plain.body, SCRIPT);
  assert.equal(plain.headers['cache-control'], IMMUTABLE);
  assert.match(String(plain.headers['content-type']), /^text\/javascript/);
  const packed = await app.inject({ url: '/assets/index-abc123.js', headers: { 'accept-encoding': 'gzip, br' } });
  assert.equal(packed.headers['content-encoding'], 'gzip');
  assert.ok(packed.rawPayload.length < SCRIPT.length / 10);
  assert.equal(gunzipSync(packed.rawPayload).toString(), SCRIPT);
});

test('a missing asset or file is 404, never the page; nothing outside the folder is served', async () => {
  for (const url of ['/assets/index-old999.js', '/favicon.ico', '/assets/link.txt', '/%2e%2e/secret.txt', '/assets/%2e%2e/%2e%2e/secret.txt', '/a%00b']) {
    const r = await app.inject({ url });
    assert.equal(r.statusCode, 404, `${url}: ${r.statusCode} ${r.body}`);
    assert.doesNotMatch(r.body, /outside|<title>/, url);
  }
});

test('/api/ and /metrics stay the server\'s: an unknown one gets the API\'s 404', async () => {
  for (const url of ['/api/v1/nope', '/api', '/metrics']) {
    const r = await app.inject({ url });
    assert.equal(r.statusCode, 404);
    assert.deepEqual(r.json(), { code: 'E_NOT_FOUND' });
  }
});

test('without a built console, a page says how to build it (503)', async () => {
  const bare = Fastify();
  consoleRoutes(bare, { root: join(dir, 'missing') });
  const r = await bare.inject({ url: '/' });
  assert.equal(r.statusCode, 503);
  assert.match(r.body, /npm run build:web/);
  await bare.close();
});
