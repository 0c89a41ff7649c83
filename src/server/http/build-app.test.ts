import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startService } from '../service.js';
import { defineRoute } from './index.js';

const dir = await mkdtemp(join(tmpdir(), 'coffer-app-'));
after(() => rm(dir, { recursive: true, force: true }));
const quiet = { print: () => {}, insecureHttp: true, listen: '127.0.0.1:0' };

test('a route that declares no access stops the server at start-up (deny by default)', async () => {
  await assert.rejects(
    startService({ ...quiet, dataDir: join(dir, 'a'), routeGroups: [(app) => void app.get('/api/v1/oops', async () => 'open to all')] }),
    /GET \/api\/v1\/oops declares no access/,
  );
});

test('a route group added by another part of the server is served, guarded and documented', async () => {
  const service = await startService({
    ...quiet,
    dataDir: join(dir, 'b'),
    routeGroups: [
      (app) =>
        defineRoute(app, {
          method: 'POST',
          url: '/runs/:job',
          operationId: 'startRun',
          summary: 'a later group',
          tag: 'runs',
          access: { permission: 'job.run' },
          response: { 202: { type: 'object' } },
          handler: async (_request, reply) => reply.code(202).send({}),
        }),
    ],
  });
  try {
    const document = (await service.app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json();
    assert.equal(document.paths['/api/v1/runs/{job}'].post['x-permission'], 'job.run');
    const anonymous = await service.app.inject({ method: 'POST', url: '/api/v1/runs/nightly' });
    assert.equal(anonymous.statusCode, 401);
    assert.equal(anonymous.headers['content-type'], 'application/problem+json; charset=utf-8');
  } finally {
    await service.stop();
  }
});

test('a graceful stop lets a running request finish, refuses new ones, and runs the drain hooks', async () => {
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  let entered: () => void = () => {};
  const inside = new Promise<void>((resolve) => (entered = resolve));
  const service = await startService({
    ...quiet,
    dataDir: join(dir, 'c'),
    routeGroups: [
      (app) =>
        defineRoute(app, {
          method: 'GET',
          url: '/slow',
          operationId: 'slow',
          summary: 'waits for the test',
          tag: 'test',
          access: { public: true },
          response: { 200: { type: 'object', properties: { done: { type: 'boolean' } } } },
          handler: async () => {
            entered();
            await gate;
            return { done: true };
          },
        }),
    ],
  });
  const drained: number[] = [];
  service.onDrain(async (timeLeftMs) => void drained.push(timeLeftMs));
  const running = fetch(`${service.url}/api/v1/slow`, { headers: { connection: 'close' } });
  await inside; // the request is being served (a fixed 100 ms was too short on a loaded machine)
  const stopped = service.stop(5000);
  await new Promise((r) => setTimeout(r, 100));
  await assert.rejects(fetch(`${service.url}/api/v1/health`), 'the listener is closed');
  release();
  const answer = await running;
  assert.equal(answer.status, 200);
  assert.deepEqual(await answer.json(), { done: true });
  await stopped;
  assert.equal(drained.length, 1);
  assert.ok((drained[0] as number) > 4000 && (drained[0] as number) <= 5000);
});
