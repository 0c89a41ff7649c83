/**
 * How many chunk requests a backup and a restore keep in flight to S3, through the `coffer`
 * binary, against a real Ceph RADOS Gateway behind a proxy that holds every chunk request
 * for a long round trip (as a distant bucket does) and counts those open at once. A remote
 * store's latency is hidden only by many requests at once: S3 asks for 32
 * (`preferredConcurrency`), where a local disk gets `threads × 4`. Before, a restore kept
 * `threads × 4` blocks in flight and a backup held each block's buffer until its PUT
 * answered (at most 16 PUTs).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startCephS3, type CephS3 } from '../testing/index.js';
import { assertExit, assertSameBytes, coffer, makeWorkDir, removeDir } from './cli-harness.js';

/** The round trip each chunk request is held for. */
const ROUND_TRIP_MS = 400;
const CHUNKS = 96;

let s3: CephS3;
let work: string;
let proxy: { endpoint: string; peak: (method: string) => number; close: () => Promise<void> };

before(async () => {
  [s3, work] = await Promise.all([startCephS3(), makeWorkDir('s3-in-flight')]);
  proxy = await slowProxy(new URL(s3.endpoint));
});
after(async () => {
  await proxy?.close();
  await s3?.stop();
  if (work !== undefined) await removeDir(work);
});

/** Forwards to the gateway; requests for `chunks/` keys wait ROUND_TRIP_MS first and are counted while open. */
async function slowProxy(target: URL) {
  const open = new Map<string, number>();
  const peaks = new Map<string, number>();
  const server = http.createServer((request, response) => {
    const chunk = (request.url ?? '').includes('/chunks/');
    const method = request.method ?? '';
    if (chunk) {
      open.set(method, (open.get(method) ?? 0) + 1);
      peaks.set(method, Math.max(peaks.get(method) ?? 0, open.get(method) ?? 0));
      response.on('close', () => open.set(method, (open.get(method) ?? 1) - 1));
    }
    setTimeout(() => {
      const upstream = http.request({ host: target.hostname, port: target.port, method, path: request.url, headers: request.headers }, (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      });
      upstream.on('error', () => response.destroy());
      request.pipe(upstream);
    }, chunk ? ROUND_TRIP_MS : 0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    peak: (method: string) => peaks.get(method) ?? 0,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

test('backup keeps more than 16 chunk PUTs in flight, restore more than 8 GETs; the disk comes back whole', async () => {
  const bucket = await s3.createBucket('in-flight');
  const repo = `s3:${proxy.endpoint}/${bucket}/repo`;
  const env = { ...s3.env, COFFER_PASSWORD: 'in flight', XDG_CACHE_HOME: join(work, 'cache') };
  const disk = join(work, 'disk.raw');
  await fs.writeFile(disk, randomBytes(CHUNKS * 256 * 1024)); // incompressible: one chunk per 256 KiB block
  // Format 1 (one object per chunk): this file's tests look at or damage chunk objects; format 2's own are in format2*.integ.test.ts.
  assertExit(await coffer(['init', '--format', '1', '-r', repo], { env }), 0);
  assertExit(await coffer(['backup', '-r', repo, '--vm', 'far', disk], { env, timeoutMs: 120_000 }), 0);
  assert.ok(proxy.peak('PUT') > 16, `peak PUTs in flight ${proxy.peak('PUT')}`);
  const restored = join(work, 'restored.raw');
  assertExit(await coffer(['restore', '-r', repo, 'far:latest', '--to', restored], { env, timeoutMs: 120_000 }), 0);
  assert.ok(proxy.peak('GET') > 16, `peak GETs in flight ${proxy.peak('GET')}`);
  await assertSameBytes(restored, disk);
});
