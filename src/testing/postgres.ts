/**
 * A throw-away PostgreSQL server for integration tests: a new cluster (initdb) in a short
 * folder under /tmp, started with pg_ctl on a random local port (retried on a collision), with
 * fsync off (the data is thrown away). One server per test process (cached); each test takes
 * a fresh database from it with {@link TestPostgres.createDatabase}. `initdb` and `postgres`
 * refuse to run as root, so both run as the `postgres` system user that Debian's package
 * creates. Stop it in `after()`; an `exit` hook stops it too when a test process dies of an
 * exception (not after SIGKILL).
 */
import { spawnSync, type SpawnSyncOptionsWithStringEncoding } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';

/** The Debian packages that provide the server (what `.ci/run` installs). */
export const POSTGRES_PACKAGES = 'postgresql postgresql-15';

/** A running test server. */
export interface TestPostgres {
  /** The folder holding the data directory, the log and the unix socket. */
  readonly dir: string;
  readonly port: number;
  /** `postgres://postgres@127.0.0.1:PORT/NAME` (TCP, trust authentication, user postgres). */
  url(database?: string): string;
  /** Creates an empty database (a unique name unless given) and returns its URL. */
  createDatabase(name?: string): Promise<string>;
  /**
   * Restarts the server (fast shutdown: open connections are cut, as in a failover), same port
   * and data. `listenAddresses`: listen on these too (besides 127.0.0.1), with trust
   * authentication from `trustNetwork` (a CIDR), e.g. for workers in network namespaces.
   * `whileDown`: stop, wait for it, then start (the database away for as long as it takes).
   */
  restart(options?: { listenAddresses?: readonly string[]; trustNetwork?: string; whileDown?: () => Promise<void> }): Promise<void>;
  /** Stops the server (fast shutdown) and removes its folder; idempotent. */
  stop(): Promise<void>;
}

let running: Promise<TestPostgres> | undefined;
let databaseCount = 0;

/** The server of this test process, started at the first call. */
export function startPostgres(): Promise<TestPostgres> {
  running ??= start().catch((error: unknown) => {
    running = undefined;
    throw error;
  });
  return running;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (newest === undefined) throw new Error(`tests need PostgreSQL's server (initdb, pg_ctl): .ci/run installs it (apt-get install ${POSTGRES_PACKAGES})`);
  return join(root, newest, 'bin');
}

function postgresUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  if (line === undefined) throw new Error(`no "postgres" system user: apt-get install ${POSTGRES_PACKAGES}`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

async function start(): Promise<TestPostgres> {
  const bin = binDir();
  const { uid, gid } = postgresUser();
  const dir = mkdtempSync('/tmp/pg.'); // short: a unix socket path has at most 107 bytes
  chownSync(dir, uid, gid);
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  const asPostgres: SpawnSyncOptionsWithStringEncoding = { uid, gid, cwd: dir, encoding: 'utf8', timeout: 60_000 };
  const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'], asPostgres);
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.stderr || init.error?.message}`);
  }
  let port = 0;
  const settingsFor = (listen: string) => `-k ${dir} -p ${port} -c listen_addresses=${listen} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60`;
  for (let attempt = 0; ; attempt++) {
    port = 20_000 + Math.floor(Math.random() * 30_000);
    const settings = settingsFor('127.0.0.1');
    const started = spawnSync(join(bin, 'pg_ctl'), ['-D', data, '-l', log, '-w', '-t', '30', '-o', settings, 'start'], asPostgres);
    if (started.status === 0) break;
    const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
    if (attempt < 5 && text.includes('Address already in use')) continue;
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`pg_ctl start failed: ${started.stdout}${started.stderr}${text}`);
  }
  // What the server runs with now (pg_ctl start needs them again; restart reuses them itself).
  let settingsNow = settingsFor('127.0.0.1');
  let stopped = false;
  const stopNow = (mode: 'fast' | 'immediate') => {
    if (stopped) return;
    stopped = true;
    spawnSync(join(bin, 'pg_ctl'), ['-D', data, '-m', mode, '-w', '-t', '30', 'stop'], asPostgres);
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', () => stopNow('immediate'));
  const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    dir,
    port,
    url,
    async createDatabase(name) {
      const database = name ?? `coffer_test_${process.pid}_${++databaseCount}`;
      const client = new pg.Client({ connectionString: url(), connectionTimeoutMillis: 10_000 });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE "${database.replace(/"/g, '""')}"`);
      } finally {
        await client.end();
      }
      return url(database);
    },
    async restart(options = {}) {
      const listen = options.listenAddresses === undefined ? [] : ['-o', settingsFor(['127.0.0.1', ...options.listenAddresses].join(','))];
      settingsNow = listen[1] ?? settingsNow;
      if (options.trustNetwork !== undefined) appendFileSync(join(data, 'pg_hba.conf'), `host all all ${options.trustNetwork} trust\n`);
      if (options.whileDown === undefined) {
        const restarted = spawnSync(join(bin, 'pg_ctl'), ['-D', data, '-l', log, '-m', 'fast', '-w', '-t', '30', ...listen, 'restart'], asPostgres);
        if (restarted.status !== 0) throw new Error(`pg_ctl restart failed: ${restarted.stdout}${restarted.stderr}`);
        return;
      }
      const halted = spawnSync(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop'], asPostgres);
      if (halted.status !== 0) throw new Error(`pg_ctl stop failed: ${halted.stdout}${halted.stderr}`);
      try {
        await options.whileDown();
      } finally {
        const started = spawnSync(join(bin, 'pg_ctl'), ['-D', data, '-l', log, '-w', '-t', '30', '-o', settingsNow, 'start'], asPostgres);
        if (started.status !== 0) throw new Error(`pg_ctl start failed: ${started.stdout}${started.stderr}`);
      }
    },
    async stop() {
      stopNow('fast');
      running = undefined;
    },
  };
}
