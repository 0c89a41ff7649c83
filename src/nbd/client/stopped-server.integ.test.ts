/**
 * Coffer's NBD client against a real server that stops answering: qemu-nbd frozen with
 * SIGSTOP (what a wedged or overloaded host looks like: the socket stays open, nothing comes
 * back). Every wait ends with a CofferError within its deadline: a read in flight, reads queued
 * behind it, the block device's split reads, a new handshake, and close(). A CI run once hung
 * 13 minutes in the live-backup tests: these pin that no NBD wait can be the cause.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { isCofferError, type ErrorCode } from '../../errors/index.js';
import { makeTempDir, requireTools, seededBytes, startDaemon, withDeadline, type Daemon } from '../../testing/index.js';
import { NbdBlockDevice, NbdClient } from '../index.js';

const MiB = 1024 * 1024;
const DEADLINE_MS = 400;
/** Far above every deadline under test: reaching it means something waited without one. */
const HANG_MS = 10_000;
let dir: { path: string; remove(): Promise<void> };
let server: Daemon;
let uri: string;
let stopped = false;

before(async () => {
  await requireTools('qemu-nbd');
  dir = await makeTempDir('coffer-nbd-stopped');
  const image = path.join(dir.path, 'disk.raw');
  await writeFile(image, seededBytes(7, 8 * MiB));
  const socket = path.join(dir.path, 'disk.sock');
  server = await startDaemon('qemu-nbd', ['-r', '-f', 'raw', '-t', '-e', '8', '-x', 'disk', '-k', socket, image], socket);
  uri = `nbd+unix:///disk?socket=${socket}`;
});

after(async () => {
  if (stopped) server?.child.kill('SIGCONT'); // a stopped process only dies of SIGKILL otherwise
  await server?.stop();
  await dir?.remove();
});

const fails = (code: ErrorCode, message: RegExp) => (e: unknown): boolean => {
  assert.ok(isCofferError(e, code), `expected ${code}, got ${String(e)}`);
  assert.match((e as Error).message, message);
  return true;
};

/** How long `work` took to settle, failing the test (not hanging it) past HANG_MS. */
async function settleTime(what: string, work: Promise<unknown>): Promise<number> {
  const started = Date.now();
  await withDeadline(what, work.then(() => undefined, () => undefined), HANG_MS);
  return Date.now() - started;
}

test('a server frozen mid-session: reads in flight and queued fail with E_TIMEOUT, close() returns', async () => {
  const options = { handshakeTimeoutMs: DEADLINE_MS, requestTimeoutMs: DEADLINE_MS, maxInFlight: 2 };
  const client = await NbdClient.connect(uri, options);
  const device = await NbdBlockDevice.open(uri, options);
  assert.equal((await client.read(0, 4096)).length, 4096, 'the server answers before it is stopped');
  assert.ok(server.child.kill('SIGSTOP'));
  stopped = true;

  // Three reads on a connection with two in flight: one waits for a slot the others never free.
  const reads = [client.read(0, MiB), client.read(MiB, MiB), client.read(2 * MiB, MiB)];
  for (const read of reads) await assert.rejects(withDeadline('a read', read, HANG_MS), fails('E_TIMEOUT', /did not answer NBD_CMD_READ/));
  // A read the block device splits into pieces (more than the 2 in flight).
  await assert.rejects(withDeadline('a device read', device.read(0, 5 * MiB, new Uint8Array(5 * MiB)), HANG_MS), fails('E_TIMEOUT', /did not answer/));
  // Later requests fail at once with the same reason; closing does not wait for the server.
  await assert.rejects(client.read(0, 512), fails('E_TIMEOUT', /did not answer/));
  assert.ok((await settleTime('close()', client.close())) < 2000);
  assert.ok((await settleTime('device close()', device.close())) < 2000);
});

test('a handshake with a frozen server fails with E_TIMEOUT within its deadline', async () => {
  if (!stopped) {
    assert.ok(server.child.kill('SIGSTOP'));
    stopped = true;
  }
  const started = Date.now();
  // The kernel accepts the connection into the listen backlog; the greeting never comes.
  await assert.rejects(withDeadline('connect', NbdClient.connect(uri, { handshakeTimeoutMs: DEADLINE_MS }), HANG_MS), fails('E_TIMEOUT', /handshake within 400 ms/));
  await assert.rejects(withDeadline('open', NbdBlockDevice.open(uri, { handshakeTimeoutMs: DEADLINE_MS }), HANG_MS), fails('E_TIMEOUT', /handshake/));
  assert.ok(Date.now() - started < 3 * DEADLINE_MS + 1000, `took ${Date.now() - started} ms`);
});
