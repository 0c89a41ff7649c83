/**
 * A real S3-compatible store for tests: a throw-away single-node Ceph cluster (one monitor, one
 * memstore OSD, one RADOS Gateway, no manager, no systemd) in a temporary folder, started once
 * per test process in about 2.5 s (../shared/notes/s3-ceph.md has the facts behind each
 * setting). Every daemon runs in the foreground; `stop()` ends exactly the processes it
 * started (KILL: nothing in them is worth saving) and removes the folder. Each test file takes its own bucket.
 * @example
 * const s3 = await startCephS3();
 * after(() => s3.stop());
 * const bucket = await s3.createBucket('conformance');
 * // s3.endpoint is http://127.0.0.1:PORT; s3.credentials the gateway user's keys
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { makeTempDir } from './daemons.js';
import { requireTools, runTool } from './disks.js';

/** A running gateway. */
export interface CephS3 {
  /** `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  /** `http://ADDRESS:PORT`: the endpoint at one of the options' `listenAddresses` (or 127.0.0.1). */
  endpointAt(address: string): string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
  /** Environment variables that make the AWS SDK (and the `coffer` CLI) use this gateway's user. */
  readonly env: Record<string, string>;
  /**
   * Creates a bucket with a unique name starting with `label`; returns its name. `objectLock`:
   * with S3 Object Lock enabled (which turns versioning on; RGW needs no option for it).
   */
  createBucket(label: string, credentials?: { accessKeyId: string; secretAccessKey: string }, options?: { objectLock?: boolean }): Promise<string>;
  /** Creates another gateway user, optionally with a quota on the bytes it may store; returns its keys. */
  createUser(options?: { maxSizeBytes?: number }): Promise<{ accessKeyId: string; secretAccessKey: string }>;
  /** Stops the gateway only (the cluster keeps its data), to test a dead endpoint. */
  stopGateway(): Promise<void>;
  /** Starts the gateway again on the same port and waits until it answers. */
  startGateway(): Promise<void>;
  /** Stops every daemon and removes the folder (idempotent). */
  stop(): Promise<void>;
}

const ACCESS_KEY = 'COFFERTESTACCESSKEY0';
const SECRET_KEY = 'coffer-test-secret-key-0000000000000000';
const RGW_NAME = 'client.rgw.coffer';
const START_TIMEOUT_MS = 30_000;
/** What a test cluster holds at most: the OSD keeps every object in RAM (memstore). */
export const MEMSTORE_BYTES = 2 * 1024 ** 3;

/** Options of {@link startCephS3}. */
export interface CephS3Options {
  /**
   * The OSD's memstore capacity in bytes (default {@link MEMSTORE_BYTES}). It is RAM, taken as
   * objects arrive: only the benchmark's scale-1 run asks for more (a 2.4 GB disk's data).
   */
  memstoreBytes?: number;
  /**
   * Addresses the gateway listens on too, besides 127.0.0.1 (same port): e.g. the host side of
   * a network namespace (network-namespaces.ts), for processes inside one. Each must exist
   * when the gateway starts. {@link CephS3.endpointAt} names the endpoint at one of them.
   */
  listenAddresses?: readonly string[];
}

let shared: Promise<CephS3> | undefined;

/**
 * Starts the cluster (once per process: later calls get the same one, whatever their options).
 * Call `stop()` in `after()`; a stopped cluster is started afresh by the next call.
 */
export function startCephS3(options: CephS3Options = {}): Promise<CephS3> {
  shared ??= startCluster(options.memstoreBytes ?? MEMSTORE_BYTES, options.listenAddresses ?? []).catch((error: unknown) => {
    shared = undefined;
    throw error;
  });
  return shared;
}

async function startCluster(memstoreBytes: number, listenAddresses: readonly string[]): Promise<CephS3> {
  await requireTools('ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'monmaptool', 'ceph-authtool', 'ceph');
  const dir = await makeTempDir('coffer-ceph');
  const children: ChildProcess[] = [];
  let gateway: ChildProcess | undefined;
  const [monV2, monV1, rgwPort] = [await freePort(), await freePort(), await freePort()];
  const conf = path.join(dir.path, 'ceph.conf');
  const keyring = path.join(dir.path, 'keyring');
  const monAddress = `[v2:127.0.0.1:${monV2},v1:127.0.0.1:${monV1}]`;
  const fsid = randomUUID();
  const p = (name: string) => path.join(dir.path, name);
  await fs.writeFile(conf, [
    '[global]',
    `fsid = ${fsid}`,
    `mon host = ${monAddress}`,
    'auth cluster required = none', 'auth service required = none', 'auth client required = none',
    // Without this radosgw cannot authenticate to the monitor under auth=none and hangs 300 s.
    'ms mon client mode = crc secure',
    'osd pool default size = 1', 'osd pool default min size = 1', 'osd pool default pg num = 8',
    'osd pool default pgp num = 8', 'osd pool default pg autoscale mode = off', 'osd crush chooseleaf type = 0',
    'mon allow pool size one = true', 'mon max pg per osd = 1000',
    // A test cluster holds little; the monitor must not refuse to start on a nearly full disk.
    'mon data avail crit = 0', 'mon data avail warn = 0',
    // Otherwise ~18 s until the first PUT instead of ~2.5 s.
    'paxos propose interval = 0.05', 'paxos min wait = 0.01',
    `keyring = ${keyring}`,
    `run dir = ${p('run')}`, `log file = ${p('log')}/$name.log`, `pid file = ${p('run')}/$name.pid`,
    `admin socket = ${p('run')}/$name.asok`, `mon data = ${p('mon')}/$name`, `osd data = ${p('osd')}/$name`,
    'osd objectstore = memstore', `memstore device bytes = ${memstoreBytes}`,
    '[osd]', 'osd max object name len = 256', 'osd max object namespace len = 64',
    `[${RGW_NAME}]`,
    `rgw frontends = beast ${['127.0.0.1', ...listenAddresses].map((a) => `endpoint=${a}:${rgwPort}`).join(' ')} tcp_nodelay=1`,
    `rgw data = ${p('rgw')}`,
    '',
  ].join('\n'));
  for (const sub of ['run', 'log', 'mon', 'osd', 'rgw']) await fs.mkdir(p(sub), { recursive: true });
  const daemon = (tool: string, args: string[]): ChildProcess => {
    const child = spawn(tool, ['-c', conf, '-f', ...args], { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, CEPH_CONF: conf } });
    child.once('error', () => undefined);
    children.push(child);
    return child;
  };
  // SIGKILL: the cluster is thrown away (its data lives in memory), and ceph-osd takes
  // seconds to honour SIGTERM.
  const stopChild = async (child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  const killAll = () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killAll);
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      shared = undefined;
      await Promise.all(children.map((child) => stopChild(child)));
      process.removeListener('exit', killAll);
      if (process.env.COFFER_KEEP_CEPH === undefined) await dir.remove();
    })();
    return stopping;
  };

  try {
    await runTool('ceph-authtool', ['--create-keyring', keyring, '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
    await runTool('ceph-authtool', [keyring, '--gen-key', '-n', 'client.admin', '--cap', 'mon', 'allow *', '--cap', 'osd', 'allow *']);
    await runTool('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', monAddress, '--clobber', p('monmap')]);
    await runTool('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', p('monmap'), '--keyring', keyring]);
    daemon('ceph-mon', ['-i', 'a']);
    await retryUntil('ceph-mon answers', () => runTool('ceph', ['-c', conf, '--connect-timeout', '5', 'mon', 'stat']));
    const osdUuid = randomUUID();
    const osdId = (await runTool('ceph', ['-c', conf, 'osd', 'new', osdUuid])).trim();
    await fs.mkdir(path.join(p('osd'), `osd.${osdId}`));
    await runTool('ceph-osd', ['-c', conf, '-i', osdId, '--mkfs', '--osd-uuid', osdUuid]);
    daemon('ceph-osd', ['-i', osdId]);
    const startGateway = async (): Promise<void> => {
      gateway = daemon('radosgw', ['-n', RGW_NAME]);
      await retryUntil('radosgw listens', () => connectOnce(rgwPort));
    };
    await startGateway();
    await runTool('radosgw-admin', ['-c', conf, '-n', 'client.admin', 'user', 'create', '--uid=coffer', '--display-name=coffer', `--access-key=${ACCESS_KEY}`, `--secret-key=${SECRET_KEY}`]);
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    const credentials = { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY };
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'; // its stderr warning about Node 20
    const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    return {
      endpoint,
      endpointAt: (address: string) => `http://${address}:${rgwPort}`,
      credentials,
      env: { AWS_ACCESS_KEY_ID: ACCESS_KEY, AWS_SECRET_ACCESS_KEY: SECRET_KEY, AWS_REGION: 'us-east-1' },
      async createBucket(label: string, as?: { accessKeyId: string; secretAccessKey: string }, options: { objectLock?: boolean } = {}): Promise<string> {
        const name = `${label}-${randomBytes(4).toString('hex')}`;
        const owner = as === undefined ? client : new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: as });
        try {
          // The first PUT may wait for the gateway's pools to be created.
          await retryUntil(`bucket ${name} created`, () => owner.send(new CreateBucketCommand({ Bucket: name, ...(options.objectLock === true ? { ObjectLockEnabledForBucket: true } : {}) })));
        } finally {
          if (owner !== client) owner.destroy();
        }
        return name;
      },
      async createUser(options: { maxSizeBytes?: number } = {}) {
        const uid = `user-${randomBytes(4).toString('hex')}`;
        const keys = { accessKeyId: uid.toUpperCase().replace('-', ''), secretAccessKey: randomBytes(20).toString('hex') };
        const admin = (args: string[]) => runTool('radosgw-admin', ['-c', conf, '-n', 'client.admin', ...args]);
        await admin(['user', 'create', `--uid=${uid}`, `--display-name=${uid}`, `--access-key=${keys.accessKeyId}`, `--secret-key=${keys.secretAccessKey}`]);
        if (options.maxSizeBytes !== undefined) {
          await admin(['quota', 'set', '--quota-scope=user', `--uid=${uid}`, `--max-size=${options.maxSizeBytes}`]);
          await admin(['quota', 'enable', '--quota-scope=user', `--uid=${uid}`]);
        }
        return keys;
      },
      async stopGateway(): Promise<void> {
        // SIGTERM: a gateway that dies leaves watches on the cluster that make every
        // radosgw-admin change wait ~30 s for it to time out.
        if (gateway !== undefined) await stopChild(gateway, 'SIGTERM');
      },
      startGateway,
      async stop(): Promise<void> {
        client.destroy();
        await stop();
      },
    };
  } catch (error) {
    const logs = await fs.readdir(p('log')).catch(() => [] as string[]);
    let tail = '';
    for (const log of logs) tail += `\n--- ${log}\n${(await fs.readFile(path.join(p('log'), log), 'utf8').catch(() => '')).slice(-2000)}`;
    await stop();
    throw new Error(`the Ceph test cluster did not start: ${error instanceof Error ? error.message : String(error)}${tail}`, { cause: error });
  }
}

async function retryUntil<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what}: gave up after ${START_TIMEOUT_MS} ms`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

function connectOnce(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

/** A TCP port nobody listens on right now (the kernel's choice). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
